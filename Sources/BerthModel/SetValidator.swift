/// A problem found across objects, placed by the object it belongs to and a field path inside it.
public struct Violation: Sendable, Hashable {
    public var objectIndex: Int
    public var field: FieldPath
    public var severity: Severity
    public var message: String

    public init(objectIndex: Int, field: FieldPath, severity: Severity = .error, message: String) {
        self.objectIndex = objectIndex
        self.field = field
        self.severity = severity
        self.message = message
    }
}

/// Checks that need the whole set of manifests: duplicates, references between objects, named ports of Services.
public enum SetValidator {
    public static func validate(_ objects: [SourcedObject]) -> [Violation] {
        var out: [Violation] = []
        var byKey: [ObjectKey: [Int]] = [:]
        for (i, o) in objects.enumerated() { byKey[o.object.key, default: []].append(i) }
        // A nameless object already has its own finding; it is nobody's duplicate.
        for (key, indices) in byKey where indices.count > 1 && !key.name.isEmpty {
            for i in indices {
                let others = indices.filter { $0 != i }.map { objects[$0].origin.description }
                out.append(Violation(objectIndex: i, field: FieldPath(dotted: "metadata.name"),
                                     message: "\(key) is defined more than once; also at \(others.joined(separator: ", "))"))
            }
        }
        let index = Index(objects: objects, byKey: byKey)
        let templates = TemplateIndex(objects)
        for (i, o) in objects.enumerated() {
            if let (template, path) = o.object.podTemplate {
                out += references(of: template.spec, at: path.field("spec"), namespace: o.object.key.namespace, index: index)
                    .map { Violation(objectIndex: i, field: $0.0, message: $0.1) }
            }
            switch o.object {
            case .horizontalPodAutoscaler(let h) where !h.scaleTarget.name.isEmpty && h.scaleTarget.kind == "Deployment":
                let key = ObjectKey(kind: .deployment, namespace: o.object.key.namespace, name: h.scaleTarget.name)
                if index.byKey[key] == nil {
                    out.append(Violation(objectIndex: i, field: FieldPath(dotted: "spec.scaleTargetRef.name"),
                                         message: "\(key) is not defined in this set"))
                }
            case .service(let s):
                out += servicePorts(s, namespace: o.object.key.namespace, templates: templates)
                    .map { Violation(objectIndex: i, field: $0.0, message: $0.1) }
            default:
                break
            }
        }
        return out
    }

    struct Index {
        let objects: [SourcedObject]
        let byKey: [ObjectKey: [Int]]

        func object(_ kind: ObjectKind, _ namespace: String, _ name: String) -> KubeObject? {
            byKey[ObjectKey(kind: kind, namespace: namespace, name: name)]?.first.map { objects[$0].object }
        }

        /// nil when the ConfigMap or Secret is absent; its keys otherwise.
        func keys(_ kind: ObjectKind, _ namespace: String, _ name: String) -> Set<String>? {
            switch object(kind, namespace, name) {
            case .configMap(let c): return c.keys
            case .secret(let s): return Set(s.data.keys)
            default: return nil
            }
        }
    }

