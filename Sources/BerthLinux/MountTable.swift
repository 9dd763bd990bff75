#if canImport(Glibc)
import Glibc
#endif

/// This process's mount table (/proc/self/mountinfo), for a container that mounts in the host's mount
/// namespace (it has none of its own): what it mounts under its root is found and undone by mount ID.
public enum MountTable {
    public struct Entry: Sendable, Equatable {
        public var id: Int
        public var mountPoint: String
    }

    /// The mounts at or under `root` (a canonical path), in the table's order (a parent before its children).
    public static func mounts(under root: String) -> [Entry] {
        guard let text = Files.readText("/proc/self/mountinfo", limit: 16 << 20) else { return [] }
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 5)
            guard fields.count > 4, let id = Int(fields[0]) else { return nil }
            // The kernel writes space, tab, newline and backslash in mount points as \ooo.
            let point = Files.decodeEscapes(fields[4], marker: UInt8(ascii: "\\"), digits: 3, radix: 8)
            return point == root || point.hasPrefix(prefix) ? Entry(id: id, mountPoint: point) : nil
        }
    }

    /// Detaches the mounts under `root` that are not in `kept`, children first.
    public static func detach(under root: String, keeping kept: Set<Int>) {
        for entry in mounts(under: root).reversed() where !kept.contains(entry.id) {
            // Already gone with a parent detached before it: nothing left to undo.
            _ = umount2(entry.mountPoint, Int32(MNT_DETACH))
        }
    }

    /// `path` with its symbolic links resolved, as the mount table names it.
    public static func canonical(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return path }
        defer { free(p) }
        return String(cString: p)
    }
}
