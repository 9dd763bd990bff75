/// A double-quoted string with JSON escapes; the same text is a valid YAML double-quoted scalar,
/// so it serves JSON output and the status branch's YAML alike.
public func quotedString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20 || u.value == 0x7f:
            let hex = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and line breaks (Foundation-free, for the runtime's
    /// small binary).
    public func trimmed() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}

/// JSON text of a tree of dictionaries, arrays, strings, integers and booleans, keys sorted and
/// indented two spaces, or on one line with `indent: nil` (Foundation-free, for the runtime's small binary).
public func jsonText(_ value: Any, indent: String? = "") -> String {
    let inner = indent.map { $0 + "  " }
    let open = inner == nil ? "" : "\n", separator = inner == nil ? ", " : ",\n"
    let close = indent.map { "\n" + $0 } ?? ""
    switch value {
    case let s as String: return quotedString(s)
    case let b as Bool: return b ? "true" : "false"
    case let i as Int: return String(i)
    case let i as Int32: return String(i)
    case let i as Int64: return String(i)
    case let u as UInt32: return String(u)
    case let u as UInt64: return String(u)
    case let d as [String: Any]:
        if d.isEmpty { return "{}" }
        let items = d.keys.sorted().map { (inner ?? "") + quotedString($0) + ": " + jsonText(d[$0]!, indent: inner) }
        return "{" + open + items.joined(separator: separator) + close + "}"
    case let a as [Any]:
        if a.isEmpty { return "[]" }
        return "[" + open + a.map { (inner ?? "") + jsonText($0, indent: inner) }.joined(separator: separator) + close + "]"
    default: return "null"
    }
}
