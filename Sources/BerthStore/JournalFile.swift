#if canImport(Glibc)
import Glibc
#endif

/// An append-only file written with write(2): once `append` returns, the record survives a kill -9 of the
/// process; with `sync` it also survives a power cut (fsync).
final class JournalFile {
    let path: String
    private var fd: Int32
    private(set) var size: Int

    init(path: String) throws(StoreError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw StoreError(code: .io, message: "cannot open \(path): \(String(cString: strerror(errno)))", errno: errno) }
        let end = lseek(fd, 0, SEEK_END)
        size = end < 0 ? 0 : Int(end)
    }

    deinit { close(fd) }

    static func readAll(_ path: String) throws(StoreError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw StoreError(code: .io, message: "cannot open \(path): \(String(cString: strerror(errno)))", errno: errno)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError(code: .io, message: "cannot read \(path): \(String(cString: strerror(errno)))", errno: errno)
            }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }

    func append(_ bytes: [UInt8], sync: Bool) throws(StoreError) {
        try JournalFile.writeAll(fd, bytes, at: size, path: path)
        size += bytes.count
        if sync && fsync(fd) != 0 {
            throw StoreError(code: .io, message: "cannot sync \(path): \(String(cString: strerror(errno)))", errno: errno)
        }
    }

    func sync() throws(StoreError) {
        if fsync(fd) != 0 {
            throw StoreError(code: .io, message: "cannot sync \(path): \(String(cString: strerror(errno)))", errno: errno)
        }
    }

    /// Cuts the file back to `length` (a torn record at the end, or everything after a snapshot).
    func truncate(to length: Int) throws(StoreError) {
        if ftruncate(fd, off_t(length)) != 0 || fsync(fd) != 0 {
            throw StoreError(code: .io, message: "cannot truncate \(path): \(String(cString: strerror(errno)))", errno: errno)
        }
        size = length
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError(code: .io, message: "cannot write \(path): \(String(cString: strerror(errno)))", errno: errno)
            }
            done += n
        }
    }

    /// Writes a whole file atomically: a temporary file, fsync, rename over the target, fsync the directory.
    static func replace(_ path: String, with bytes: [UInt8]) throws(StoreError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw StoreError(code: .io, message: "cannot create \(tmp): \(String(cString: strerror(errno)))", errno: errno) }
        do {
            try writeAll(fd, bytes, at: 0, path: tmp)
        } catch {
            close(fd)
            throw error
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(tmp, path) == 0 else {
            throw StoreError(code: .io, message: "cannot replace \(path): \(String(cString: strerror(errno)))", errno: errno)
        }
        let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}
