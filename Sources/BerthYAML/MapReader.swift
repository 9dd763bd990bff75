import BerthModel

/// Reads the fields of one YAML mapping into typed values, and reports what it could not read:
/// wrong types, missing required fields, fields Kubernetes has that berth ignores (warnings), and
/// fields nobody has (errors with the nearest known name).
final class MapReader {
    let node: YAMLNode
    let path: FieldPath
    let ctx: DecodeContext
    private let pairs: [YAMLNode.Pair]
    private var known: Set<String> = []
    private var ignored: [String: String] = [:]

    /// nil (after reporting) when the node is not a mapping.
    init?(_ node: YAMLNode, path: FieldPath, ctx: DecodeContext, at mark: Mark? = nil) {
        guard case .mapping(let pairs) = node.value else {
            ctx.error("expected a mapping, found \(node.kindDescription)", at: mark ?? node.mark, field: path)
            return nil
        }
        self.node = node
        self.path = path
        self.ctx = ctx
        self.pairs = pairs
        MapReader.reportDuplicates(pairs, path: path, ctx: ctx, isField: true)
    }

    static func reportDuplicates(_ pairs: [YAMLNode.Pair], path: FieldPath, ctx: DecodeContext, isField: Bool) {
        guard pairs.count > 1 else { return }
        var first: [String: Mark] = [:]
        for p in pairs {
            guard let k = p.key.scalarText else { continue }
            if let m = first[k] {
                ctx.error("\"\(k)\" is set twice (first at line \(m.line))", at: p.key.mark,
                          field: isField ? path.field(k) : path.key(k))
            } else {
                first[k] = p.key.mark
            }
        }
    }

    // MARK: lookup

    /// The pair for a field, registering the field as known; null values count as absent.
    private func pair(_ key: String) -> YAMLNode.Pair? {
        known.insert(key)
        guard let p = pairs.last(where: { $0.key.scalarText == key }) else { return nil }
        if p.value.resolved == .null { return nil }
        return p
    }

    func has(_ key: String) -> Bool { pair(key) != nil }

    /// Where a field's key is written, or the mapping itself when the field is absent.
    func mark(_ key: String) -> Mark {
        pairs.last(where: { $0.key.scalarText == key })?.key.mark ?? node.mark
    }

    private func missing(_ key: String) {
        ctx.error("missing required field \"\(key)\"", at: node.mark, field: path.field(key))
    }

    func error(_ key: String, _ message: String) { ctx.error(message, at: mark(key), field: path.field(key)) }
    func warning(_ key: String, _ message: String) { ctx.warning(message, at: mark(key), field: path.field(key)) }

    private func typeError(_ key: String, expected: String, found node: YAMLNode, hint: String = "") {
        ctx.error("expected \(expected), found \(node.kindDescription)\(hint)", at: node.mark, field: path.field(key))
    }

    // MARK: scalars

    func string(_ key: String, required: Bool = false, redact: Bool = false) -> String? {
        guard let p = pair(key) else {
            if required { missing(key) }
            return nil
        }
        return MapReader.string(p.value, ctx: ctx, field: path.field(key), redact: redact)
    }

    /// A string from a scalar; numbers and booleans are rejected with a hint to quote them, as Kubernetes does.
    /// `redact` keeps the value out of the message (Secret values).
    static func string(_ node: YAMLNode, ctx: DecodeContext, field: FieldPath, redact: Bool = false) -> String? {
        switch node.resolved {
        case .string(let s): return s
        case .int, .float, .bool:
            let hint = redact ? "quote it" : "quote it: \"\(node.scalarText ?? "")\""
            ctx.error("expected a string, found \(node.kindDescription); \(hint)", at: node.mark, field: field)
            return nil
        case .null: return nil
        case nil:
            ctx.error("expected a string, found \(node.kindDescription)", at: node.mark, field: field)
            return nil
        }
    }

    func int(_ key: String, required: Bool = false, min: Int? = nil, max: Int? = nil) -> Int? {
        guard let p = pair(key) else {
            if required { missing(key) }
            return nil
        }
        guard case .int(let i) = p.value.resolved else {
            typeError(key, expected: "an integer", found: p.value)
            return nil
        }
        if let min, i < min {
            ctx.error("must be at least \(min), not \(i)", at: p.value.mark, field: path.field(key))
            return nil
        }
        if let max, i > max {
            ctx.error("must be at most \(max), not \(i)", at: p.value.mark, field: path.field(key))
            return nil
        }
        return i
    }

    func bool(_ key: String) -> Bool? {
        guard let p = pair(key) else { return nil }
        guard case .bool(let b) = p.value.resolved else {
            typeError(key, expected: "true or false", found: p.value)
            return nil
        }
        return b
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type, required: Bool = false) -> E?
    where E.RawValue == String {
        guard let s = string(key, required: required) else { return nil }
        if let e = E(rawValue: s) { return e }
        let allowed = E.allCases.map(\.rawValue)
        var message = "unsupported value \"\(s)\": must be one of \(allowed.joined(separator: ", "))"
        if let near = Names.suggestion(for: s, among: allowed) { message += " (did you mean \"\(near)\"?)" }
        ctx.error(message, at: pair(key)!.value.mark, field: path.field(key))
        return nil
    }

