import BerthModel

/// A small tree of observed values (replicas, conditions, pods), rendered as YAML with the keys in the
/// order given, so that the same state always renders the same bytes.
public indirect enum StatusValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([StatusValue])
    case map([StatusField])

    func render(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent)
        switch self {
        case .list(let items):
            for item in items {
                out += pad + "-"
                switch item {
                case .map(let fields) where !fields.isEmpty:
                    // The first key shares the dash's line, as people write YAML lists of maps.
                    var block = ""
                    StatusValue.map(fields).render(into: &block, indent: indent + 2)
                    out += " " + block.dropFirst(indent + 2)
                default:
                    out += " " + item.inline + "\n"
                }
            }
        case .map(let fields):
            for f in fields {
                switch f.value {
                case .list(let items) where !items.isEmpty:
                    out += pad + f.key + ":\n"
                    f.value.render(into: &out, indent: indent + 2)
                case .map(let inner) where !inner.isEmpty:
                    out += pad + f.key + ":\n"
                    f.value.render(into: &out, indent: indent + 2)
                default:
                    out += pad + f.key + ": " + f.value.inline + "\n"
                }
            }
        default:
            out += pad + inline + "\n"
        }
    }

    var inline: String {
        switch self {
        case .string(let s): return quotedString(s)
        case .int(let n): return String(n)
        case .bool(let b): return b ? "true" : "false"
        case .list: return "[]"
        case .map: return "{}"
        }
    }
}

public struct StatusField: Sendable, Equatable {
    public var key: String
    public var value: StatusValue
    public init(_ key: String, _ value: StatusValue) {
        self.key = key
        self.value = value
    }
}
