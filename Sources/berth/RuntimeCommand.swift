import ArgumentParser
import BerthLinux
import BerthRuntime
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Options every runtime subcommand shares.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Directory for runtime state.")
    var root = "/run/berth/runtime"

    @Option(help: "A created container's log (STATE/ID/container.log) rotates past this many bytes.")
    var logMaxBytes = 10 << 20

    @Option(help: "Log files kept per container, the current one included.")
    var logFiles = 5

    @Option(help: "Take the root from an image of the store (an overlay per container), or `host` for a read-only view of this machine's root; default: the bundle's rootfs.")
    var image: String?

    @Option(help: "State directory of the image store.")
    var stateDir = "/var/lib/berth"

    var rootSource: ContainerManager.RootSource {
        switch image {
        case nil: return .bundle
        case "host"?: return .host
        case let name?: return .image(name)
        }
    }

    var manager: ContainerManager {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let shim = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("berth-shim").path
        var m = ContainerManager(root: root, shim: shim)
        m.logMaxBytes = logMaxBytes
        m.logFiles = logFiles
        m.images = ImageStore(root: stateDir + "/images")
        return m
    }
}

/// Runs a runtime action, turning its errors into `berth runtime: …` on stderr and exit status 1.
func runtimeAction<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        StdStream.standardError.write("berth runtime: \(error)\n")
        throw ExitCode(1)
    }
}

struct RuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "The OCI runtime (runc-compatible subset): containers from bundles (config.json + rootfs).",
        subcommands: [Run.self, Create.self, Start.self, State.self, Kill.self, Delete.self, List.self, Spec.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a container up; its process waits for `start`.")
        @OptionGroup var options: RuntimeOptions
        @Option(name: [.customShort("b"), .long], help: "Bundle directory.") var bundle = "."
        @Argument var id: String
        func run() throws { try runtimeAction { _ = try options.manager.create(id: id, bundle: bundle, root: options.rootSource) } }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a created container run its process.")
        @OptionGroup var options: RuntimeOptions
        @Argument var id: String
        func run() throws { try runtimeAction { try options.manager.start(id: id) } }
    }

    struct State: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a container's state as OCI state JSON.")
        @OptionGroup var options: RuntimeOptions
        @Argument var id: String
        func run() throws { try runtimeAction { print(try options.manager.state(id: id).json) } }
    }

    struct Kill: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a signal (default TERM) to a container's process.")
        @OptionGroup var options: RuntimeOptions
        @Argument var id: String
        @Argument var signal = "TERM"
        func run() throws {
            let names: [String: Int32] = ["TERM": SIGTERM, "KILL": SIGKILL, "INT": SIGINT, "HUP": SIGHUP, "QUIT": SIGQUIT,
                                          "USR1": SIGUSR1, "USR2": SIGUSR2, "STOP": SIGSTOP, "CONT": SIGCONT]
            let name = signal.uppercased().replacingOccurrences(of: "SIG", with: "")
            guard let sig = names[name] ?? Int32(signal) else { throw ValidationError("unknown signal \(signal)") }
            try runtimeAction { try options.manager.kill(id: id, signal: sig) }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a stopped container (--force: kill it first).")
        @OptionGroup var options: RuntimeOptions
        @Flag(name: [.customShort("f"), .long]) var force = false
        @Argument var id: String
        func run() throws { try runtimeAction { try options.manager.delete(id: id, force: force) } }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List containers.")
        @OptionGroup var options: RuntimeOptions
        func run() throws {
            print("ID\tPID\tSTATUS\tBUNDLE")
            for s in options.manager.list() { print("\(s.id)\t\(s.status == .stopped ? 0 : s.pid)\t\(s.status.rawValue)\t\(s.bundle)") }
        }
    }

    struct Spec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write config.json with berth's defaults (Docker's capabilities, masked paths and seccomp policy).")
        @Option(name: [.customShort("b"), .long], help: "Bundle directory.") var bundle = "."
        func run() throws {
            let path = bundle + "/config.json"
            guard !FileManager.default.fileExists(atPath: path) else {
                StdStream.standardError.write("berth runtime: \(path) exists already\n")
                throw ExitCode(1)
            }
            let data = try JSONSerialization.data(withJSONObject: DefaultSpec.config(), options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: path))
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create and start a container, wait for it, remove it, and exit with its exit code (128+N for a signal).")
        @OptionGroup var options: RuntimeOptions
        @Option(name: [.customShort("b"), .long], help: "Bundle directory.") var bundle = "."
        @Argument(help: "Container id.") var id: String

        func run() throws {
            let manager = options.manager
            let pid = try runtimeAction { try manager.create(id: id, bundle: bundle, attach: true, root: options.rootSource) }
            do {
                try manager.start(id: id)
            } catch {
                try? manager.delete(id: id, force: true)
                StdStream.standardError.write("berth runtime: \(error)\n")
                throw ExitCode(1)
            }
            // Signals for berth go to the container's process, as runc forwards them.
            var sources: [DispatchSourceSignal] = []
            for sig in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { kill(pid, sig) }
                source.resume()
                sources.append(source)
            }
            let code = try runtimeAction { try manager.wait(id: id) }
            sources.forEach { $0.cancel() }
            // The shim was started by this process: reap it.
            while waitpid(-1, nil, 0) > 0 {}
            try? manager.delete(id: id, force: false)
            throw ExitCode(code)
        }
    }
}
