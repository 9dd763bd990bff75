#if canImport(Glibc)
import Glibc
#endif
import BerthLinux

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

    static func mask(_ p: Int) -> UInt32 { p == 0 ? 0 : UInt32.max << (32 - p) }
    public var description: String { "\(network)/\(prefix)" }
    /// The first usable address (the bridge's on a pod network, the API's on a service network).
    public var first: IPv4 { IPv4(network.value + 1) }
    /// The last usable address (before broadcast).
    public var last: IPv4 { IPv4((network.value | ~CIDR.mask(prefix)) - 1) }
    public func contains(_ ip: IPv4) -> Bool { ip.value & CIDR.mask(prefix) == network.value }
}

/// Addresses handed out from a range, each recorded as a file `<dir>/<ip>` holding its owner, so that an
/// agent restart hands every owner back the address it had.
struct AddressBook {
    let dir: String
    let range: ClosedRange<UInt32>
    private(set) var owners: [IPv4: String] = [:]

    init(dir: String, from: IPv4, to: IPv4) throws {
        self.dir = dir
        range = from.value...to.value
        try Files.makeDirectories(dir, mode: 0o700)
        for name in Files.list(dir) {
            guard let ip = IPv4(name), range.contains(ip.value), let owner = Files.readText(dir + "/" + name, limit: 4096) else { continue }
            owners[ip] = owner
        }
    }

    func address(of owner: String) -> IPv4? { owners.first { $0.value == owner }?.key }

    /// The owner's address, or the lowest free one (or a preferred one, when free: a ClusterIP asked for).
    mutating func assign(_ owner: String, preferred: IPv4? = nil) throws -> IPv4 {
        if let ip = address(of: owner) { return ip }
        var pick: IPv4?
        if let preferred {
            guard range.contains(preferred.value) else { throw NodeError("\(preferred) is outside \(IPv4(range.lowerBound))–\(IPv4(range.upperBound))") }
            guard owners[preferred] == nil else { throw NodeError("\(preferred) is already in use by \(owners[preferred]!)") }
            pick = preferred
        } else {
            var v = range.lowerBound
            while v <= range.upperBound, owners[IPv4(v)] != nil { v += 1 }
            if v <= range.upperBound { pick = IPv4(v) }
        }
        guard let ip = pick else { throw NodeError("no free address left in \(IPv4(range.lowerBound))–\(IPv4(range.upperBound))") }
        try Files.write(owner, to: dir + "/" + ip.description, mode: 0o600)
        owners[ip] = owner
        return ip
    }

    mutating func release(_ owner: String) {
        guard let ip = address(of: owner) else { return }
        unlink(dir + "/" + ip.description)
        owners[ip] = nil
    }
}
