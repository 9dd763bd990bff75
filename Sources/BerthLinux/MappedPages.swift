#if canImport(Glibc)
import Glibc
#endif

/// The process's read-only file mappings (its executable's code and the shared libraries) let go of: a
/// page fault on a file the page cache holds maps the 64 KiB around the page, so a long-lived process
/// keeps every block it ever touched (start-up, a rare error path) mapped and counted in its RSS. Pages
/// released come back from the page cache at the next use, so what stays mapped is what is used.
public enum MappedPages {
    public struct Released: Equatable, Sendable {
        public var mappings = 0
        public var bytes = 0
    }

    /// Releases the mappings safe to drop: private, not writable, backed by a file, and holding no page
    /// of their own (relocated pages, made read-only after the dynamic loader wrote them, are anonymous
    /// copies that would be lost).
    @discardableResult
    public static func releaseReadOnlyFileMappings() -> Released {
        guard let smaps = Files.read("/proc/self/smaps") else { return Released() }
        var released = Released()
        for mapping in parse(smaps) where mapping.droppable {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(start, mapping.end - mapping.start, MADV_DONTNEED) == 0 {
                released.mappings += 1
                released.bytes += mapping.resident
            }
        }
        return released
    }

    struct Mapping: Equatable {
        var start = 0, end = 0
        var permissions = ""
        var path = ""
        var resident = 0, anonymous = 0, privateDirty = 0, locked = 0

        var droppable: Bool {
            permissions.count == 4 && !permissions.contains("w") && permissions.hasSuffix("p") && path.hasPrefix("/")
                && anonymous == 0 && privateDirty == 0 && locked == 0 && resident > 0
        }
    }

    /// `/proc/PID/smaps`: a header line per mapping (`start-end perms offset dev inode [path]`), then
    /// `Field: N kB` lines.
    static func parse(_ bytes: [UInt8]) -> [Mapping] {
        var out: [Mapping] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.last == UInt8(ascii: ":") {
                guard !out.isEmpty, fields.count >= 2, let kB = Int(String(decoding: fields[1], as: UTF8.self)) else { continue }
                switch String(decoding: first, as: UTF8.self) {
                case "Rss:": out[out.count - 1].resident = kB << 10
                case "Anonymous:": out[out.count - 1].anonymous = kB << 10
                case "Private_Dirty:": out[out.count - 1].privateDirty = kB << 10
                case "Locked:": out[out.count - 1].locked = kB << 10
                default: break
                }
                continue
            }
            let range = first.split(separator: UInt8(ascii: "-"))
            guard range.count == 2, fields.count >= 5,
                  let start = Int(String(decoding: range[0], as: UTF8.self), radix: 16),
                  let end = Int(String(decoding: range[1], as: UTF8.self), radix: 16) else { continue }
            // The path may hold spaces: it is everything after the inode.
            let path = fields.count > 5 ? fields[5...].map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") : ""
            out.append(Mapping(start: start, end: end, permissions: String(decoding: fields[1], as: UTF8.self), path: path))
        }
        return out
    }
}