    static func references(of spec: PodSpec, at path: FieldPath, namespace ns: String, index: Index) -> [(FieldPath, String)] {
        var out: [(FieldPath, String)] = []
        func check(_ kind: ObjectKind, _ name: String, key: String?, optional: Bool, _ field: FieldPath, keyField: FieldPath? = nil) {
            guard !name.isEmpty, !optional else { return }
            guard let keys = index.keys(kind, ns, name) else {
                out.append((field, "\(ObjectKey(kind: kind, namespace: ns, name: name)) is not defined in this set (set optional: true if it may be missing)"))
                return
            }
            if let key, !key.isEmpty, !keys.contains(key) {
                out.append((keyField ?? field, "\(kind.rawValue) \(name) has no key \"\(key)\""))
            }
        }
        for (group, containers) in [("initContainers", spec.initContainers), ("containers", spec.containers)] {
            for (ci, c) in containers.enumerated() {
                let cp = path.field(group).index(ci)
                for (ei, e) in c.env.enumerated() {
                    let vp = cp.field("env").index(ei).field("valueFrom")
                    switch e.valueFrom {
                    case .configMapKeyRef(let k)?:
                        check(.configMap, k.name, key: k.key, optional: k.optional,
                              vp.field("configMapKeyRef").field("name"), keyField: vp.field("configMapKeyRef").field("key"))
                    case .secretKeyRef(let k)?:
                        check(.secret, k.name, key: k.key, optional: k.optional,
                              vp.field("secretKeyRef").field("name"), keyField: vp.field("secretKeyRef").field("key"))
                    default: break
                    }
                }
                for (fi, f) in c.envFrom.enumerated() {
                    let fp = cp.field("envFrom").index(fi)
                    switch f.source {
                    case .configMap(let name, let optional)?:
                        check(.configMap, name, key: nil, optional: optional, fp.field("configMapRef").field("name"))
                    case .secret(let name, let optional)?:
                        check(.secret, name, key: nil, optional: optional, fp.field("secretRef").field("name"))
                    default: break
                    }
                }
            }
        }
        for (vi, v) in spec.volumes.enumerated() {
            let vp = path.field("volumes").index(vi)
            switch v.source {
            case .configMap(let p), .secret(let p):
                let isSecret: Bool
                if case .secret = v.source { isSecret = true } else { isSecret = false }
                let kind: ObjectKind = isSecret ? .secret : .configMap
                let sp = vp.field(isSecret ? "secret" : "configMap")
                check(kind, p.name, key: nil, optional: p.optional, sp.field(isSecret ? "secretName" : "name"))
                if !p.optional, let keys = index.keys(kind, ns, p.name) {
                    for (ii, item) in p.items.enumerated() where !item.key.isEmpty && !keys.contains(item.key) {
                        out.append((sp.field("items").index(ii).field("key"), "\(kind.rawValue) \(p.name) has no key \"\(item.key)\""))
                    }
                }
            case .persistentVolumeClaim(let claim, _):
                if !claim.isEmpty && index.object(.persistentVolumeClaim, ns, claim) == nil {
                    out.append((vp.field("persistentVolumeClaim").field("claimName"),
                                "\(ObjectKey(kind: .persistentVolumeClaim, namespace: ns, name: claim)) is not defined in this set"))
                }
            default: break
            }
        }
        return out
    }

    /// Pod templates by namespace and label pair, so that matching a Service to its pods does not scan every object.
    struct TemplateIndex {
        struct Entry {
            let labels: [String: String]
            let portNames: Set<String>
        }
        struct LabelKey: Hashable {
            let namespace: String
            let key: String
            let value: String
        }
        var entries: [Entry] = []
        var byLabel: [LabelKey: [Int]] = [:]

        init(_ objects: [SourcedObject]) {
            for o in objects {
                guard let (t, _) = o.object.podTemplate else { continue }
                let ns = o.object.key.namespace
                let names = Set(t.spec.containers.flatMap { $0.ports.compactMap(\.name) })
                for (k, v) in t.labels { byLabel[LabelKey(namespace: ns, key: k, value: v), default: []].append(entries.count) }
                entries.append(Entry(labels: t.labels, portNames: names))
            }
        }

        func selected(by selector: [String: String], namespace: String) -> [Entry] {
            guard let (k, v) = selector.min(by: { $0.key < $1.key }) else { return [] }
            let candidates = byLabel[LabelKey(namespace: namespace, key: k, value: v)] ?? []
            return candidates.map { entries[$0] }.filter { e in selector.allSatisfy { e.labels[$0.key] == $0.value } }
        }
    }

    /// A Service's named targetPort must name a port of at least one pod template it selects.
    static func servicePorts(_ s: Service, namespace: String, templates: TemplateIndex) -> [(FieldPath, String)] {
        let selected = templates.selected(by: s.selector, namespace: namespace)
        guard !selected.isEmpty else { return [] }
        let names = selected.reduce(into: Set<String>()) { $0.formUnion($1.portNames) }
        var out: [(FieldPath, String)] = []
        for (i, p) in s.ports.enumerated() {
            guard case .string(let name)? = p.targetPort, !names.contains(name) else { continue }
            var message = "no pod selected by this Service has a port named \"\(name)\""
            if let near = Names.suggestion(for: name, among: names) { message += " (did you mean \"\(near)\"?)" }
            out.append((FieldPath(dotted: "spec").field("ports").index(i).field("targetPort"), message))
        }
        return out
    }
}
