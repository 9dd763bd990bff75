import CBerthLinux
#if canImport(Glibc)
import Glibc
#endif

/// A failure of the container's setup, as the child reported it: stage, syscall, path and errno; or of a
/// helper program (`ip`, `nft`), with errno 0, its exit status and output in `syscall`.
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

    /// A helper program that failed: its arguments, how it ended and what it printed.
    public init(stage: String, program argv: [String], status: Int32, output: String) {
        let ended = status > 128 ? "killed by signal \(status - 128)" : "exit status \(status)"
        let said = output.split(separator: "\n").joined(separator: "; ")
        self.init(stage: stage, syscall: argv.prefix(3).joined(separator: " ") + ": " + ended + (said.isEmpty ? "" : ": " + said), errno: 0)
    }

    public var description: String {
        let what = path.isEmpty ? "\(stage): \(syscall)" : "\(stage): \(syscall) \(path)"
        // errno 0 is a program's failure, described in full already: strerror would say "Success".
        return errno == 0 ? what : what + ": " + String(cString: strerror(errno))
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
