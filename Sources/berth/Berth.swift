import ArgumentParser
import BerthLinux
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@main
struct Berth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A GitOps reconciler: Git holds the desired state of the cluster and its history.",
        subcommands: [RunCommand.self, ServerCommand.self, AgentCommand.self, CordonCommand.self, UncordonCommand.self, DrainCommand.self, NodeCommand.self, TokenCommand.self, StatusCommand.self, GetCommand.self, DescribeCommand.self, LogsCommand.self,
                      HistoryCommand.self, ValidateCommand.self, SourceCommand.self, RuntimeCommand.self, ImageCommand.self, ConfigCommand.self]
    )

    /// Usage errors exit 2 (as `berth validate` promises), not ArgumentParser's 64.
    static func main() async {
        var config: ConfigFile?
        if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "runtime" {
            RuntimeCommand.exec(Array(CommandLine.arguments.dropFirst(2)))
        }
        do {
            var args = Array(CommandLine.arguments.dropFirst())
            if let name = args.first, let type = ConfigFile.commands[name], let (path, _) = ConfigFile.path(in: args) {
                let file = try ConfigFile(path: path, command: type, name: name)
                args = [name] + file.merged(with: Array(args.dropFirst()))
                config = file
            }
            var command = try parseAsRoot(args)
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let e as ConfigFile.Failure {
            StdStream.standardError.write("Error: \(e.description)\n")
            Glibc.exit(2)
        } catch {
            if exitCode(for: error).rawValue == ExitCode.validationFailure.rawValue {
                var message = fullMessage(for: error)
                if let located = config?.locate(message) { message = located }
                StdStream.standardError.write(message + "\n")
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

extension Berth {
    /// The directory of the running executable, where berth-runtime, berth-shim and berth-init are built
    /// (through /proc/self/exe: argv[0] may be a bare name found on PATH, or a symbolic link).
    /// Without Foundation's URL and FileManager: `berth runtime` pays this before it execs.
    static var binaryDirectory: String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count)
        let exe = n > 0 && n < buffer.count ? String(decoding: buffer[..<n], as: UTF8.self) : CommandLine.arguments[0]
        return Files.parentPath(Files.absolute(exe))
    }
}

/// Minimal unbuffered writes to stdout/stderr without Foundation.
struct StdStream {
    let fd: Int32
    static let standardOutput = StdStream(fd: 1)
    static let standardError = StdStream(fd: 2)

    func write(_ s: String) {
        var bytes = Array(s.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return
            }
            offset += n
        }
        bytes.removeAll()
    }
}
