import ArgumentParser
import BerthDaemon
import BerthModel
import BerthNode
import BerthSource
import BerthStore
import Foundation
import Logging

/// What every long-running command takes.
struct CommonFlags: ParsableArguments {
    @Option(help: "A YAML file of options (default /etc/berth/config.yaml if it exists): each key an option's long name, command-line flags override it.")
    var config: String?

    @Option(help: "State directory: the Git mirror, the store, pod state (runtime state goes under --run-dir).")
    var stateDir = "/var/lib/berth"

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error") }
    }

    func logger() -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "berth")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }

    static func requireRoot(_ command: String) throws {
        guard getuid() == 0 else { throw ValidationError("berth \(command) needs root: it creates namespaces, cgroups and the pod network") }
    }
}

/// The server side of `run` and `server`: the source, the control plane's store, the status branch, the API.
struct ControlFlags: ParsableArguments {
    @OptionGroup var remote: RemoteOptions

    @Option(help: "Branch to follow (default main).")
    var branch: String?

    @Option(help: "A tag (refs/tags/NAME) or full commit id to follow instead of a branch.")
    var ref: String?

    @Option(help: "Subdirectory of the repository that holds the manifests.")
    var path = ""

    @Option(help: "Poll interval, e.g. 15s, 1m, 500ms (±10% jitter); webhooks and the post-receive hook sync at once.")
    var interval = "15s"

    @Option(help: "HTTP API address, HOST:PORT.")
    var listen = "127.0.0.1:7420"

    @Option(help: "Branch the status is written to.")
    var statusBranch = "berth/status"

    @Option(help: "File holding the API token for POST /api/v1/sync (default STATE_DIR/api-token, made if missing).")
    var tokenFile: String?

    @Option(help: "File holding the webhook secret (GitHub/Gitea HMAC key, GitLab token); without it webhooks are refused.")
    var webhookSecretFile: String?

    @Flag(help: "Apply a commit that removes every object berth created (refused otherwise, unless an object carries the annotation berth.dev/allow-prune-all: \"true\").")
    var allowEmpty = false

    @OptionGroup(title: "Cluster store") var storeFlags: StoreFlags

    func validate() throws {
        if branch != nil && ref != nil { throw ValidationError("use one of --branch and --ref") }
        guard Self.duration(interval) != nil else { throw ValidationError("--interval \(interval) is not a duration such as 15s, 1m or 500ms") }
        guard Self.hostPort(listen) != nil else { throw ValidationError("--listen \(listen) is not HOST:PORT") }
    }

    func sourceConfig(stateDir: String) throws -> SourceConfig {
        try remote.sourceConfig(ref: ref.map(SourceRef.init(parsing:)) ?? .branch(branch ?? "main"), path: path, stateDir: stateDir)
    }

