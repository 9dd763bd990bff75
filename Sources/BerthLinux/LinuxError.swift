#if canImport(Glibc)
import Glibc
#endif

/// A failure of the container's setup, as the child reported it: stage, syscall, path and errno.
public struct LinuxError: Error, Sendable, CustomStringConvertible {
    public var stage: String
    public var syscall: String
    public var path: String
    public var errno: Int32

    public init(stage: String, syscall: String, path: String = "", errno: Int32) {
        self.stage = stage
        self.syscall = syscall
        self.path = path
        self.errno = errno
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        return path.isEmpty ? "\(stage): \(syscall): \(reason)" : "\(stage): \(syscall) \(path): \(reason)"
    }
}
