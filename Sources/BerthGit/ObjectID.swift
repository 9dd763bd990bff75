import CGit2

/// A Git object id (SHA-1), held as its 40-character hex form.
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let hex: String

    public init?(hex: String) {
        guard hex.utf8.count == 40, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        self.hex = hex
    }

    init(_ oid: git_oid) {
        var copy = oid
        var buf = [CChar](repeating: 0, count: 40)
        git_oid_fmt(&buf, &copy)
        hex = String(decoding: buf.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var oid: git_oid {
        var o = git_oid()
        git_oid_fromstr(&o, hex)
        return o
    }

    public var short: String { String(hex.prefix(7)) }
    public var description: String { hex }
    public static func < (a: ObjectID, b: ObjectID) -> Bool { a.hex < b.hex }
}
