import Foundation
import BerthModel

extension ObjectDecoder {
    static func container(_ r: MapReader, isInit: Bool) -> Container {
        var c = Container()
        r.ignore("terminationMessagePath", "terminationMessagePolicy", "lifecycle", "stdin",
                 "stdinOnce", "tty", "resizePolicy", "restartPolicy", "volumeDevices")
        if let name = r.string("name", required: true) {
            c.name = name
            if let why = Names.dns1123Label(name) { r.error("name", "invalid container name \"\(name)\": \(why)") }
        }
        if let image = r.string("image", required: true) {
            c.image = image
            if image.trimmingCharacters(in: .whitespaces) != image || image.isEmpty {
                r.error("image", "image must not be empty or have surrounding spaces")
            } else if image != "host" {
                do { _ = try ImageReference(parsing: image) } catch { r.error("image", "InvalidImageName: \(error.message)") }
            }
        }
        c.imagePullPolicy = r.enumeration("imagePullPolicy", ImagePullPolicy.self)
        c.command = r.stringList("command") ?? []
        c.args = r.stringList("args") ?? []
        c.workingDir = r.string("workingDir")
        if let wd = c.workingDir, !wd.hasPrefix("/") { r.error("workingDir", "must be an absolute path") }
        c.env = r.objects("env") { envVar($0) } ?? []
        c.envFrom = r.objects("envFrom") { envFrom($0) } ?? []
        c.ports = r.objects("ports") { containerPort($0) } ?? []
        var portNames: [String: Int] = [:]
        for (i, p) in c.ports.enumerated() {
            guard let n = p.name else { continue }
            if portNames[n] != nil {
                r.ctx.error("port name \"\(n)\" is used twice in this container", field: r.path.field("ports").index(i).field("name"))
            }
            portNames[n] = p.containerPort
        }
        c.resources = r.object("resources") { resources($0) } ?? ResourceRequirements()
        for probeField in ["livenessProbe", "readinessProbe", "startupProbe"] {
            let decoded = r.object(probeField) { probe($0, kind: probeField, portNames: portNames) }
            if isInit && decoded != nil {
                r.error(probeField, "init containers may not have probes")
            }
            switch probeField {
            case "livenessProbe": c.livenessProbe = decoded
            case "readinessProbe": c.readinessProbe = decoded
            default: c.startupProbe = decoded
            }
        }
        c.volumeMounts = r.objects("volumeMounts") { volumeMount($0) } ?? []
        var mountPaths = Set<String>()
        for (i, m) in c.volumeMounts.enumerated() where !m.mountPath.isEmpty {
            if !mountPaths.insert(m.mountPath).inserted {
                r.ctx.error("mountPath \"\(m.mountPath)\" is used twice in this container",
                            field: r.path.field("volumeMounts").index(i).field("mountPath"))
            }
        }
        c.securityContext = r.object("securityContext") { securityContext($0) }
        return c
    }

    static func envVar(_ r: MapReader) -> EnvVar {
        var e = EnvVar()
        if let name = r.string("name", required: true) {
            e.name = name
            if let why = Names.envVarName(name) { r.error("name", "invalid environment variable name \"\(name)\": \(why)") }
        }
        e.value = r.string("value")
        e.valueFrom = r.object("valueFrom") { v -> EnvVarSource? in
            v.ignore("resourceFieldRef")
            let configMap = v.object("configMapKeyRef") { EnvVarSource.configMapKeyRef(keySelector($0)) }
            let secret = v.object("secretKeyRef") { EnvVarSource.secretKeyRef(keySelector($0)) }
            let field = v.object("fieldRef") { f -> EnvVarSource in
                f.ignore("apiVersion")
                let path = f.string("fieldPath", required: true) ?? ""
                if !path.isEmpty && !fieldRefPaths.contains(path) {
                    f.error("fieldPath", "unsupported fieldPath \"\(path)\": berth supports \(fieldRefPaths.joined(separator: ", "))")
                }
                return .fieldRef(fieldPath: path)
            }
            return v.exactlyOne("valueFrom takes one source",
                                [("configMapKeyRef", configMap), ("secretKeyRef", secret), ("fieldRef", field)],
                                noneMessage: v.has("resourceFieldRef") ? nil : "valueFrom needs one of configMapKeyRef, secretKeyRef, fieldRef")
        } ?? nil
        if e.value != nil && r.has("valueFrom") {
            r.error("valueFrom", "value and valueFrom are both set; use one")
        }
        return e
    }

