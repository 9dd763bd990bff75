import BerthLinux
#if canImport(Glibc)
import Glibc
#endif

/// The files of a ConfigMap, Secret or downward API volume, laid out as the kubelet writes them: the data
/// in a `..<timestamp>` directory, `..data` a link to it, and each top-level name a link through `..data`.
/// An update writes a new directory and swaps `..data` with one rename, so a reader sees the whole old
/// set or the whole new one. Everything is written relative to descriptors of directories made here,
/// without following a link.
enum ProjectedFiles {
    struct File: Equatable {
        var path: String
        var bytes: [UInt8]
        var mode: Int
    }

    static func linkTarget(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What `..data` holds now, sorted by path; nil when there is none.
    static func current(_ d: String) -> [File]? {
        guard let target = linkTarget(d + "/..data"), target.hasPrefix(".."), !target.contains("/") else { return nil }
        var out: [File] = []
        func walk(_ dir: String, _ prefix: String) {
            for name in Files.list(dir) {
                let path = dir + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFDIR { walk(path, prefix + name + "/") }
                else if (st.st_mode & S_IFMT) == S_IFREG, let bytes = Files.read(path, limit: 8 << 20) {
                    out.append(File(path: prefix + name, bytes: bytes, mode: Int(st.st_mode & 0o7777)))
                }
            }
        }
        walk(d + "/" + target, "")
        return out.sorted { $0.path < $1.path }
    }

    static func fail(_ call: String, _ path: String) -> LinuxError {
        LinuxError(stage: "projected volume", syscall: call, path: path, errno: errno)
    }

    /// Makes `files` the volume's content.
    static func write(_ files: [File], into d: String) throws(LinuxError) {
        let dfd = open(d, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dfd >= 0 else { throw fail("open", d) }
        defer { close(dfd) }
        var g = SystemRandomNumberGenerator()
        let name = "..\(time(nil))_\(UInt32.random(in: 0...UInt32.max, using: &g))"
        guard mkdirat(dfd, name, 0o755) == 0 else { throw fail("mkdirat", d + "/" + name) }
        let nfd = openat(dfd, name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard nfd >= 0 else { throw fail("openat", d + "/" + name) }
        defer { close(nfd) }
        for f in files {
            let parts = f.path.split(separator: "/").map(String.init)
            var parent = dup(nfd)
            for c in parts.dropLast() {
                if mkdirat(parent, c, 0o755) != 0 && errno != EEXIST { close(parent); throw fail("mkdirat", f.path) }
                let next = openat(parent, c, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                close(parent)
                guard next >= 0 else { throw fail("openat", f.path) }
                parent = next
            }
            let fd = openat(parent, parts.last!, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode_t(f.mode))
            close(parent)
            guard fd >= 0 else { throw fail("openat", f.path) }
            let written = f.bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            let moded = fchmod(fd, mode_t(f.mode))
            close(fd)
            guard written == f.bytes.count, moded == 0 else { throw fail("write", f.path) }
        }
        let old = linkTarget(d + "/..data")
        unlinkat(dfd, "..data_tmp", 0)
        guard symlinkat(name, dfd, "..data_tmp") == 0 else { throw fail("symlinkat", d + "/..data_tmp") }
        guard renameat(dfd, "..data_tmp", dfd, "..data") == 0 else { throw fail("renameat", d + "/..data") }
        // Each top-level name is a link through ..data; names that left go.
        let top = Set(files.compactMap { $0.path.split(separator: "/").first.map(String.init) })
        for entry in Files.list(d) where !entry.hasPrefix("..") {
            var st = stat()
            let isLink = fstatat(dfd, entry, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
            if top.contains(entry) && isLink { continue }
            // A plain file or directory here was written by an older berth: replaced by its link.
            if isLink { unlinkat(dfd, entry, 0) } else { try Files.removeTree(d + "/" + entry) }
        }
        for entry in top where !Files.exists(d + "/" + entry) || linkTarget(d + "/" + entry) == nil {
            guard symlinkat("..data/" + entry, dfd, entry) == 0 || errno == EEXIST else { throw fail("symlinkat", d + "/" + entry) }
        }
        if let old, old != name, old.hasPrefix(".."), !old.contains("/") { try Files.removeTree(d + "/" + old) }
    }
}
