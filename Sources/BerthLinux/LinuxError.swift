import CBerthLinux
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

extension LinuxError {
    /// The record the child (or berth-shim) wrote.
    public init(_ e: berth_error) {
        func text<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        }
        self.init(stage: text(e.stage), syscall: text(e.syscall), path: text(e.path), errno: e.err)
    }
}
