import ArgumentParser
import BerthLinux
import BerthRuntime
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

struct RuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "The OCI runtime: run a container from a bundle (config.json + rootfs).",
        subcommands: [Run.self]
    )

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create and start a container from a bundle, wait for it, and exit with its exit code (128+N for a signal).")

        @Option(name: [.customShort("b"), .long], help: "Bundle directory (default: the current directory).")
        var bundle = "."

        @Option(help: "Directory for runtime state.")
        var root = "/run/berth/runtime"

        @Argument(help: "Container id.")
        var id: String

        func validate() throws {
            if id.isEmpty || id.contains("/") || id.hasPrefix(".") { throw ValidationError("invalid container id \"\(id)\"") }
        }

        func run() throws {
            let config: OCIConfig
            do {
                config = try OCIConfig(bundle: bundle)
            } catch {
                StdStream.standardError.write("berth runtime: \(error)\n")
                throw ExitCode(1)
            }
            let pid: pid_t
            do {
                pid = try ContainerSpawner.spawn(config.spec)
            } catch {
                StdStream.standardError.write("berth runtime: container \(id): \(error)\n")
                throw ExitCode(1)
            }
            // Signals for berth go to the container's init, as runc forwards them.
            var sources: [DispatchSourceSignal] = []
            for sig in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { kill(pid, sig) }
                source.resume()
                sources.append(source)
            }
            let code = ContainerSpawner.wait(pid)
            sources.forEach { $0.cancel() }
            throw ExitCode(code)
        }
    }
}
