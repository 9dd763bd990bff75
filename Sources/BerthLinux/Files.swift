import CBerthLinux
#if canImport(Glibc)
import Glibc
#endif

/// File operations over the C library, for the runtime's Foundation-free binary: a container start
/// must not pay Foundation's start-up.
public enum Files {
    /// The whole file, or nil when it cannot be read or is larger than `limit`.
    public static func read(_ path: String, limit: Int = 64 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return read(fd: fd, limit: limit)
    }

    /// What a descriptor gives until its end (a pipe: until every writer has closed it), or nil on an
    /// error or past `limit`.
    public static func read(fd: Int32, limit: Int = 64 << 20) -> [UInt8]? {
        // Sized by the file where it says (a regular file: one read and one at its end); otherwise from a
        // page, doubling. No zero-filled chunk: a container start reads a dozen small files.
        var st = stat()
        var capacity = 4096
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 { capacity = min(Int(st.st_size), limit) + 1 }
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        defer { buffer.deallocate() }
        var count = 0
        while true {
            if count == buffer.count {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 1)
                bigger.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                buffer.deallocate()
                buffer = bigger
            }
            let n = Glibc.read(fd, buffer.baseAddress! + count, buffer.count - count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { return [UInt8](UnsafeRawBufferPointer(rebasing: buffer[..<count])) }
            count += n
            if count > limit { return nil }
        }
    }

    public static func readText(_ path: String, limit: Int = 64 << 20) -> String? {
        read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Writes through a temporary file and rename, so a reader sees the old or the new content whole.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(LinuxError) {
        let tmp = path + ".\(getpid()).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw LinuxError(stage: "write", syscall: "open", path: tmp, errno: errno) }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                let e = errno
                close(fd)
                unlink(tmp)
                throw LinuxError(stage: "write", syscall: "write", path: tmp, errno: e)
            }
            off += n
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw LinuxError(stage: "write", syscall: "rename", path: path, errno: e)
        }
    }

    public static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws(LinuxError) {
        try write(Array(text.utf8), to: path, mode: mode)
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(LinuxError) {
        // mkdir first: the parent is usually there, and one call then does it.
        if mkdir(path, mode) == 0 { return }
        var failure = errno
        if failure == ENOENT {
            let parent = parentPath(path)
            if parent != path && !parent.isEmpty { try makeDirectories(parent, mode: mode) }
            if mkdir(path, mode) == 0 { return }
            failure = errno
        }
        if failure == EEXIST && isDirectory(path) { return }
        throw LinuxError(stage: "mkdir", syscall: "mkdir", path: path, errno: failure)
    }

    /// Names in a directory, without `.` and `..`; empty when it cannot be read.
    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// rm -rf, without following symbolic links out of the tree (and without crossing into mounts'
    /// contents: a mount point that cannot be removed stays, and is reported).
    public static func removeTree(_ path: String) throws(LinuxError) {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw LinuxError(stage: "remove", syscall: "lstat", path: path, errno: errno)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in list(path) { try removeTree(path + "/" + name) }
            guard rmdir(path) == 0 || errno == ENOENT else { throw LinuxError(stage: "remove", syscall: "rmdir", path: path, errno: errno) }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw LinuxError(stage: "remove", syscall: "unlink", path: path, errno: errno) }
        }
    }

    /// The path without its last component ("/a/b" → "/a", "/a" → "/").
    /// `text` with each `marker` followed by `digits` digits in `radix` replaced by that byte (the mount
    /// table's \ooo, the image refs' %hh); a marker without valid digits stays as it is.
    public static func decodeEscapes(_ text: Substring, marker: UInt8, digits: Int, radix: Int) -> String {
        guard text.utf8.contains(marker) else { return String(text) }
        var bytes: [UInt8] = []
        var u = Array(text.utf8)[...]
        while let b = u.first {
            if b == marker, u.count > digits, let v = UInt8(String(decoding: u.dropFirst().prefix(digits), as: UTF8.self), radix: radix) {
                bytes.append(v)
                u = u.dropFirst(digits + 1)
            } else {
                bytes.append(b)
                u = u.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func parentPath(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    /// An absolute, normalized path (`.` and `..` resolved lexically, as URL.standardized does).
    public static func absolute(_ path: String, relativeTo base: String? = nil) -> String {
        var full = path
        if !path.hasPrefix("/") {
            var prefix = base ?? currentDirectory()
            if !prefix.hasPrefix("/") { prefix = absolute(prefix) }
            full = prefix + "/" + path
        }
        var parts: [Substring] = []
        for c in full.split(separator: "/") {
            if c == "." || c.isEmpty { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        // Appended one by one: joined(separator:) over substrings is generic code the runtime instantiates at
        // first use, a cost the runtime's start-up pays.
        var out = ""
        for c in parts {
            out.append("/")
            out.append(contentsOf: c)
        }
        return out.isEmpty ? "/" : out
    }

    public static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "/" }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Files {
    public enum Make: Int32, Sendable { case nothing = 0, directories = 1, file = 2 }

    /// An O_PATH descriptor of `path` inside the directory `root`, with every symlink resolved as if
    /// `root` were "/": a link planted inside cannot lead out, and missing parts are made only inside.
    /// The caller closes it.
    public static func openInRoot(_ root: String, _ path: String, make: Make) throws(LinuxError) -> Int32 {
        let fd = berth_open_in_root(root, path, make.rawValue)
        guard fd >= 0 else { throw LinuxError(stage: "resolve in root", syscall: "openat2", path: root + "/" + path, errno: errno) }
        return fd
    }

    /// A directory only root can enter (state and run directories hold tokens, Secrets and the mirror).
    public static func makePrivateDirectory(_ path: String) throws(LinuxError) {
        try makeDirectories(path, mode: 0o700)
        guard chmod(path, 0o700) == 0 else { throw LinuxError(stage: "mkdir", syscall: "chmod", path: path, errno: errno) }
    }
}

extension Files {
    /// A text file inside `root`, resolved as `openInRoot` does; nil when missing, unreadable or over `limit`.
    public static func readTextInRoot(_ root: String, _ path: String, limit: Int) -> String? {
        guard let fd = try? openInRoot(root, path, make: .nothing) else { return nil }
        defer { close(fd) }
        // A regular file only: an image's FIFO or device node there must not block or feed the reader.
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        // An O_PATH descriptor opens for reading through /proc without resolving the path again.
        return readText("/proc/self/fd/\(fd)", limit: limit)
    }
}