    static func keySelector(_ r: MapReader) -> KeySelector {
        var k = KeySelector()
        k.name = r.string("name", required: true) ?? ""
        k.key = r.string("key", required: true) ?? ""
        k.optional = r.bool("optional") ?? false
        return k
    }

    static func envFrom(_ r: MapReader) -> EnvFromSource {
        var e = EnvFromSource()
        e.prefix = r.string("prefix") ?? ""
        let cm = r.object("configMapRef") { c in EnvFromSource.Source.configMap(name: c.string("name", required: true) ?? "", optional: c.bool("optional") ?? false) }
        let s = r.object("secretRef") { c in EnvFromSource.Source.secret(name: c.string("name", required: true) ?? "", optional: c.bool("optional") ?? false) }
        e.source = r.exactlyOne("envFrom takes one source", [("configMapRef", cm), ("secretRef", s)],
                                noneMessage: "envFrom needs configMapRef or secretRef")
        return e
    }

    static func containerPort(_ r: MapReader) -> ContainerPort {
        var p = ContainerPort()
        r.ignore("hostIP")
        if let name = r.string("name") {
            p.name = name
            if let why = Names.portName(name) { r.error("name", "invalid port name \"\(name)\": \(why)") }
        }
        p.containerPort = r.int("containerPort", required: true, min: 1, max: 65535) ?? 0
        p.hostPort = r.int("hostPort", min: 1, max: 65535)
        p.protocol = r.enumeration("protocol", PortProtocol.self) ?? .tcp
        return p
    }

    static func resources(_ r: MapReader) -> ResourceRequirements {
        var res = ResourceRequirements()
        r.ignore("claims")
        func read(_ key: String) -> [String: Quantity] {
            var out: [String: Quantity] = [:]
            for e in r.entries(key) ?? [] {
                let field = r.path.field(key).key(e.key)
                if let why = Names.resourceName(e.key) {
                    r.ctx.error("invalid resource name \"\(e.key)\": \(why)", at: e.keyMark, field: field)
                    continue
                }
                if let q = MapReader.quantity(e.value, ctx: r.ctx, field: field) {
                    if e.key != "cpu" && q.milli % 1000 != 0 {
                        r.ctx.error("\(e.key) must be a whole number of units, not \(q.text)", at: e.value.mark, field: field)
                    }
                    out[e.key] = q
                }
            }
            return out
        }
        res.requests = read("requests")
        res.limits = read("limits")
        for (name, request) in res.requests.sorted(by: { $0.key < $1.key }) {
            let extended = name.contains("/")
            if let limit = res.limits[name] {
                if extended && limit != request {
                    r.ctx.error("request for \(name) (\(request.text)) must equal its limit (\(limit.text))",
                                field: r.path.field("requests").key(name))
                } else if limit < request {
                    r.ctx.error("request for \(name) (\(request.text)) is greater than its limit (\(limit.text))",
                                field: r.path.field("requests").key(name))
                }
            } else if extended {
                r.ctx.error("extended resource \(name) needs a limit equal to its request", field: r.path.field("requests").key(name))
            }
        }
        return res
    }