    func quantity(_ key: String, required: Bool = false) -> Quantity? {
        guard let p = pair(key) else {
            if required { missing(key) }
            return nil
        }
        return MapReader.quantity(p.value, ctx: ctx, field: path.field(key))
    }

    static func quantity(_ node: YAMLNode, ctx: DecodeContext, field: FieldPath) -> Quantity? {
        guard let text = node.scalarText, node.resolved != nil, node.resolved != .null else {
            ctx.error("expected a quantity such as 100m or 128Mi, found \(node.kindDescription)", at: node.mark, field: field)
            return nil
        }
        do {
            let q = try Quantity(parsing: text)
            if q.milli < 0 {
                ctx.error("quantity must not be negative", at: node.mark, field: field)
                return nil
            }
            return q
        } catch {
            ctx.error(error.description, at: node.mark, field: field)
            return nil
        }
    }

    func intOrString(_ key: String, required: Bool = false) -> IntOrString? {
        guard let p = pair(key) else {
            if required { missing(key) }
            return nil
        }
        switch p.value.resolved {
        case .int(let i): return .int(i)
        case .string(let s): return .string(s)
        default:
            typeError(key, expected: "an integer or a string", found: p.value)
            return nil
        }
    }

    // MARK: collections

    func stringList(_ key: String, required: Bool = false) -> [String]? {
        guard let items = sequence(key, required: required) else { return nil }
        return items.enumerated().compactMap { i, item in
            MapReader.string(item, ctx: ctx, field: path.field(key).index(i))
        }
    }

    /// A free-form map of strings (labels, annotations, data).
    func stringMap(_ key: String, redact: Bool = false) -> [String: String]? {
        guard let p = pair(key) else { return nil }
        guard case .mapping(let entries) = p.value.value else {
            typeError(key, expected: "a mapping of strings", found: p.value)
            return nil
        }
        let field = path.field(key)
        MapReader.reportDuplicates(entries, path: field, ctx: ctx, isField: false)
        var out: [String: String] = [:]
        out.reserveCapacity(entries.count)
        for e in entries {
            guard let k = e.key.scalarText else { continue }
            if e.value.resolved == .null {
                out[k] = ""
            } else if let v = MapReader.string(e.value, ctx: ctx, field: field.key(k), redact: redact) {
                out[k] = v
            }
        }
        return out
    }

    /// The entries of a free-form map, for callers that read values of other types.
    func entries(_ key: String) -> [(key: String, keyMark: Mark, value: YAMLNode)]? {
        guard let p = pair(key) else { return nil }
        guard case .mapping(let entries) = p.value.value else {
            typeError(key, expected: "a mapping", found: p.value)
            return nil
        }
        MapReader.reportDuplicates(entries, path: path.field(key), ctx: ctx, isField: false)
        return entries.compactMap { e in e.key.scalarText.map { ($0, e.key.mark, e.value) } }
    }

    func sequence(_ key: String, required: Bool = false) -> [YAMLNode]? {
        guard let p = pair(key) else {
            if required { missing(key) }
            return nil
        }
        guard case .sequence(let items) = p.value.value else {
            typeError(key, expected: "a list", found: p.value)
            return nil
        }
        if required && items.isEmpty {
            ctx.error("must have at least one item", at: p.key.mark, field: path.field(key))
        }
        return items
    }

    func object<T>(_ key: String, required: Bool = false, _ body: (MapReader) -> T) -> T? {
        guard let p = pair(key) else {
            if required { missing(key) }
            return nil
        }
        guard let r = MapReader(p.value, path: path.field(key), ctx: ctx) else { return nil }
        let value = body(r)
        r.finish()
        return value
    }

    func objects<T>(_ key: String, required: Bool = false, _ body: (MapReader) -> T) -> [T]? {
        guard let items = sequence(key, required: required) else { return nil }
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let r = MapReader(item, path: path.field(key).index(i), ctx: ctx) else { continue }
            out.append(body(r))
            r.finish()
        }
        return out
    }

    /// For unions (a volume's source, a probe's handler): the one option set; reports two set, or none.
    func exactlyOne<T>(_ rule: String, _ options: [(String, T?)], noneMessage: String?) -> T? {
        let set = options.compactMap { name, value in value.map { (name, $0) } }
        if set.count > 1 {
            error(set[1].0, "\(rule); \(set.map(\.0).joined(separator: " and ")) are both set")
        }
        if set.isEmpty, let noneMessage { ctx.error(noneMessage, at: node.mark, field: path) }
        return set.first?.1
    }

    // MARK: unknown fields

    /// Kubernetes fields berth does not implement: present ones are warned about, not rejected.
    func ignore(_ keys: String...) {
        for k in keys { ignored[k] = "" }
    }

    /// Reports every field nobody asked for: an unimplemented Kubernetes field as a warning, anything else as an error.
    func finish() {
        for p in pairs {
            guard let k = p.key.scalarText, !known.contains(k) else { continue }
            if ignored[k] != nil {
                ctx.warning("berth does not implement \"\(k)\"; it is ignored", at: p.key.mark, field: path.field(k))
                continue
            }
            var message = "unknown field \"\(k)\""
            if let near = Names.suggestion(for: k, among: known.union(ignored.keys)) {
                message += " (did you mean \"\(near)\"?)"
            }
            ctx.error(message, at: p.key.mark, field: path.field(k))
        }
    }
}
