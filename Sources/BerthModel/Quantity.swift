/// A Kubernetes resource quantity (`100m`, `0.5`, `128Mi`, `1G`, `1e3`), kept exactly in thousandths
/// of a unit, rounded up below that the way Kubernetes' `MilliValue` does.
public struct Quantity: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// The value in thousandths of the unit: 500 for `500m` CPU, 134_217_728_000 for `128Mi`.
    public let milli: Int64
    /// The text as written in the manifest.
    public let text: String

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case malformed(String)
        case tooLarge(String)

        public var description: String {
            switch self {
            case .empty: return "quantity is empty"
            case .malformed(let s):
                return "\"\(s)\" is not a quantity (examples: 100m, 0.5, 128Mi, 1G, 1e3)"
            case .tooLarge(let s): return "quantity \"\(s)\" is too large"
            }
        }
    }

    public init(milli: Int64) {
        self.milli = milli
        self.text = Quantity.format(milli: milli)
    }

    public init(parsing text: String) throws(ParseError) {
        self.text = text
        self.milli = try Quantity.parseMilli(text)
    }

    /// Whole units, rounded up (`1500m` → 2).
    public var value: Int64 {
        milli >= 0 ? (milli / 1000 + (milli % 1000 == 0 ? 0 : 1)) : milli / 1000
    }

    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }

    public static func < (a: Quantity, b: Quantity) -> Bool { a.milli < b.milli }
    public static func == (a: Quantity, b: Quantity) -> Bool { a.milli == b.milli }
    public func hash(into h: inout Hasher) { h.combine(milli) }

    static func format(milli: Int64) -> String {
        if milli % 1000 == 0 { return String(milli / 1000) }
        return "\(milli)m"
    }

    private static func parseMilli(_ s: String) throws(ParseError) -> Int64 {
        let bytes = Array(s.utf8)
        if bytes.isEmpty { throw .empty }
        var i = 0
        var negative = false
        if bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
            negative = bytes[i] == UInt8(ascii: "-")
            i += 1
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var sawPoint = false
        while i < bytes.count {
            let b = bytes[i]
            if b >= 48 && b <= 57 {
                digits.append(b - 48)
                if sawPoint { fractionDigits += 1 }
            } else if b == UInt8(ascii: ".") && !sawPoint {
                sawPoint = true
            } else {
                break
            }
            i += 1
        }
        if digits.isEmpty { throw .malformed(s) }
        let suffix = String(decoding: bytes[i...], as: UTF8.self)
        var exp10 = 0
        var exp1024 = 0
        switch suffix {
        case "": break
        case "n": exp10 = -9
        case "u": exp10 = -6
        case "m": exp10 = -3
        case "k": exp10 = 3
        case "M": exp10 = 6
        case "G": exp10 = 9
        case "T": exp10 = 12
        case "P": exp10 = 15
        case "E": exp10 = 18
        case "Ki": exp1024 = 1
        case "Mi": exp1024 = 2
        case "Gi": exp1024 = 3
        case "Ti": exp1024 = 4
        case "Pi": exp1024 = 5
        case "Ei": exp1024 = 6
        default:
            let rest = Array(suffix.utf8)
            guard rest.count >= 2, rest[0] == UInt8(ascii: "e") || rest[0] == UInt8(ascii: "E"),
                  rest.count <= 5, let e = Int(String(decoding: rest[1...], as: UTF8.self))
            else { throw .malformed(s) }
            exp10 = e
        }
        // value = digits × 10^(exp10 + 3 − fractionDigits) × 1024^exp1024, rounded up.
        var scale10 = exp10 + 3 - fractionDigits
        // Leading zeros do not change the value; dropping them keeps "0.000001" from overflowing.
        var start = 0
        while start < digits.count - 1 && digits[start] == 0 { start += 1 }
        var n: Int64 = 0
        var remainderNonZero = false
        for d in digits[start...] {
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(d))
            if o1 || o2 {
                // Too many significant digits: only possible below the unit when scale is negative.
                if scale10 < 0 {
                    if d != 0 { remainderNonZero = true }
                    scale10 += 1
                    continue
                }
                throw .tooLarge(s)
            }
            n = a
        }
        if n == 0 { return 0 }
        var value = n
        if scale10 > 0 {
            for _ in 0..<scale10 {
                let (m, o) = value.multipliedReportingOverflow(by: 10)
                if o { throw .tooLarge(s) }
                value = m
            }
        }
        for _ in 0..<exp1024 {
            let (m, o) = value.multipliedReportingOverflow(by: 1024)
            if o { throw .tooLarge(s) }
            value = m
        }
        if scale10 < 0 {
            var divisor: Int64 = 1
            var tiny = false
            for _ in 0..<(-scale10) {
                let (m, o) = divisor.multipliedReportingOverflow(by: 10)
                if o { tiny = true; break }
                divisor = m
            }
            if tiny {
                value = 1
            } else {
                let q = value / divisor
                value = (value % divisor != 0 || remainderNonZero) ? q + 1 : q
            }
        } else if remainderNonZero {
            value += 1
        }
        return negative ? -value : value
    }
}
