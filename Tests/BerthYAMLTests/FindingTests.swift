import BerthModel
import BerthYAML
import Testing

/// Each bad manifest and exactly what validation says about it: line, column, severity, message and field.
@Suite struct FindingTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let yaml: String
        let expected: [String]
        var testDescription: String { name }
    }

    static func deploymentWith(_ containerExtra: String) -> String { minimalDeployment + containerExtra }

    static let cases: [Case] = [
        Case(name: "syntax error", yaml: "apiVersion: v1\nkind: [ConfigMap\nmetadata: {}\n", expected: [
            "3:9: error: syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 7) ()",
        ]),
        Case(name: "tab indentation", yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n", expected: [
            "4:1: error: syntax error: found character that cannot start any token (while scanning for the next token at line 4, column 1) ()",
        ]),
        Case(name: "unknown kind", yaml: "apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n", expected: [
            "2:1: error: unknown kind \"Servce\" (did you mean \"Service\"?) (kind)",
        ]),
        Case(name: "unsupported kind", yaml: "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\n", expected: [
            "2:1: error: kind \"StatefulSet\" is not supported by berth (kind)",
        ]),
        Case(name: "wrong apiVersion", yaml: "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: x}\n", expected: [
            "1:1: error: unknown apiVersion \"extensions/v1beta1\" for kind Deployment: berth serves it as \"apps/v1\" (apiVersion)",
        ]),
        Case(name: "missing kind", yaml: "apiVersion: v1\nmetadata: {name: x}\n", expected: [
            "1:1: error: missing required field \"kind\" (kind)",
        ]),
        Case(name: "not a mapping", yaml: "- a\n- b\n", expected: [
            "1:1: error: expected a mapping, found a list ()",
        ]),
        Case(name: "unknown field with suggestion",
             yaml: minimalDeployment.replacingOccurrences(of: "spec:\n  selector", with: "spec:\n  replcas: 2\n  selector"),
             expected: ["6:3: error: unknown field \"replcas\" (did you mean \"replicas\"?) (spec.replcas)"]),
        Case(name: "unimplemented Kubernetes field is a warning",
             yaml: minimalDeployment.replacingOccurrences(of: "      containers:", with: "      serviceAccountName: web\n      containers:"),
             expected: ["12:7: warning: berth does not implement \"serviceAccountName\"; it is ignored (spec.template.spec.serviceAccountName)"]),
        Case(name: "missing metadata.name", yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n", expected: [
            "4:3: error: missing required field \"name\" (metadata.name)",
        ]),
        Case(name: "wrong type", yaml: minimalDeployment.replacingOccurrences(of: "spec:\n  selector", with: "spec:\n  replicas: three\n  selector"),
             expected: ["6:13: error: expected an integer, found a string (spec.replicas)"]),
        Case(name: "number where a string is needed", yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    version: 1.0\n",
             expected: ["6:14: error: expected a string, found a number; quote it: \"1.0\" (metadata.labels[version])"]),
        Case(name: "invalid name", yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Web_App}\n", expected: [
            "3:12: error: invalid name \"Web_App\": must be a lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. 'example.com') (metadata.name)",
        ]),
        Case(name: "duplicate key", yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: \"1\"\n  a: \"2\"\n", expected: [
            "6:3: error: \"a\" is set twice (first at line 5) (data[a])",
        ]),
        Case(name: "selector does not match template",
             yaml: minimalDeployment.replacingOccurrences(of: "labels: {app: web}", with: "labels: {app: api}"),
             expected: ["6:3: error: selector does not match the template's labels (template.metadata.labels) (spec.selector)"]),
        Case(name: "limit below request", yaml: deploymentWith("""
                      resources:
                        requests: {memory: 256Mi}
                        limits: {memory: 128Mi}

            """), expected: [
            "16:24: error: request for memory (256Mi) is greater than its limit (128Mi) (spec.template.spec.containers[0].resources.requests[memory])",
        ]),
        Case(name: "missing ConfigMap", yaml: deploymentWith("""
                      envFrom:
                        - configMapRef: {name: settings}
                        - configMapRef: {name: maybe, optional: true}

            """), expected: [
            "16:30: error: ConfigMap default/settings is not defined in this set (set optional: true if it may be missing) (spec.template.spec.containers[0].envFrom[0].configMapRef.name)",
        ]),
        Case(name: "Service targetPort names no port", yaml: minimalDeployment + """
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              selector: {app: web}
              ports: [{port: 80, targetPort: http}]

            """, expected: [
            "21:22: error: no pod selected by this Service has a port named \"http\" (spec.ports[0].targetPort)",
        ]),
        Case(name: "invalid base64", yaml: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  key: not*base64\n", expected: [
            "5:8: error: value is not valid base64 (data[key])",
        ]),
        Case(name: "Secret values stay out of messages",
             yaml: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  pin: 493817\ndata:\n  flag: true\n", expected: [
            "5:8: error: expected a string, found a number; quote it (stringData[pin])",
            "7:9: error: expected a string, found a boolean; quote it (data[flag])",
        ]),
        Case(name: "Job without restartPolicy", yaml: """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: once}
            spec:
              template:
                spec:
                  containers: [{name: run, image: host}]

            """, expected: [
            "6:5: error: restartPolicy is unset (Always); Job pods need OnFailure or Never (spec.template.spec.restartPolicy)",
        ]),
        Case(name: "HPA target missing", yaml: """
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: web}
            spec:
              scaleTargetRef: {kind: Deployment, name: web}
              maxReplicas: 3

            """, expected: [
            "5:38: error: Deployment default/web is not defined in this set (spec.scaleTargetRef.name)",
        ]),
        Case(name: "bad cron schedule", yaml: """
            apiVersion: batch/v1
            kind: CronJob
            metadata: {name: c}
            spec:
              schedule: "61 * * * *"
              jobTemplate:
                spec:
                  template:
                    spec:
                      restartPolicy: Never
                      containers: [{name: run, image: host}]

            """, expected: [
            "5:3: error: minute value 61 is out of range 0-59 (spec.schedule)",
        ]),
        Case(name: "enum with suggestion", yaml: minimalDeployment.replacingOccurrences(of: "      containers:", with: "      restartPolicy: always\n      containers:"),
             expected: ["12:22: error: unsupported value \"always\": must be one of Always, OnFailure, Never (did you mean \"Always\"?) (spec.template.spec.restartPolicy)"]),
        Case(name: "unknown alias", yaml: "a: *nothing\n", expected: [
            "1:4: error: alias *nothing refers to an unknown anchor ()",
        ]),
    ]

    @Test(arguments: cases)
    func reports(_ c: Case) {
        let r = load(c.yaml)
        #expect(r.findings.map(short) == c.expected)
        #expect(r.findings.allSatisfy { $0.path == "m.yaml" })
    }

    @Test func duplicatesAcrossFilesNameBothPlaces() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
        let r = load([("a.yaml", cm), ("b/c.yaml", "# again\n" + cm)])
        #expect(r.findings.map(\.formatted) == [
            "a.yaml:4:3: error: ConfigMap default/cfg is defined more than once; also at b/c.yaml:2:1 (metadata.name)",
            "b/c.yaml:5:3: error: ConfigMap default/cfg is defined more than once; also at a.yaml:1:1 (metadata.name)",
        ])
        #expect(!r.isValid)
    }

    @Test func sameNameInOtherNamespaceIsNoDuplicate() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
        let r = load([("a.yaml", cm), ("b.yaml", cm + "  namespace: other\n")])
        #expect(r.findings.isEmpty)
        #expect(r.desired.count == 2)
    }
}
