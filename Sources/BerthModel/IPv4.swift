/// An IPv4 address.
public struct IPv4: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard let b = UInt8(p), String(b) == p else { return nil }
            v = v << 8 | UInt32(b)
        }
        value = v
    }

    public var description: String { "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)" }
    public static func < (a: IPv4, b: IPv4) -> Bool { a.value < b.value }
}

/// An IPv4 network, `10.244.0.0/24`.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public var network: IPv4
    public var prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let ip = IPv4(parts[0]), let p = Int(parts[1]), (8...30).contains(p) else { return nil }
        prefix = p
        network = IPv4(ip.value & CIDR.mask(p))
    }

    public static func mask(_ p: Int) -> UInt32 { p == 0 ? 0 : UInt32.max << (32 - p) }
    public var description: String { "\(network)/\(prefix)" }
    /// The first usable address (the bridge's on a pod network, the API's on a service network).
    public var first: IPv4 { IPv4(network.value + 1) }
    /// The last usable address (before broadcast).
    public var last: IPv4 { IPv4((network.value | ~CIDR.mask(prefix)) - 1) }
    public func contains(_ ip: IPv4) -> Bool { ip.value & CIDR.mask(prefix) == network.value }
    /// The networks share an address (one contains the other).
    public func overlaps(_ other: CIDR) -> Bool { contains(other.network) || other.contains(network) }
}
