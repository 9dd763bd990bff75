import BerthModel
import BerthYAML
import Testing

@Suite struct DecodeTests {
    @Test func deploymentDecodesEveryField() throws {
        let r = load("""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: shop
          labels: {app: web}
          annotations: {team: storefront}
        spec:
          replicas: 3
          selector:
            matchLabels: {app: web}
            matchExpressions:
              - {key: tier, operator: In, values: [front]}
          strategy:
            type: RollingUpdate
            rollingUpdate: {maxSurge: 30%, maxUnavailable: 1}
          minReadySeconds: 5
          revisionHistoryLimit: 4
          progressDeadlineSeconds: 120
          paused: true
          template:
            metadata:
              labels: {app: web, tier: front}
            spec:
              terminationGracePeriodSeconds: 10
              nodeSelector: {disk: ssd}
              tolerations:
                - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}
              affinity:
                nodeAffinity:
                  requiredDuringSchedulingIgnoredDuringExecution:
                    nodeSelectorTerms:
                      - matchExpressions:
                          - {key: zone, operator: In, values: [a, b]}
              initContainers:
                - name: init
                  image: host
                  command: [/bin/true]
              containers:
                - name: web
                  image: registry.example/web:1.2
                  command: [/bin/web]
                  args: [--port, "8080"]
                  workingDir: /srv
                  env:
                    - {name: MODE, value: prod}
                    - name: POD
                      valueFrom: {fieldRef: {fieldPath: metadata.name}}
                    - name: KEY
                      valueFrom: {secretKeyRef: {name: creds, key: k, optional: true}}
                  envFrom:
                    - {prefix: CFG_, configMapRef: {name: cfg, optional: true}}
                  ports:
                    - {name: http, containerPort: 8080, hostPort: 80, protocol: TCP}
                  resources:
                    requests: {cpu: 250m, memory: 64Mi, nvidia.com/gpu: 1}
                    limits: {cpu: "1", memory: 128Mi, nvidia.com/gpu: 1}
                  readinessProbe:
                    httpGet: {path: /ready, port: http, scheme: HTTP}
                    periodSeconds: 5
                  livenessProbe:
                    tcpSocket: {port: 8080}
                  startupProbe:
                    exec: {command: [cat, /tmp/ok]}
                    failureThreshold: 30
                  volumeMounts:
                    - {name: data, mountPath: /data, subPath: web, readOnly: true}
                  securityContext:
                    runAsUser: 1000
                    runAsGroup: 1000
                    readOnlyRootFilesystem: true
                    allowPrivilegeEscalation: false
                    capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
              volumes:
                - name: data
                  emptyDir: {medium: Memory, sizeLimit: 64Mi}
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: shop
          # hostPort is beyond baseline.
          labels: {pod-security.kubernetes.io/enforce: privileged}
        """)
        #expect(r.findings.map(short) == [])
        let key = ObjectKey(kind: .deployment, namespace: "shop", name: "web")
        guard case .deployment(let d)? = r.desired[key] else {
            Issue.record("no deployment")
            return
        }
        #expect(d.metadata.labels == ["app": "web"])
        #expect(d.metadata.annotations == ["team": "storefront"])
        #expect(d.replicas == 3)
        #expect(d.selector.matchExpressions == [.init(key: "tier", op: .in, values: ["front"])])
        #expect(d.maxSurge == .string("30%") && d.maxUnavailable == .int(1))
        #expect(d.minReadySeconds == 5 && d.revisionHistoryLimit == 4 && d.progressDeadlineSeconds == 120 && d.paused)
        let spec = d.template.spec
        #expect(spec.terminationGracePeriodSeconds == 10)
        #expect(spec.nodeSelector == ["disk": "ssd"])
        #expect(spec.tolerations.first?.effect == .noSchedule)
        #expect(spec.nodeAffinity.first?.matchExpressions.first?.values == ["a", "b"])
        #expect(spec.initContainers.map(\.name) == ["init"])
        let c = try #require(spec.containers.first)
        #expect(c.image == "registry.example/web:1.2")
        #expect(c.args == ["--port", "8080"])
        #expect(c.workingDir == "/srv")
        #expect(c.env.count == 3)
        #expect(c.env[1].valueFrom == .fieldRef(fieldPath: "metadata.name"))
        #expect(c.envFrom.first?.prefix == "CFG_")
        #expect(c.envFrom.first?.source == .configMap(name: "cfg", optional: true))
        #expect(c.ports.first?.hostPort == 80)
        #expect(c.resources.requests["cpu"]?.milli == 250)
        #expect(c.resources.limits["memory"]?.milli == Int64(134_217_728_000))
        #expect(c.resources.limits["nvidia.com/gpu"]?.value == 1)
        if case .httpGet(let g)? = c.readinessProbe?.handler {
            #expect(g.path == "/ready" && g.port == .string("http"))
        } else {
            Issue.record("readiness probe is not httpGet")
        }
        #expect(c.readinessProbe?.periodSeconds == 5 && c.readinessProbe?.timeoutSeconds == 1)
        #expect(c.livenessProbe?.handler == .tcpSocket(port: .int(8080), host: nil))
        #expect(c.startupProbe?.failureThreshold == 30)
        #expect(c.volumeMounts.first?.subPath == "web")
        #expect(c.securityContext?.runAsUser == 1000)
        #expect(c.securityContext?.capabilities.drop == ["ALL"])
        #expect(spec.volumes.first?.source == .emptyDir(medium: "Memory", sizeLimit: try Quantity(parsing: "64Mi")))
    }

