/// One change, as the journal and the snapshot file hold it:
/// `u32 length | u32 crc32(payload) | payload`, little-endian; a record whose length or checksum does not
/// hold is where a crash cut the file, and nothing after it counts.
struct JournalRecord: Equatable {
    enum Op: UInt8 {
        /// Snapshot header: the revision the snapshot was taken at and the next lease id.
        case meta = 0
        case put = 1
        case delete = 2
        case grant = 3
        case revoke = 4
    }

    var op: Op
    var revision: Int64
    var key: String = ""
    var value: [UInt8] = []
    var lease: Int64 = 0
    /// put: createRevision and version; grant: ttl in milliseconds.
    var createRevision: Int64 = 0
    var version: Int64 = 0

    func encoded() -> [UInt8] {
        var p: [UInt8] = [op.rawValue]
        JournalRecord.append(&p, revision)
        let k = Array(key.utf8)
        JournalRecord.append(&p, UInt32(k.count))
        p += k
        JournalRecord.append(&p, UInt32(value.count))
        p += value
        JournalRecord.append(&p, lease)
        JournalRecord.append(&p, createRevision)
        JournalRecord.append(&p, version)
        var out: [UInt8] = []
        out.reserveCapacity(p.count + 8)
        JournalRecord.append(&out, UInt32(p.count))
        JournalRecord.append(&out, CRC32.checksum(p))
        return out + p
    }

    static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    /// Decodes the record at `offset`; nil when the bytes there are not a whole, intact record.
    static func decode(_ bytes: [UInt8], at offset: Int) -> (record: JournalRecord, next: Int)? {
        guard offset + 8 <= bytes.count else { return nil }
        let length = Int(read(UInt32.self, bytes, offset))
        let crc = read(UInt32.self, bytes, offset + 4)
        let start = offset + 8
        guard length >= 41, length <= bytes.count - start else { return nil }
        let payload = bytes[start..<(start + length)]
        guard CRC32.checksum(payload) == crc, let op = Op(rawValue: payload.first!) else { return nil }
        var i = start + 1
        let revision = read(Int64.self, bytes, i); i += 8
        let keyLength = Int(read(UInt32.self, bytes, i)); i += 4
        guard keyLength <= start + length - i else { return nil }
        let key = String(decoding: bytes[i..<(i + keyLength)], as: UTF8.self); i += keyLength
        guard i + 4 <= start + length else { return nil }
        let valueLength = Int(read(UInt32.self, bytes, i)); i += 4
        guard valueLength == start + length - i - 24 else { return nil }
        let value = Array(bytes[i..<(i + valueLength)]); i += valueLength
        let lease = read(Int64.self, bytes, i); i += 8
        let create = read(Int64.self, bytes, i); i += 8
        let version = read(Int64.self, bytes, i)
        return (JournalRecord(op: op, revision: revision, key: key, value: value, lease: lease,
                              createRevision: create, version: version), start + length)
    }

    static func read<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { dst in
            for i in 0..<MemoryLayout<T>.size { dst[i] = bytes[offset + i] }
        }
        return T(littleEndian: v)
    }
}
