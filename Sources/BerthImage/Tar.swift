import BerthRuntime
import CDeflate

/// One entry of a tar stream (ustar, with PAX and GNU long names).
struct TarEntry {
    var path: String
    var type: UInt8
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var linkname: String
    var devmajor: UInt32
    var devminor: UInt32
    var data: ArraySlice<UInt8>
    var xattrs: [(String, [UInt8])]
}

enum Tar {
    static func octal(_ b: ArraySlice<UInt8>) -> UInt64 {
        // GNU base-256 for large values.
        if let first = b.first, first & 0x80 != 0 {
            return b.dropFirst().reduce(UInt64(first & 0x7f)) { $0 << 8 | UInt64($1) }
        }
        var v: UInt64 = 0
        for c in b where c >= 48 && c <= 55 { v = v << 3 | UInt64(c - 48) }
        return v
    }

    static func string(_ b: ArraySlice<UInt8>) -> String {
        String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Parses a whole archive; `what` names it in errors.
    static func entries(_ bytes: [UInt8], what: String) throws -> [TarEntry] {
        var out: [TarEntry] = []
        var offset = 0
        var paxPath: String?, paxLink: String?, gnuPath: String?, gnuLink: String?
        var paxXattrs: [(String, [UInt8])] = []
        var paxSize: Int?
        while offset + 512 <= bytes.count {
            let h = bytes[offset..<(offset + 512)]
            if h.allSatisfy({ $0 == 0 }) { break }
            let stored = octal(h[(offset + 148)..<(offset + 156)])
            var sum: UInt64 = 0
            for (i, c) in h.enumerated() { sum += (i >= 148 && i < 156) ? 32 : UInt64(c) }
            guard sum == stored else { throw RuntimeError("\(what): damaged tar header at byte \(offset)") }
            let type = h[offset + 156]
            var size = Int(octal(h[(offset + 124)..<(offset + 136)]))
            if let s = paxSize { size = s }
            let start = offset + 512
            guard size >= 0, start + size <= bytes.count else { throw RuntimeError("\(what): truncated tar entry at byte \(offset)") }
            let data = bytes[start..<(start + size)]
            offset = start + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"):
                var records = data[...]
                while let space = records.firstIndex(of: 32), let length = Int(String(decoding: records[records.startIndex..<space], as: UTF8.self)),
                      length > 0, records.startIndex + length <= records.endIndex {
                    let record = records[(space + 1)..<(records.startIndex + length - 1)]
                    if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                        let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
                        let value = record[(eq + 1)...]
                        switch key {
                        case "path": paxPath = String(decoding: value, as: UTF8.self)
                        case "linkpath": paxLink = String(decoding: value, as: UTF8.self)
                        case "size": paxSize = Int(String(decoding: value, as: UTF8.self))
                        default:
                            if key.hasPrefix("SCHILY.xattr.") { paxXattrs.append((String(key.dropFirst(13)), Array(value))) }
                        }
                    }
                    records = records[(records.startIndex + length)...]
                }
                continue
            case UInt8(ascii: "g"):
                continue
            case UInt8(ascii: "L"):
                gnuPath = string(data)
                continue
            case UInt8(ascii: "K"):
                gnuLink = string(data)
                continue
            default:
                break
            }
            var name = string(bytes[(start - 512)..<(start - 512 + 100)])
            let prefix = string(bytes[(start - 512 + 345)..<(start - 512 + 500)])
            if !prefix.isEmpty && string(bytes[(start - 512 + 257)..<(start - 512 + 262)]) == "ustar" { name = prefix + "/" + name }
            out.append(TarEntry(path: paxPath ?? gnuPath ?? name, type: type == 0 ? UInt8(ascii: "0") : type,
                                mode: UInt32(octal(bytes[(start - 512 + 100)..<(start - 512 + 108)]) & 0o7777),
                                uid: UInt32(octal(bytes[(start - 512 + 108)..<(start - 512 + 116)])),
                                gid: UInt32(octal(bytes[(start - 512 + 116)..<(start - 512 + 124)])),
                                linkname: paxLink ?? gnuLink ?? string(bytes[(start - 512 + 157)..<(start - 512 + 257)]),
                                devmajor: UInt32(octal(bytes[(start - 512 + 329)..<(start - 512 + 337)])),
                                devminor: UInt32(octal(bytes[(start - 512 + 337)..<(start - 512 + 345)])),
                                data: data, xattrs: paxXattrs))
            paxPath = nil; paxLink = nil; gnuPath = nil; gnuLink = nil; paxXattrs = []; paxSize = nil
        }
        return out
    }

    /// Inflates a gzip stream (one member or several) with libdeflate, refusing to produce more than
    /// `limit` bytes (a decompression bomb).
    static func gunzip(_ input: [UInt8], limit: Int, what: String) throws -> [UInt8] {
        guard let d = libdeflate_alloc_decompressor() else { throw RuntimeError("\(what): out of memory") }
        defer { libdeflate_free_decompressor(d) }
        // libdeflate inflates into a buffer of known size: the trailer's size (modulo 4 GiB, of the last
        // member) is the first guess, doubled while it proves too small, never past the limit.
        let n = input.count
        let trailer = n >= 4 ? Int(UInt32(input[n - 4]) | UInt32(input[n - 3]) << 8 | UInt32(input[n - 2]) << 16 | UInt32(input[n - 1]) << 24) : 0
        var capacity = min(limit, max(trailer, 1 << 16))
        while true {
            var tooSmall = false
            let out = try [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                count = 0
                var inOffset = 0, outOffset = 0
                try input.withUnsafeBytes { source in
                    repeat {
                        var used = 0, produced = 0
                        let r = libdeflate_gzip_decompress_ex(d, source.baseAddress! + inOffset, source.count - inOffset,
                                                              buffer.baseAddress! + outOffset, capacity - outOffset, &used, &produced)
                        if r == LIBDEFLATE_INSUFFICIENT_SPACE { tooSmall = true; return }
                        guard r == LIBDEFLATE_SUCCESS else { throw RuntimeError("\(what): not valid gzip") }
                        inOffset += used
                        outOffset += produced
                    // Another member follows only where one starts (what is after the last one is ignored, as gzip does).
                    } while source.count - inOffset >= 2 && source[inOffset] == 0x1f && source[inOffset + 1] == 0x8b
                }
                count = outOffset
            }
            if !tooSmall { return out }
            guard capacity < limit else { throw RuntimeError("\(what): decompresses to more than \(limit) bytes") }
            capacity = capacity > limit / 2 ? limit : capacity * 2
        }
    }
}
