import Foundation

/// OpenSSH known_hosts entries, for checking a server's host key (plain and hashed host names,
/// `[host]:port`, wildcards and negation; `@revoked` keys are refused).
public struct KnownHosts: Sendable {
    struct Entry: Sendable {
        var patterns: [String]
        var hashed: (salt: [UInt8], hash: [UInt8])?
        var keyType: String
        var key: [UInt8]
        var revoked: Bool
    }

    public enum Verdict: Sendable, Equatable {
        case trusted
        case unknown
        /// The host is listed with other keys: the key changed, or someone is in the middle.
        case changed
        case revoked
    }

    var entries: [Entry] = []

    public init(text: String) {
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            var fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            var revoked = false
            if fields[0].hasPrefix("@") {
                if fields[0] == "@revoked" { revoked = true } else { continue }
                fields.removeFirst()
            }
            guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { continue }
            var entry = Entry(patterns: [], hashed: nil, keyType: fields[1], key: [UInt8](key), revoked: revoked)
            if fields[0].hasPrefix("|1|") {
                let parts = fields[0].split(separator: "|")
                guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])),
                      let hash = Data(base64Encoded: String(parts[2])) else { continue }
                entry.hashed = ([UInt8](salt), [UInt8](hash))
            } else {
                entry.patterns = fields[0].split(separator: ",").map(String.init)
            }
            entries.append(entry)
        }
    }

    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GitError(code: -1, message: "cannot read known_hosts file \(path)", operation: "load known hosts")
        }
        self.init(text: String(decoding: data, as: UTF8.self))
    }

    /// The name a host is listed under: `host` on port 22, `[host]:port` otherwise.
    static func name(host: String, port: Int) -> String { port == 22 ? host : "[\(host)]:\(port)" }

    public func verdict(host: String, port: Int, key: [UInt8]) -> Verdict {
        let name = KnownHosts.name(host: host, port: port)
        let listed = entries.filter { matches($0, name) }
        if listed.contains(where: { $0.revoked && $0.key == key }) { return .revoked }
        if listed.contains(where: { !$0.revoked && $0.key == key }) { return .trusted }
        return listed.contains(where: { !$0.revoked }) ? .changed : .unknown
    }

    func matches(_ e: Entry, _ name: String) -> Bool {
        if let (salt, hash) = e.hashed {
            return SHA1.hmac(key: salt, message: Array(name.utf8)) == hash
        }
        var matched = false
        for p in e.patterns {
            if p.hasPrefix("!") {
                if KnownHosts.wildcard(Array(p.utf8.dropFirst()), Array(name.utf8)) { return false }
            } else if KnownHosts.wildcard(Array(p.utf8), Array(name.utf8)) {
                matched = true
            }
        }
        return matched
    }
}

extension KnownHosts {
    /// OpenSSH's host patterns: `*` and `?` only (brackets are literal, as in `[host]:port`), case-insensitive.
    static func wildcard(_ p: [UInt8], _ s: [UInt8]) -> Bool {
        func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }
        var pi = 0, si = 0, star = -1, mark = 0
        while si < s.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || lower(p[pi]) == lower(s[si])) {
                pi += 1
                si += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = si
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

/// SHA-1, only for matching hashed known_hosts names (HMAC-SHA1, as OpenSSH writes them).
enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
        var m = message
        let bitLength = UInt64(message.count) * 8
        m.append(0x80)
        while m.count % 64 != 56 { m.append(0) }
        for i in (0..<8).reversed() { m.append(UInt8((bitLength >> (UInt64(i) * 8)) & 0xff)) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: m.count, by: 64) {
            for i in 0..<16 {
                w[i] = UInt32(m[chunk + 4 * i]) << 24 | UInt32(m[chunk + 4 * i + 1]) << 16
                    | UInt32(m[chunk + 4 * i + 2]) << 8 | UInt32(m[chunk + 4 * i + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = (x << 1) | (x >> 31)
            }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A827999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1BBCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62C1D6)
                }
                let t = ((a << 5) | (a >> 27)) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, (b << 30) | (b >> 2), a, t)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e
        }
        return h.flatMap { v in (0..<4).map { UInt8((v >> (24 - 8 * UInt32($0))) & 0xff) } }
    }

    static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? hash(key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = hash(k.map { $0 ^ 0x36 } + message)
        return hash(k.map { $0 ^ 0x5c } + inner)
    }
}
