import ArgumentParser
import BerthImage
import BerthModel
import BerthNode
import Foundation
import Synchronization

/// Runs an image action, turning its errors into `berth image: …` on stderr and exit status 1.
func imageAction<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        StdStream.standardError.write("berth image: \(error)\n")
        throw ExitCode(1)
    }
}

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "The image store: images pulled from registries or imported, verified and unpacked once.",
        subcommands: [Pull.self, Import.self, List.self, Remove.self, Prune.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "State directory; images live under STATE/images.")
        var stateDir = "/var/lib/berth"
        var store: ImageStore { ImageStore(root: stateDir + "/images") }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import an OCI image layout directory or oci-archive tar (PATH or PATH:TAG).")
        @OptionGroup var options: Options
        @Argument var reference: String
        func run() throws {
            var path = reference, tag: String?
            if let colon = reference.lastIndex(of: ":"), !reference[reference.index(after: colon)...].contains("/") {
                path = String(reference[..<colon])
                tag = String(reference[reference.index(after: colon)...])
            }
            let r = try imageAction { try options.store.importImage(path, tag: tag) }
            print("\(r.name) \(r.digest)")
        }
    }

    struct Pull: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pull",
            abstract: "Pull an image from its registry (through the node's mirrors and credentials).")
        @OptionGroup var options: Options
        @OptionGroup var registry: RegistryFlags
        @Argument(help: "A reference such as redis:7, registry.k8s.io/pause:3.9 or NAME@sha256:DIGEST.")
        var reference: String
        @Flag(help: "Print where the time went (transfer, gunzip, writing files) and the requests sent.")
        var timings = false
        func run() async throws {
            let ref: ImageReference
            do { ref = try ImageReference(parsing: reference) } catch {
                StdStream.standardError.write("berth image: \(error)\n")
                throw ExitCode(1)
            }
            let client = RegistryClient(options: try imageAction { try registry.options() })
            let started = Date()
            let last = Mutex(PullProgress())
            do {
                let r = try await options.store.pull(ref, client: client) { p in last.withLock { $0 = p } }
                let elapsed = Date().timeIntervalSince(started)
                await client.shutdown()
                print("\(r.name) \(r.imageID) \(String(format: "%.3f", elapsed))s")
                if timings {
                    let p = last.withLock { $0 }
                    print(String(format: "requests %d, bytes %d, layers %d, transfer %.3fs, gunzip %.3fs, write %.3fs",
                                 client.requests.load(ordering: .relaxed), p.bytes, p.layers, p.transferSeconds, p.gunzipSeconds, p.writeSeconds))
                }
            } catch {
                await client.shutdown()
                StdStream.standardError.write("berth image: pulling \(ref): \(error)\n")
                throw ExitCode(1)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List images, their sizes and the pods that use them.")
        @OptionGroup var options: Options
        func run() throws {
            let users = NodeAgent.podImages(stateDir: options.stateDir)
            print("NAME\tDIGEST\tSIZE\tPODS")
            for r in options.store.list() {
                let pods = users[r.name]?.sorted().joined(separator: ",") ?? "-"
                print("\(r.name)\t\(r.digest)\t\(r.size)\t\(pods)")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an image name (and its data when unused).")
        @OptionGroup var options: Options
        @Argument var name: String
        func run() throws { try imageAction { try options.store.remove(name) } }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove every image no pod of this node uses.")
        @OptionGroup var options: Options
        func run() throws {
            let used = Set(NodeAgent.podImages(stateDir: options.stateDir).keys)
            for r in options.store.list() where !used.contains(r.name) {
                try imageAction { try options.store.remove(r.name) }
                print("removed \(r.name)")
            }
        }
    }
}

/// Where the node finds its registry settings: `berth run` and `berth image pull` take the same flags.
struct RegistryFlags: ParsableArguments {
    @Option(help: "Registry mirrors, CAs and credentials (the registries.yaml format of k3s).")
    var registries: String?
    @Option(help: "Registry credentials in Docker's config.json format.")
    var registryCredentials: String?
    @Flag(help: "Pull a mirrored registry's images from its mirrors only, never from the registry itself (air-gapped nodes).")
    var disableDefaultRegistryEndpoint = false
    func options() throws -> RegistryOptions {
        var o = try RegistryOptions.load(registries: registries, credentials: registryCredentials)
        o.defaultEndpoints = !disableDefaultRegistryEndpoint
        return o
    }
}
