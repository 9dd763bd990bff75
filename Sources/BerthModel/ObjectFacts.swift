/// What the checks across a set need to know about one object. It is derived once per object and kept
/// with the parsed file, so validating a large set after a one-file change does not walk every object again.
public final class ObjectFacts: Sendable {
    /// A required reference from this object to another object of the set.
    public struct Reference: Sendable {
        public var kind: ObjectKind
        public var name: String
        public var field: FieldPath
        /// Keys the referenced ConfigMap or Secret must hold, each with the field that names it.
        public var keys: [KeyUse]
    }

    public struct KeyUse: Sendable {
        public var key: String
        public var field: FieldPath
    }

    public struct NamedPort: Sendable {
        public var index: Int
        public var name: String
    }

    public let key: ObjectKey
    /// Labels of the pod template (workloads and pods), nil for other kinds.
    public let templateLabels: [String: String]?
    /// Named ports of the template's containers.
    public let templatePortNames: Set<String>
    public let references: [Reference]
    /// Keys of a ConfigMap or Secret.
    public let configKeys: Set<String>?
    public let serviceSelector: [String: String]
    /// Service ports whose targetPort is a name.
    public let namedTargetPorts: [NamedPort]
    /// The Deployment an HPA scales.
    public let autoscalerTarget: String?
    /// Namespace, key and value of each template label as one string, for indexing pods by label.
    let labelTokens: [String]
    /// The label token a Service with named target ports looks its pods up by.
    let anchorToken: String?

    static func token(_ namespace: String, _ key: String, _ value: String) -> String {
        namespace + "\u{0}" + key + "\u{0}" + value
    }

    public init(_ object: KubeObject) {
        key = object.key
        var labels: [String: String]?
        var ports = Set<String>()
        var refs: [Reference] = []
        if let (template, path) = object.podTemplate {
            labels = template.labels
            for c in template.spec.containers { for p in c.ports { if let n = p.name { ports.insert(n) } } }
            refs = ObjectFacts.references(of: template.spec, at: path.field("spec"))
        }
        templateLabels = labels
        templatePortNames = ports
        let ns = key.namespace
        labelTokens = (labels ?? [:]).map { ObjectFacts.token(ns, $0.key, $0.value) }
        references = refs
        switch object {
        case .configMap(let c): configKeys = c.keys
        case .secret(let s): configKeys = Set(s.data.keys)
        default: configKeys = nil
        }
        if case .service(let s) = object {
            serviceSelector = s.selector
            namedTargetPorts = s.ports.enumerated().compactMap { i, p in
                if case .string(let n)? = p.targetPort { return NamedPort(index: i, name: n) }
                return nil
            }
            // Any one pair of the selector narrows the candidates; the smallest key keeps it deterministic.
            let anchor = namedTargetPorts.isEmpty ? nil : s.selector.min(by: { $0.key < $1.key })
            anchorToken = anchor.map { ObjectFacts.token(ns, $0.key, $0.value) }
        } else {
            serviceSelector = [:]
            namedTargetPorts = []
            anchorToken = nil
        }
        if case .horizontalPodAutoscaler(let h) = object, h.scaleTarget.kind == "Deployment", !h.scaleTarget.name.isEmpty {
            autoscalerTarget = h.scaleTarget.name
        } else {
            autoscalerTarget = nil
        }
    }

    /// References from a pod spec that must resolve (optional ones too with `optional`), in pod order:
    /// containers' env and envFrom (init containers first), then volumes.
    public static func references(of spec: PodSpec, at path: FieldPath, optional: Bool = false) -> [Reference] {
        var out: [Reference] = []
        func containers(_ group: String, _ list: [Container]) {
            for (ci, c) in list.enumerated() {
                let cp = path.field(group).index(ci)
                for (ei, e) in c.env.enumerated() {
                    let vp = cp.field("env").index(ei).field("valueFrom")
                    switch e.valueFrom {
                    case .configMapKeyRef(let k)? where (optional || !k.optional) && !k.name.isEmpty:
                        let f = vp.field("configMapKeyRef")
                        out.append(Reference(kind: .configMap, name: k.name, field: f.field("name"),
                                             keys: k.key.isEmpty ? [] : [KeyUse(key: k.key, field: f.field("key"))]))
                    case .secretKeyRef(let k)? where (optional || !k.optional) && !k.name.isEmpty:
                        let f = vp.field("secretKeyRef")
                        out.append(Reference(kind: .secret, name: k.name, field: f.field("name"),
                                             keys: k.key.isEmpty ? [] : [KeyUse(key: k.key, field: f.field("key"))]))
                    default: break
                    }
                }
                for (fi, f) in c.envFrom.enumerated() {
                    let fp = cp.field("envFrom").index(fi)
                    switch f.source {
                    case .configMap(let name, let isOptional)? where (optional || !isOptional) && !name.isEmpty:
                        out.append(Reference(kind: .configMap, name: name, field: fp.field("configMapRef").field("name"), keys: []))
                    case .secret(let name, let isOptional)? where (optional || !isOptional) && !name.isEmpty:
                        out.append(Reference(kind: .secret, name: name, field: fp.field("secretRef").field("name"), keys: []))
                    default: break
                    }
                }
            }
        }
        containers("initContainers", spec.initContainers)
        containers("containers", spec.containers)
        for (i, name) in (spec.imagePullSecrets ?? []).enumerated() where !name.isEmpty {
            out.append(Reference(kind: .secret, name: name, field: path.field("imagePullSecrets").index(i).field("name"),
                                 keys: [KeyUse(key: ".dockerconfigjson", field: path.field("imagePullSecrets").index(i).field("name"))]))
        }
        for (vi, v) in spec.volumes.enumerated() {
            let vp = path.field("volumes").index(vi)
            switch v.source {
            case .configMap(let p) where (optional || !p.optional) && !p.name.isEmpty:
                let sp = vp.field("configMap")
                out.append(Reference(kind: .configMap, name: p.name, field: sp.field("name"),
                                     keys: p.items.enumerated().map { KeyUse(key: $1.key, field: sp.field("items").index($0).field("key")) }))
            case .secret(let p) where (optional || !p.optional) && !p.name.isEmpty:
                let sp = vp.field("secret")
                out.append(Reference(kind: .secret, name: p.name, field: sp.field("secretName"),
                                     keys: p.items.enumerated().map { KeyUse(key: $1.key, field: sp.field("items").index($0).field("key")) }))
            case .persistentVolumeClaim(let claim, _) where !claim.isEmpty:
                out.append(Reference(kind: .persistentVolumeClaim, name: claim,
                                     field: vp.field("persistentVolumeClaim").field("claimName"), keys: []))
            default: break
            }
        }
        return out
    }
}