    @Test func configAndSecretAndServiceAndAutoscaler() throws {
        let r = load([("app.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg}
        data: {greeting: hello}
        binaryData: {blob: AAEC}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: creds}
        data:
          password: cGFzcw==
          multi: |
            aGVs
            bG8=
        stringData: {token: abc}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          type: NodePort
          selector: {app: web}
          ports:
            - {name: http, port: 80, targetPort: 8080, nodePort: 30080}
            - {name: metrics, port: 9090, protocol: UDP}
        ---
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: web}
        spec:
          scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
          minReplicas: 2
          maxReplicas: 5
          metrics:
            - type: Resource
              resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
          behavior:
            scaleDown:
              stabilizationWindowSeconds: 120
              policies: [{type: Percent, value: 50, periodSeconds: 60}]
        ---
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {name: data}
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 1Gi}}
        ---
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: nightly}
        spec:
          schedule: "0 3 * * *"
          concurrencyPolicy: Forbid
          jobTemplate:
            spec:
              completions: 2
              parallelism: 1
              backoffLimit: 1
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: run, image: host}]

        """), ("web.yaml", minimalDeployment)])
        #expect(r.findings.map(short) == [])
        #expect(r.desired.count == 7)
        guard case .configMap(let cm)? = r.desired[ObjectKey(kind: .configMap, namespace: "default", name: "cfg")],
              case .secret(let s)? = r.desired[ObjectKey(kind: .secret, namespace: "default", name: "creds")],
              case .service(let svc)? = r.desired[ObjectKey(kind: .service, namespace: "default", name: "web")],
              case .horizontalPodAutoscaler(let h)? = r.desired[ObjectKey(kind: .horizontalPodAutoscaler, namespace: "default", name: "web")],
              case .persistentVolumeClaim(let pvc)? = r.desired[ObjectKey(kind: .persistentVolumeClaim, namespace: "default", name: "data")],
              case .cronJob(let cj)? = r.desired[ObjectKey(kind: .cronJob, namespace: "default", name: "nightly")]
        else {
            Issue.record("objects missing")
            return
        }
        #expect(cm.data == ["greeting": "hello"] && cm.binaryData == ["blob": [0, 1, 2]])
        #expect(s.data == ["password": Array("pass".utf8), "multi": Array("hello".utf8), "token": Array("abc".utf8)])
        #expect(svc.type == .nodePort && svc.ports[0].targetPort == .int(8080) && svc.ports[0].nodePort == 30080)
        #expect(svc.ports[1].protocol == .udp && svc.ports[1].targetPort == nil)
        #expect(h.minReplicas == 2 && h.maxReplicas == 5 && h.targetCPUUtilization == 60)
        #expect(h.scaleDown?.stabilizationWindowSeconds == 120 && h.scaleDown?.policies.first?.type == .percent)
        #expect(pvc.accessModes == [.readWriteOnce] && pvc.storage.milli == Int64(1_073_741_824_000))
        #expect(cj.schedule == "0 3 * * *" && cj.concurrencyPolicy == .forbid && cj.jobSpec.completions == 2)
        #expect(cj.jobSpec.template.spec.restartPolicy == .never)
    }

    @Test func jsonAnchorsAliasesAndMergeKeys() throws {
        let r = load([
            ("ns.json", "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Namespace\",\n\t\"metadata\": {\"name\": \"team\", \"labels\": {\"a\": \"b\"}}\n}\n"),
        ])
        #expect(r.findings.map(short) == [])
        let merged = load("""
        x-common: &common
          labels: {app: web, tier: front}
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: merged
          <<: *common
        data:
          a: &v shared
          b: *v

        """)
        #expect(merged.findings.map(short) == ["1:1: error: unknown field \"x-common\" (x-common)"])
        guard case .configMap(let cm)? = merged.desired[ObjectKey(kind: .configMap, namespace: "default", name: "merged")] else {
            Issue.record("no configmap")
            return
        }
        #expect(cm.metadata.labels == ["app": "web", "tier": "front"])
        #expect(cm.data == ["a": "shared", "b": "shared"])
        guard case .namespace(let ns)? = r.desired[ObjectKey(kind: .namespace, namespace: "", name: "team")] else {
            Issue.record("no namespace from JSON")
            return
        }
        #expect(ns.metadata.labels == ["a": "b"])
    }

    @Test func multipleDocumentsAndEmptyOnes() {
        let r = load("---\n" + minimalDeployment + "---\n---\n" + minimalDeployment.replacingOccurrences(of: "name: web\nspec", with: "name: api\nspec") + "...\n")
        #expect(r.findings.map(short) == [])
        #expect(r.documentCount == 2)
        #expect(r.desired.count == 2)
    }
}