    /// The settings of the control side, over a config made for `run` or `server`.
    func apply(to config: inout DaemonConfig) throws {
        config.store = try storeFlags.choice()
        config.interval = Self.duration(interval)!
        (config.listenHost, config.listenPort) = Self.hostPort(listen)!
        config.status.branch = statusBranch
        config.allowEmpty = allowEmpty
        if let file = webhookSecretFile { config.webhookSecret = try remote.readFile(file) }
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

    /// The API token: the given file, or STATE_DIR/api-token, made (0600) with 32 random bytes when missing.
    func token(stateDir: String) throws -> String {
        if let file = tokenFile { return try remote.readFile(file) }
        return try Self.secretFile(stateDir + "/api-token")
    }

    /// A secret kept in a file of its own (0600), made with 32 random bytes when missing.
    static func secretFile(_ path: String) throws -> String {
        if let data = FileManager.default.contents(atPath: path) { return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let token = NodeAPIWire.randomSecret()
        guard FileManager.default.createFile(atPath: path, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(path)")
        }
        return token
    }
}

/// The node side of `run` and `agent`: where pods run and how they reach each other.
struct NodeFlags: ParsableArguments {
    @Option(help: "Runtime state: containers, bundles, pod volumes.")
    var runDir = "/run/berth"

    @Option(help: "This node's name (default the host name).")
    var nodeName: String?

    @Flag(help: "On SIGTERM/SIGINT stop every workload and remove what berth made on this machine, instead of leaving them running.")
    var stopWorkloadsOnExit = false

    @Flag(help: "Let containers add capabilities beyond Pod Security's baseline (needed by namespaces at the privileged level).")
    var allowPrivileged = false

    @Option(help: "Network namespace (a path such as /run/netns/NAME) for the node's side of pod networking; default this one.")
    var networkNamespace: String?

    @Option(help: "Pod CIDR this node asks the control plane for, e.g. 10.244.3.0/24 (berth run: 10.244.0.0/24); a node keeps the one it got while it is registered.")
    var podCIDR: String?

    @Option(help: "Bridge the pods attach to.")
    var bridge = "berth0"

    @Option(name: .customLong("label"), help: "A node label, KEY=VALUE (repeatable); nodeSelector and affinity match it.")
    var labels: [String] = []

    @Option(name: .customLong("taint"), help: "A node taint, KEY[=VALUE]:EFFECT (NoSchedule, PreferNoSchedule, NoExecute; repeatable).")
    var taints: [String] = []

    @Option(name: .customLong("resource"), help: "An extended resource the node offers, NAME=COUNT, e.g. nvidia.com/gpu=2 (repeatable).")
    var resources: [String] = []

    @OptionGroup(title: "Images") var registry: RegistryFlags

    @Option(help: "Image garbage collection starts when the image store's disk is fuller than this percentage…")
    var imageGcHigh = 85.0

    @Option(help: "…and removes unused images, least recently used first, until it is below this one.")
    var imageGcLow = 80.0

    func validate() throws {
        guard (0...100).contains(imageGcLow), (0...100).contains(imageGcHigh), imageGcLow <= imageGcHigh else {
            throw ValidationError("--image-gc-low and --image-gc-high are percentages, low no higher than high")
        }
        if let podCIDR, CIDR(podCIDR)?.description != podCIDR {
            throw ValidationError("--pod-cidr \(podCIDR) is not an IPv4 network such as 10.244.0.0/24")
        }
        _ = try parsedLabels()
        _ = try parsedTaints()
        _ = try parsedResources()
    }

    func parsedLabels() throws -> [String: String] {
        var out: [String: String] = [:]
        for l in labels {
            let parts = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--label \(l) is not KEY=VALUE") }
            out[String(parts[0])] = String(parts[1])
        }
        return out
    }

    func parsedTaints() throws -> [Taint] {
        try taints.map { t in
            let halves = t.split(separator: ":", maxSplits: 1)
            guard halves.count == 2, let effect = Toleration.Effect(rawValue: String(halves[1])) else {
                throw ValidationError("--taint \(t) is not KEY[=VALUE]:EFFECT with EFFECT one of NoSchedule, PreferNoSchedule, NoExecute")
            }
            let kv = halves[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard !kv[0].isEmpty else { throw ValidationError("--taint \(t) has no key") }
            return Taint(key: String(kv[0]), value: kv.count == 2 ? String(kv[1]) : "", effect: effect)
        }
    }

    func parsedResources() throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for r in resources {
            let parts = r.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].contains("/"), let n = Int64(parts[1]), n >= 0 else {
                throw ValidationError("--resource \(r) is not NAME=COUNT with a domain-prefixed name, e.g. nvidia.com/gpu=2")
            }
            out[String(parts[0])] = n
        }
        return out
    }

    func nodeConfig(stateDir: String, logger: Logger) throws -> NodeConfig {
        let exe = Berth.binaryDirectory
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        var node = NodeConfig(nodeName: nodeName ?? host.lowercased(), shimBinary: exe + "/berth-shim", initBinary: exe + "/berth-init")
        node.stateDir = stateDir
        node.runDir = runDir
        node.imageStore = stateDir + "/images"
        node.networkNamespace = networkNamespace
        node.bridge = bridge
        node.allowPrivileged = allowPrivileged
        node.labels = try parsedLabels()
        node.taints = try parsedTaints()
        node.extendedResources = try parsedResources()
        do { node.registry = try registry.options() } catch { throw ValidationError("\(error)") }
        node.imageGCHigh = imageGcHigh
        node.imageGCLow = imageGcLow
        node.log = { logger.info("\($0)") }
        for binary in [node.shimBinary, node.initBinary] where !FileManager.default.isExecutableFile(atPath: binary) {
            throw ValidationError("\(binary) is missing: build all products (swift build) so that it sits next to berth")
        }
        return node
    }
}
