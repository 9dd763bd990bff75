/// A Kubernetes int-or-string: a port number or port name, a count or a percentage.
public enum IntOrString: Sendable, Hashable, CustomStringConvertible {
    case int(Int)
    case string(String)

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
