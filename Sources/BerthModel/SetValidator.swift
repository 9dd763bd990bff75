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
/// It works on `ObjectFacts`, derived once per object, so that it stays cheap for large sets.
public enum SetValidator {
    public static func validate(_ objects: [SourcedObject]) -> [Violation] {
        validate(objects.map { ObjectFacts($0.object) }, origins: objects.map(\.origin))
    }

    public static func validate(_ facts: [ObjectFacts], origins: [SourceLocation]) -> [Violation] {
        var out: [Violation] = []
        var first: [ObjectKey: Int] = [:]
        first.reserveCapacity(facts.count)
        var repeated: [ObjectKey: [Int]] = [:]
        for (i, f) in facts.enumerated() {
            if let existing = first[f.key] {
                repeated[f.key, default: [existing]].append(i)
            } else {
                first[f.key] = i
            }
        }
        // A nameless object already has its own finding; it is nobody's duplicate.
        for (key, indices) in repeated where !key.name.isEmpty {
            for i in indices {
                let others = indices.filter { $0 != i }.map { origins[$0].description }
                out.append(Violation(objectIndex: i, field: FieldPath(dotted: "metadata.name"),
                                     message: "\(key) is defined more than once; also at \(others.joined(separator: ", "))"))
            }
        }
        let templates = TemplateIndex(facts)
        for (i, f) in facts.enumerated() {
            let ns = f.key.namespace
            for r in f.references {
                let target = ObjectKey(kind: r.kind, namespace: ns, name: r.name)
                guard let t = first[target] else {
                    let hint = r.kind == .persistentVolumeClaim ? "" : " (set optional: true if it may be missing)"
                    out.append(Violation(objectIndex: i, field: r.field, message: "\(target) is not defined in this set\(hint)"))
                    continue
                }
                if let keys = facts[t].configKeys {
                    for use in r.keys where !use.key.isEmpty && !keys.contains(use.key) {
                        out.append(Violation(objectIndex: i, field: use.field, message: "\(r.kind.rawValue) \(r.name) has no key \"\(use.key)\""))
                    }
                }
            }
            if let target = f.autoscalerTarget {
                let key = ObjectKey(kind: .deployment, namespace: ns, name: target)
                if first[key] == nil {
                    out.append(Violation(objectIndex: i, field: FieldPath(dotted: "spec.scaleTargetRef.name"),
                                         message: "\(key) is not defined in this set"))
                }
            }
            if !f.namedTargetPorts.isEmpty {
                let selected = templates.selected(by: f)
                guard !selected.isEmpty else { continue }
                let names = selected.reduce(into: Set<String>()) { $0.formUnion(facts[$1].templatePortNames) }
                for p in f.namedTargetPorts where !names.contains(p.name) {
                    var message = "no pod selected by this Service has a port named \"\(p.name)\""
                    if let near = Names.suggestion(for: p.name, among: names) { message += " (did you mean \"\(near)\"?)" }
                    out.append(Violation(objectIndex: i, field: FieldPath(dotted: "spec").field("ports").index(p.index).field("targetPort"),
                                         message: message))
                }
            }
        }
        return out
    }

    /// Pod templates by namespace and label pair, so that a Service finds its pods without scanning every
    /// object. Only the label pairs that Services with named target ports look up are indexed.
    struct TemplateIndex {
        let facts: [ObjectFacts]
        var byLabel: [String: [Int]] = [:]

        init(_ facts: [ObjectFacts]) {
            self.facts = facts
            var wanted = Set<String>()
            for f in facts { if let t = f.anchorToken { wanted.insert(t) } }
            guard !wanted.isEmpty else { return }
            for (i, f) in facts.enumerated() {
                for t in f.labelTokens where wanted.contains(t) { byLabel[t, default: []].append(i) }
            }
        }

        /// Indexes of the templates a Service selects.
        func selected(by service: ObjectFacts) -> [Int] {
            guard let anchor = service.anchorToken else { return [] }
            let selector = service.serviceSelector
            return (byLabel[anchor] ?? []).filter { i in
                let labels = facts[i].templateLabels ?? [:]
                return selector.allSatisfy { labels[$0.key] == $0.value }
            }
        }
    }
}
