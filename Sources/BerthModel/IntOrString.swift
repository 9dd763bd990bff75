/// A Kubernetes int-or-string: a port number or port name, a count or a percentage.
public enum IntOrString: Sendable, Hashable, CustomStringConvertible, Codable {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let i): try c.encode(i)
        case .string(let s): try c.encode(s)
        }
    }

    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .string(let s): return s
        }
    }

    /// For maxSurge/maxUnavailable: an absolute count, or a percentage of `total`, rounded up or down.
    public func scaled(total: Int, roundUp: Bool) -> Int? {
        switch self {
        case .int(let i): return i
        case .string(let s):
            guard s.hasSuffix("%"), let p = Int(s.dropLast()), p >= 0 else { return nil }
            let product = p * total
            return roundUp ? (product + 99) / 100 : product / 100
        }
    }
}
