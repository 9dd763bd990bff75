import CGit2

/// A Git object id (SHA-1), held as its 20 raw bytes: cheap to hash and compare, as the blob cache
/// of a large repository does thousands of times per snapshot.
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible {
    private let high: UInt64
    private let middle: UInt64
    private let low: UInt32

    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 40 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 20)
        for i in 0..<20 {
            guard let h = ObjectID.nibble(digits[2 * i]), let l = ObjectID.nibble(digits[2 * i + 1]) else { return nil }
            bytes[i] = h << 4 | l
        }
        self.init(bytes: bytes)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        default: return nil
        }
    }

    private init(bytes: [UInt8]) {
        func word(_ range: Range<Int>) -> UInt64 { range.reduce(0) { $0 << 8 | UInt64(bytes[$1]) } }
        high = word(0..<8)
        middle = word(8..<16)
        low = UInt32(word(16..<20))
    }

    init(_ oid: git_oid) {
        self.init(bytes: withUnsafeBytes(of: oid.id) { Array($0) })
    }

    var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: middle >> (56 - 8 * UInt64($0))) }
            + (0..<4).map { UInt8(truncatingIfNeeded: low >> (24 - 8 * UInt32($0))) }
    }

    var oid: git_oid {
        var o = git_oid()
        let b = bytes
        withUnsafeMutableBytes(of: &o.id) { for i in 0..<20 { $0[i] = b[i] } }
        return o
    }

    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(40)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var short: String { String(hex.prefix(7)) }
    public var description: String { hex }
    public static func < (a: ObjectID, b: ObjectID) -> Bool { (a.high, a.middle, a.low) < (b.high, b.middle, b.low) }
}
