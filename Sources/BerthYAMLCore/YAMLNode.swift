import BerthModel


/// A position in a YAML source; 1-based.
public struct Mark: Sendable, Hashable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// A YAML node with the place it was written, produced from libyaml's events.
/// Aliases are resolved to the anchored node (shared storage, counted against the expansion budget).
public struct YAMLNode: Sendable {
    public enum ScalarStyle: Sendable, Hashable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    public struct Pair: Sendable {
        public var key: YAMLNode
        public var value: YAMLNode
    }

    public enum Value: Sendable {
        case scalar(String, ScalarStyle)
        case sequence([YAMLNode])
        case mapping([Pair])
    }

    public var value: Value
    public var mark: Mark
    /// The explicit tag, if any, in its resolved form (`tag:yaml.org,2002:str`).
    public var tag: String?
    /// Nodes in this subtree, counting each alias by the size of what it expands to.
    var size: Int

    init(value: Value, mark: Mark, tag: String?, size: Int) {
        self.value = value
        self.mark = mark
        self.tag = tag
        self.size = size
    }

    /// `{}` at the start of a file, for readers that treat a missing object as an empty one.
    public static let emptyMapping = YAMLNode(value: .mapping([]), mark: Mark(line: 1, column: 1), tag: nil, size: 1)

    /// What a scalar means under YAML 1.1's rules as Kubernetes reads them.
    public enum Resolved: Sendable, Equatable {
        case null
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string(String)
    }

    /// The kind of this node, in words for error messages.
    public var kindDescription: String {
        switch value {
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .scalar:
            switch resolved {
            case .null: return "null"
            case .bool: return "a boolean"
            case .int, .float: return "a number"
            case .string, nil: return "a string"
            }
        }
    }

    /// The resolved scalar, nil for collections.
    public var resolved: Resolved? {
        guard case .scalar(let text, let style) = value else { return nil }
        let strTag = "tag:yaml.org,2002:str"
        if tag == strTag || style != .plain { return .string(text) }
        return YAMLNode.resolvePlain(text, tag: tag)
    }

    static func resolvePlain(_ s: String, tag: String?) -> Resolved {
        switch tag {
        case "tag:yaml.org,2002:null": return .null
        case "tag:yaml.org,2002:bool": return resolveBool(s).map { .bool($0) } ?? .string(s)
        case "tag:yaml.org,2002:int": return resolveInt(s).map { .int($0) } ?? .string(s)
        case "tag:yaml.org,2002:float": return Double(s).map { .float($0) } ?? .string(s)
        default: break
        }
        switch s {
        case "", "~", "null", "Null", "NULL": return .null
        default: break
        }
        if let b = resolveBool(s) { return .bool(b) }
        guard let first = s.utf8.first, (first >= 48 && first <= 57) || first == 45 || first == 43 || first == 46 else {
            return .string(s)
        }
        if let i = resolveInt(s) { return .int(i) }
        if let d = resolveFloat(s) { return .float(d) }
        return .string(s)
    }

    static func resolveBool(_ s: String) -> Bool? {
        switch s {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N": return false
        default: return nil
        }
    }

    static func resolveInt(_ s: String) -> Int? {
        var t = Substring(s.filter { $0 != "_" })
        var sign = 1
        if t.hasPrefix("-") { sign = -1; t = t.dropFirst() } else if t.hasPrefix("+") { t = t.dropFirst() }
        guard !t.isEmpty else { return nil }
        if t.hasPrefix("0x") { return Int(t.dropFirst(2), radix: 16).map { $0 * sign } }
        if t.hasPrefix("0o") { return Int(t.dropFirst(2), radix: 8).map { $0 * sign } }
        if t.hasPrefix("0b") { return Int(t.dropFirst(2), radix: 2).map { $0 * sign } }
        guard t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        if t.count > 1 && t.hasPrefix("0") { return Int(t.dropFirst(), radix: 8).map { $0 * sign } }
        return Int(t).map { $0 * sign }
    }

    static func resolveFloat(_ s: String) -> Double? {
        switch s {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        let allowed = s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 101 || $0 == 69 || $0 == 45 || $0 == 43 }
        guard allowed, s.utf8.contains(where: { $0 >= 48 && $0 <= 57 }) else { return nil }
        return Double(s)
    }

    /// The node at a field path, or the deepest node on the way there; for placing findings.
    public func locate(_ path: FieldPath) -> Mark {
        var node = self
        var mark = self.mark
        for c in path.components {
            switch (c, node.value) {
            case (.field(let name), .mapping(let pairs)), (.key(let name), .mapping(let pairs)):
                guard let p = pairs.last(where: { $0.key.scalarText == name }) else { return mark }
                mark = p.key.mark
                node = p.value
            case (.index(let i), .sequence(let items)):
                guard i >= 0 && i < items.count else { return mark }
                node = items[i]
                mark = node.mark
            default:
                return mark
            }
        }
        return mark
    }

    public var scalarText: String? {
        if case .scalar(let s, _) = value { return s }
        return nil
    }
}
