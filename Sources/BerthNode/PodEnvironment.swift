import BerthCluster
import BerthModel
import Foundation

/// What a pod's containers may refer to: the ConfigMaps, Secrets, Services (with their virtual IPs) and
/// claims of the node's view of the cluster.
public struct ClusterView: Sendable {
    public var configMaps: [String: ConfigMap] = [:]
    public var secrets: [String: Secret] = [:]
    /// Services with the addresses the control plane gave them.
    public var services: [ServiceRecord] = []
    public var claims: [String: PersistentVolumeClaim] = [:]
    /// The Services' ready backends as the control plane stored them, by "namespace/name".
    public var endpoints: [String: EndpointsRecord] = [:]
    public init() {}

    public init(configMaps: [ConfigMap] = [], secrets: [Secret] = [], services: [ServiceRecord] = [], claims: [PersistentVolumeClaim] = [],
                endpoints: [EndpointsRecord] = []) {
        for c in configMaps { self.configMaps[Self.key(c.metadata)] = c }
        for s in secrets { self.secrets[Self.key(s.metadata)] = s }
        self.services = services
        for c in claims { self.claims[Self.key(c.metadata)] = c }
        for e in endpoints { self.endpoints[e.namespace + "/" + e.name] = e }
    }

    static func key(_ m: ObjectMeta) -> String { m.effectiveNamespace + "/" + m.name }
}

/// A container's environment, as Kubernetes builds it: the namespace's Service variables, then envFrom,
/// then env (later wins); `$(NAME)` in values refers to variables defined before.
struct PodEnvironment {
    let pod: Pod
    let podIP: String
    let nodeName: String
    let view: ClusterView

    var namespace: String { pod.metadata.effectiveNamespace }

    func variables(for c: Container, image: ImageEnv) throws(NodeError) -> [(String, String)] {
        var out: [(String, String)] = []
        var index: [String: Int] = [:]
        func set(_ k: String, _ v: String) {
            if let i = index[k] { out[i].1 = v } else { index[k] = out.count; out.append((k, v)) }
        }
        for kv in image.env {
            guard let eq = kv.firstIndex(of: "=") else { continue }
            set(String(kv[..<eq]), String(kv[kv.index(after: eq)...]))
        }
        for (k, v) in serviceVariables() { set(k, v) }
        for from in c.envFrom {
            switch from.source {
            case .configMap(let name, let optional)?:
                guard let cm = view.configMaps[namespace + "/" + name] else {
                    if optional { continue }
                    throw NodeError("configmap \"\(name)\" not found")
                }
                for k in cm.data.keys.sorted() where Self.validName(from.prefix + k) { set(from.prefix + k, cm.data[k]!) }
            case .secret(let name, let optional)?:
                guard let s = view.secrets[namespace + "/" + name] else {
                    if optional { continue }
                    throw NodeError("secret \"\(name)\" not found")
                }
                for k in s.data.keys.sorted() where Self.validName(from.prefix + k) { set(from.prefix + k, String(decoding: s.data[k]!, as: UTF8.self)) }
            case nil:
                continue
            }
        }
        for e in c.env {
            var current: [String: String] = [:]
            for (k, v) in out { current[k] = v }
            if let v = e.value { set(e.name, Self.expand(v, current)); continue }
            switch e.valueFrom {
            case .configMapKeyRef(let ref)?:
                guard let cm = view.configMaps[namespace + "/" + ref.name] else {
                    if ref.optional { continue }
                    throw NodeError("configmap \"\(ref.name)\" not found (env \(e.name))")
                }
                guard let v = cm.data[ref.key] ?? cm.binaryData[ref.key].map({ String(decoding: $0, as: UTF8.self) }) else {
                    if ref.optional { continue }
                    throw NodeError("couldn't find key \(ref.key) in ConfigMap \(namespace)/\(ref.name) (env \(e.name))")
                }
                set(e.name, v)
            case .secretKeyRef(let ref)?:
                guard let s = view.secrets[namespace + "/" + ref.name] else {
                    if ref.optional { continue }
                    throw NodeError("secret \"\(ref.name)\" not found (env \(e.name))")
                }
                guard let v = s.data[ref.key] else {
                    if ref.optional { continue }
                    throw NodeError("couldn't find key \(ref.key) in Secret \(namespace)/\(ref.name) (env \(e.name))")
                }
                set(e.name, String(decoding: v, as: UTF8.self))
            case .fieldRef(let path)?:
                set(e.name, try field(path, env: e.name))
            case nil:
                set(e.name, "")
            }
        }
        return out
    }

    func field(_ path: String, env: String) throws(NodeError) -> String {
        switch path {
        case "metadata.name": return pod.metadata.name
        case "metadata.namespace": return namespace
        case "status.podIP": return podIP
        case "spec.nodeName": return nodeName
        case "status.hostIP": return ""
        default:
            if path.hasPrefix("metadata.labels['"), path.hasSuffix("']") {
                return pod.metadata.labels[String(path.dropFirst(17).dropLast(2))] ?? ""
            }
            if path.hasPrefix("metadata.annotations['"), path.hasSuffix("']") {
                return pod.metadata.annotations[String(path.dropFirst(22).dropLast(2))] ?? ""
            }
            throw NodeError("env \(env): fieldRef \(path) is not supported (metadata.name, metadata.namespace, status.podIP, spec.nodeName, metadata.labels['…'])")
        }
    }

    /// `WEB_SERVICE_HOST`, `WEB_SERVICE_PORT`, `WEB_PORT_80_TCP_ADDR`, … for the namespace's Services.
    func serviceVariables() -> [(String, String)] {
        var out: [(String, String)] = []
        for r in view.services.sorted(by: { $0.name < $1.name }) where r.namespace == namespace {
            let s = r.service
            guard let ip = r.clusterIP, let first = s.ports.first else { continue }
            let n = s.metadata.name.uppercased().replacingOccurrences(of: "-", with: "_")
            out.append(("\(n)_SERVICE_HOST", ip))
            out.append(("\(n)_SERVICE_PORT", String(first.port)))
            for p in s.ports {
                if let name = p.name { out.append(("\(n)_SERVICE_PORT_\(name.uppercased().replacingOccurrences(of: "-", with: "_"))", String(p.port))) }
            }
            let proto = first.protocol.rawValue.lowercased()
            out.append(("\(n)_PORT", "\(proto)://\(ip):\(first.port)"))
            for p in s.ports {
                let pr = p.protocol.rawValue
                let base = "\(n)_PORT_\(p.port)_\(pr)"
                out.append((base, "\(pr.lowercased())://\(ip):\(p.port)"))
                out.append((base + "_PROTO", pr.lowercased()))
                out.append((base + "_PORT", String(p.port)))
                out.append((base + "_ADDR", ip))
            }
        }
        return out
    }

    static func validName(_ s: String) -> Bool {
        guard let f = s.first, !f.isNumber else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
    }

    /// Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` is a literal `$`, the rest is kept.
    static func expand(_ s: String, _ vars: [String: String]) -> String {
        guard s.contains("$") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            let next = s.index(after: i)
            if c == "$", next < s.endIndex {
                if s[next] == "$" { out.append("$"); i = s.index(after: next); continue }
                if s[next] == "(", let close = s[next...].firstIndex(of: ")") {
                    let name = String(s[s.index(after: next)..<close])
                    if let v = vars[name] { out += v; i = s.index(after: close); continue }
                }
            }
            out.append(c)
            i = next
        }
        return out
    }
}

/// The environment and defaults an image brings.
struct ImageEnv {
    var env: [String] = []
}
