import BerthModel
import BerthYAML
import Testing

/// Pod Security admission: baseline by default, the level a Namespace manifest names otherwise.
@Suite struct PodSecurityTests {
    func errors(_ r: LoadResult) -> [String] { r.findings.filter { $0.severity == .error }.map(short) }

    @Test func baselineRefusesHostAccessByDefault() {
        let r = load(minimalDeployment.replacingOccurrences(of: "    spec:\n      containers:", with: "    spec:\n      hostPID: true\n      containers:") + """
                  securityContext:
                    capabilities: {add: [NET_ADMIN, CHOWN]}
                  ports: [{containerPort: 80, hostPort: 8080}]

        """)
        #expect(errors(r) == [
            "12:7: error: violates PodSecurity \"baseline\": hostPID=true is not allowed (host namespaces) (namespace default enforces baseline) (spec.template.spec.hostPID)",
            "17:34: error: violates PodSecurity \"baseline\": container \"web\" must not add capability NET_ADMIN (namespace default enforces baseline) (spec.template.spec.containers[0].securityContext.capabilities.add[0])",
            "18:39: error: violates PodSecurity \"baseline\": container \"web\" must not set hostPort (namespace default enforces baseline) (spec.template.spec.containers[0].ports[0].hostPort)",
        ])
        #expect(!r.isValid)
    }

    @Test func namespacesChooseTheirLevel() {
        let ns = { (name: String, level: String) in
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \(name)\n  labels: {pod-security.kubernetes.io/enforce: \(level)}\n"
        }
        let pod = { (ns: String, extra: String) in
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: \(ns)}\nspec:\n  containers:\n  - name: c\n    image: host\n\(extra)"
        }
        let restrictedOK = """
            securityContext:
              runAsNonRoot: true
              runAsUser: 1000
              allowPrivilegeEscalation: false
              capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
              seccompProfile: {type: RuntimeDefault}

        """
        #expect(errors(load([("ns.yaml", ns("strict", "restricted")), ("p.yaml", pod("strict", restrictedOK))])) == [])
        let plain = load([("ns.yaml", ns("strict", "restricted")), ("p.yaml", pod("strict", ""))])
        #expect(errors(plain).count == 4)
        #expect(errors(plain).allSatisfy { $0.contains("violates PodSecurity \"restricted\"") && $0.contains("namespace strict enforces restricted") })
        let hostPath = pod("open", "  volumes: [{name: h, hostPath: {path: /srv}}]\n")
        #expect(errors(load([("ns.yaml", ns("open", "privileged")), ("p.yaml", hostPath)])) == [])
        #expect(errors(load([("p.yaml", hostPath)])).count == 1)
        #expect(errors(load([("ns.yaml", ns("x", "strict"))])) == [
            "5:12: error: unknown Pod Security level \"strict\": use privileged, baseline or restricted (metadata.labels[pod-security.kubernetes.io/enforce])",
        ])
    }

    @Test func runAsNonRootWithRootIsRefusedAtEveryLevel() {
        let r = load(minimalDeployment + """
                  securityContext: {runAsNonRoot: true, runAsUser: 0}

        """)
        #expect(errors(r).count == 1 && errors(r)[0].contains("sets runAsNonRoot=true and runAsUser=0"))
    }

    @Test func podLevelUserSettingsAreDecodedAndMerged() throws {
        let r = load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsUser: 1000, runAsNonRoot: true, fsGroup: 2000}\n" +
                     "  containers:\n  - name: a\n    image: host\n  - name: b\n    image: host\n    securityContext: {runAsUser: 3000}\n")
        #expect(errors(r) == [])
        guard case .pod(let p)? = r.desired.objects[ObjectKey(kind: .pod, namespace: "default", name: "p")]?.object else {
            Issue.record("no pod")
            return
        }
        #expect(p.spec.securityContext(for: p.spec.containers[0])?.runAsUser == 1000)
        #expect(p.spec.securityContext(for: p.spec.containers[1])?.runAsUser == 3000)
        #expect(p.spec.securityContext(for: p.spec.containers[1])?.runAsNonRoot == true)
    }

    @Test func downwardAPIVolumesTakeMetadataFieldsOnly() {
        let r = load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: host}]\n" +
                     "  volumes:\n  - name: info\n    downwardAPI:\n      items:\n      - {path: name, fieldRef: {fieldPath: metadata.name}}\n" +
                     "      - {path: ip, fieldRef: {fieldPath: status.podIP}}\n")
        #expect(errors(r).count == 1 && errors(r)[0].hasPrefix("11:31: error: unsupported fieldPath \"status.podIP\""), "\(errors(r))")
    }
}