    static func probe(_ r: MapReader, kind: String, portNames: [String: Int]) -> Probe {
        var p = Probe()
        r.ignore("grpc", "terminationGracePeriodSeconds")
        func checkPort(_ reader: MapReader, _ port: IntOrString?) {
            switch port {
            case .int(let n) where n < 1 || n > 65535:
                reader.error("port", "port must be between 1 and 65535, not \(n)")
            case .string(let name) where portNames[name] == nil:
                var message = "named port \"\(name)\" is not a port of this container"
                if let near = Names.suggestion(for: name, among: portNames.keys) { message += " (did you mean \"\(near)\"?)" }
                reader.error("port", message)
            default: break
            }
        }
        let exec = r.object("exec") { e in Probe.Handler.exec(command: e.stringList("command", required: true) ?? []) }
        let httpGet = r.object("httpGet") { g -> Probe.Handler in
            var a = HTTPGetAction()
            a.path = g.string("path") ?? "/"
            let port = g.intOrString("port", required: true)
            checkPort(g, port)
            a.port = port ?? .int(0)
            a.host = g.string("host")
            if let scheme = g.string("scheme") {
                if scheme == "HTTP" || scheme == "HTTPS" { a.scheme = scheme } else { g.error("scheme", "unsupported value \"\(scheme)\": must be HTTP or HTTPS") }
            }
            a.httpHeaders = g.objects("httpHeaders") { h in
                var header = HTTPHeader()
                header.name = h.string("name", required: true) ?? ""
                header.value = h.string("value") ?? ""
                return header
            } ?? []
            return .httpGet(a)
        }
        let tcpSocket = r.object("tcpSocket") { t -> Probe.Handler in
            let port = t.intOrString("port", required: true)
            checkPort(t, port)
            return .tcpSocket(port: port ?? .int(0), host: t.string("host"))
        }
        p.handler = r.exactlyOne("a probe takes one handler", [("exec", exec), ("httpGet", httpGet), ("tcpSocket", tcpSocket)],
                                 noneMessage: "probe needs one of exec, httpGet, tcpSocket") ?? p.handler
        p.initialDelaySeconds = r.int("initialDelaySeconds", min: 0) ?? 0
        p.periodSeconds = r.int("periodSeconds", min: 1) ?? 10
        p.timeoutSeconds = r.int("timeoutSeconds", min: 1) ?? 1
        p.successThreshold = r.int("successThreshold", min: 1) ?? 1
        p.failureThreshold = r.int("failureThreshold", min: 1) ?? 3
        if kind != "readinessProbe" && p.successThreshold != 1 {
            r.error("successThreshold", "must be 1 for \(kind)")
        }
        return p
    }

    static func volumeMount(_ r: MapReader) -> VolumeMount {
        var m = VolumeMount()
        r.ignore("mountPropagation", "subPathExpr", "recursiveReadOnly")
        m.name = r.string("name", required: true) ?? ""
        m.mountPath = r.string("mountPath", required: true) ?? ""
        if !m.mountPath.isEmpty && !m.mountPath.hasPrefix("/") { r.error("mountPath", "must be an absolute path") }
        if m.mountPath.split(separator: "/").contains("..") { r.error("mountPath", "must not contain '..'") }
        if let sub = r.string("subPath"), !sub.isEmpty {
            m.subPath = sub
            if let why = relativePathProblem(sub) { r.error("subPath", why) }
        }
        m.readOnly = r.bool("readOnly") ?? false
        return m
    }

    static func securityContext(_ r: MapReader) -> SecurityContext {
        var s = SecurityContext()
        r.ignore("privileged", "seccompProfile", "seLinuxOptions", "procMount", "windowsOptions", "appArmorProfile")
        s.runAsUser = r.int("runAsUser", min: 0, max: Int(UInt32.max) - 1)
        s.runAsGroup = r.int("runAsGroup", min: 0, max: Int(UInt32.max) - 1)
        s.runAsNonRoot = r.bool("runAsNonRoot")
        s.readOnlyRootFilesystem = r.bool("readOnlyRootFilesystem")
        s.allowPrivilegeEscalation = r.bool("allowPrivilegeEscalation")
        s.capabilities = r.object("capabilities") { c in
            var caps = Capabilities()
            for field in ["add", "drop"] {
                let list = c.stringList(field) ?? []
                for (i, name) in list.enumerated() {
                    let bare = name.hasPrefix("CAP_") ? String(name.dropFirst(4)) : name
                    if !capabilityNames.contains(bare) {
                        var message = "unknown capability \"\(name)\""
                        if let near = Names.suggestion(for: bare, among: capabilityNames) { message += " (did you mean \"\(near)\"?)" }
                        c.ctx.error(message, field: c.path.field(field).index(i))
                    }
                }
                if field == "add" { caps.add = list } else { caps.drop = list }
            }
            return caps
        } ?? Capabilities()
        return s
    }
}
