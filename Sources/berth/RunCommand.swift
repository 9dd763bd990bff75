import ArgumentParser
import BerthModel
import BerthNode
import BerthDaemon
import BerthHTTP
import BerthSource
import BerthStatus
import Foundation
import Logging
import ServiceLifecycle

/// `berth run`: the daemon, all in one process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: follow the repository, run its workloads on this machine, write their status to Git (root).")

    @OptionGroup var remote: RemoteOptions

    @Option(help: "Branch to follow (default main).")
    var branch: String?

    @Option(help: "A tag (refs/tags/NAME) or full commit id to follow instead of a branch.")
    var ref: String?

    @Option(help: "Subdirectory of the repository that holds the manifests.")
    var path = ""

    @Option(help: "State directory: the Git mirror, the store, pod state (runtime state goes under --run-dir).")
    var stateDir = "/var/lib/berth"

    @Option(help: "Runtime state: containers, bundles, pod volumes.")
    var runDir = "/run/berth"

    @Option(help: "Poll interval, e.g. 15s, 1m, 500ms (±10% jitter); webhooks and the post-receive hook sync at once.")
    var interval = "15s"

    @Option(help: "HTTP API address, HOST:PORT.")
    var listen = "127.0.0.1:7420"

    @Option(help: "Branch the status is written to.")
    var statusBranch = "berth/status"

    @Option(help: "This node's name (default the host name).")
    var nodeName: String?

    @Option(help: "File holding the API token for POST /api/v1/sync (default STATE_DIR/api-token, made if missing).")
    var tokenFile: String?

    @Option(help: "File holding the webhook secret (GitHub/Gitea HMAC key, GitLab token); without it webhooks are refused.")
    var webhookSecretFile: String?

    @Flag(help: "On SIGTERM/SIGINT stop every workload and remove what berth made on this machine, instead of leaving them running.")
    var stopWorkloadsOnExit = false

    @Flag(help: "Apply a commit that removes every object berth created (refused otherwise, unless an object carries the annotation berth.dev/allow-prune-all: \"true\").")
    var allowEmpty = false

    @Flag(help: "Let containers add capabilities beyond Pod Security's baseline (needed by namespaces at the privileged level).")
    var allowPrivileged = false

    @Option(help: "Network namespace (a path such as /run/netns/NAME) for the node's side of pod networking; default this one.")
    var networkNamespace: String?

    @Option(help: "Pod CIDR this node asks the control plane for; a node keeps the one it got while it is registered.")
    var podCIDR = "10.244.0.0/24"

    @Option(help: "Bridge the pods attach to.")
    var bridge = "berth0"

    @OptionGroup(title: "Images") var registry: RegistryFlags

    @OptionGroup(title: "Cluster store") var storeFlags: StoreFlags

    @Option(help: "Image garbage collection starts when the image store's disk is fuller than this percentage…")
    var imageGcHigh = 85.0

    @Option(help: "…and removes unused images, least recently used first, until it is below this one.")
    var imageGcLow = 80.0

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func validate() throws {
        if branch != nil && ref != nil { throw ValidationError("use one of --branch and --ref") }
        guard RunCommand.duration(interval) != nil else { throw ValidationError("--interval \(interval) is not a duration such as 15s, 1m or 500ms") }
        guard RunCommand.hostPort(listen) != nil else { throw ValidationError("--listen \(listen) is not HOST:PORT") }
        guard (0...100).contains(imageGcLow), (0...100).contains(imageGcHigh), imageGcLow <= imageGcHigh else {
            throw ValidationError("--image-gc-low and --image-gc-high are percentages, low no higher than high")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error") }
    }

    static func duration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let n = Double(text.dropLast(suffix.count)), n > 0, n * scale <= 86400 else { return nil }
            return .milliseconds(Int64(n * scale * 1000))
        }
        return Double(text).flatMap { $0 > 0 && $0 <= 86400 ? .milliseconds(Int64($0 * 1000)) : nil }
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (String(text[..<colon]), port)
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "berth")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        guard getuid() == 0 else { throw ValidationError("berth run needs root: it creates namespaces, cgroups and the pod network") }

        let sourceConfig = try remote.sourceConfig(ref: ref.map(SourceRef.init(parsing:)) ?? .branch(branch ?? "main"),
                                                   path: path, stateDir: stateDir)

        let exe = Berth.binaryDirectory
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        var node = NodeConfig(nodeName: nodeName ?? host.lowercased(),
                              shimBinary: exe + "/berth-shim", initBinary: exe + "/berth-init")
        node.stateDir = stateDir
        node.runDir = runDir
        node.imageStore = stateDir + "/images"
        node.networkNamespace = networkNamespace
        node.bridge = bridge
        node.allowPrivileged = allowPrivileged
        do { node.registry = try registry.options() } catch { throw ValidationError("\(error)") }
        node.imageGCHigh = imageGcHigh
        node.imageGCLow = imageGcLow
        let imageLogger = logger
        node.log = { imageLogger.info("\($0)") }
        for binary in [node.shimBinary, node.initBinary] where !FileManager.default.isExecutableFile(atPath: binary) {
            throw ValidationError("\(binary) is missing: build all products (swift build) so that it sits next to berth")
        }

        guard let asked = CIDR(podCIDR), asked.description == podCIDR else {
            throw ValidationError("--pod-cidr \(podCIDR) is not an IPv4 network such as 10.244.0.0/24")
        }
        var config = DaemonConfig(source: sourceConfig, node: node, token: try token())
        config.requestedPodCIDR = podCIDR
        config.store = try storeFlags.choice()
        config.interval = RunCommand.duration(interval)!
        (config.listenHost, config.listenPort) = RunCommand.hostPort(listen)!
        config.status.branch = statusBranch
        config.stopWorkloadsOnExit = stopWorkloadsOnExit
        config.allowEmpty = allowEmpty
        if let file = webhookSecretFile { config.webhookSecret = try remote.readFile(file) }

        let daemon = try await Daemon(config: config, logger: logger)
        logger.info("berth \(config.node.nodeName): API on http://\(listen), following \(sourceConfig.access.redactedURL) \(sourceConfig.ref), state in \(stateDir)")
        let group = ServiceGroup(configuration: .init(services: [APIServer.service(for: daemon, logger: logger)] + (await daemon.services()), gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        try await group.run()
    }

    /// The API token: the given file, or STATE_DIR/api-token, made (0600) with 32 random bytes when missing.
    func token() throws -> String {
        if let file = tokenFile { return try remote.readFile(file) }
        let path = stateDir + "/api-token"
        if FileManager.default.fileExists(atPath: path) { return try remote.readFile(path) }
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        var g = SystemRandomNumberGenerator()
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(path)")
        }
        return token
    }
}
