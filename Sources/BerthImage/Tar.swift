import BerthRuntime
import CZlib

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

    /// Inflates a gzip stream, refusing to produce more than `limit` bytes (a decompression bomb).
    static func gunzip(_ input: [UInt8], limit: Int, what: String) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw RuntimeError("\(what): cannot start gzip decompression")
        }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = input
        let rc: Int32 = input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = UInt32(inBuf.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { outBuf -> Int32 in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = UInt32(outBuf.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                out += chunk[0..<produced]
                if out.count > limit { return -100 }
                if status == Z_STREAM_END { return Z_OK }
                if status != Z_OK { return status }
                if stream.avail_in == 0 && produced == 0 { return Z_BUF_ERROR }
            }
        }
        if rc == -100 { throw RuntimeError("\(what): decompresses to more than \(limit) bytes") }
        guard rc == Z_OK else { throw RuntimeError("\(what): not valid gzip (zlib \(rc))") }
        return out
    }
}
