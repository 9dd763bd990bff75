import ArgumentParser
import BerthCluster
import BerthDaemon
import BerthHTTP
import BerthModel
import BerthNode
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// `berth server`: the source, controllers, status writer and API over the cluster store, with the node
/// API for agents. Several may run on one etcd: one leads, the others stand by.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run a server: follow the repository and place its workloads on the agents' nodes; agents join with the printed token.")

    @OptionGroup var common: CommonFlags
    @OptionGroup var control: ControlFlags

    @Option(help: "This server's name (default the host name).")
    var serverName: String?

    @Option(help: "Address of the node API (HTTPS, the cluster CA), HOST:PORT; agents reach it.")
    var agentListen = "0.0.0.0:7443"

    @Option(name: .customLong("tls-san"), help: "Another host name or IP address the serving certificate is valid for (repeatable).")
    var tlsSANs: [String] = []

    @Option(help: "How pods reach pods on other nodes: routed (host routes; the nodes share one L2 network) or vxlan (an overlay over UDP 8472; the nodes need only reach each other).")
    var podNetwork = "routed"

    @Option(name: .customLong("cluster-cidr"), help: "The network each node's /24 of pod addresses comes from (a /16 holds 256 nodes).")
    var clusterCIDR = "10.244.0.0/16"

    func validate() throws {
        guard let cidr = CIDR(clusterCIDR), cidr.description == clusterCIDR, cidr.prefix <= 24 else {
            throw ValidationError("--cluster-cidr \(clusterCIDR) is not an IPv4 network of /24 or larger, such as 10.244.0.0/16")
        }
        guard ControlFlags.hostPort(agentListen) != nil else { throw ValidationError("--agent-listen \(agentListen) is not HOST:PORT") }
        guard NetworkSettingsRecord.Mode(rawValue: podNetwork) != nil else { throw ValidationError("--pod-network \(podNetwork) is not routed or vxlan") }
    }

    func run() async throws {
        let logger = common.logger()
        let sourceConfig = try control.sourceConfig(stateDir: common.stateDir)
        let host = ProcessInfo.processInfo.hostName
        var config = DaemonConfig(source: sourceConfig, serverName: serverName ?? host.split(separator: ".").first.map(String.init) ?? "server",
                                  token: try control.token(stateDir: common.stateDir))
        try control.apply(to: &config)
        config.clusterCIDR = clusterCIDR
        let daemon = try await Daemon(config: config, logger: logger)
        let ca = try await ClusterCA.load(from: daemon.store)
        // The servers' choice for every node; agents read it before they set up their pod network.
        let settings = NetworkSettingsRecord(mode: NetworkSettingsRecord.Mode(rawValue: podNetwork)!)
        try await daemon.store.put(ClusterKey.networkSettings.path, Array(try JSONEncoder().encode(settings)), lease: nil)
        let (agentHost, agentPort) = ControlFlags.hostPort(agentListen)!
        var names = ["localhost", "127.0.0.1", host] + tlsSANs
        if agentHost != "0.0.0.0" && agentHost != "::" { names.append(agentHost) }
        let tls = try ca.serverTLS(names: names)
        // The join token, for agents: readable by root only, as k3s keeps server/node-token.
        let tokenPath = common.stateDir + "/server/node-token"
        try FileManager.default.createDirectory(atPath: common.stateDir + "/server", withIntermediateDirectories: true)
        try Self.write(ca.joinToken, to: tokenPath)
        let following = Task { await Self.keepTokenFile(tokenPath, store: daemon.store, written: ca.joinToken, logger: logger) }
        defer { following.cancel() }
        let nodeAPI = NodeAPI(store: daemon.store, ca: ca, logger: logger)
        defer { nodeAPI.stop() }
        logger.info("berth server \(config.name): API on http://\(control.listen), node API on https://\(agentListen); agents join with the token in \(tokenPath)")
        let services: [any ServiceLifecycle.Service] = [APIServer.service(for: daemon, logger: logger), try nodeAPI.service(host: agentHost, port: agentPort, tls: tls)]
        let group = ServiceGroup(configuration: .init(services: services + (await daemon.services()),
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension ServerCommand {
    static func write(_ token: JoinToken, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data((token.description + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(path)")
        }
    }

    /// The token file follows the join secret: `berth token rotate` through any server changes it.
    static func keepTokenFile(_ path: String, store: any Store, written: JoinToken, logger: Logger) async {
        var current = written
        func refresh() async throws {
            let latest = try await ClusterCA.load(from: store).joinToken
            guard latest != current else { return }
            try write(latest, to: path)
            current = latest
            logger.info("the join token changed: \(path) has the new one")
        }
        while !Task.isCancelled {
            do {
                let revision = try await store.revision
                try await refresh()
                for try await _ in try await store.watch(prefix: ClusterKey.clusterSecrets.path, after: revision) { try await refresh() }
            } catch {
                logger.debug("following the join secret: \(error)")
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// `berth agent`: a node of a cluster. It joins through a server's node API and runs what the servers
/// place on it; it never reaches the store itself.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run a node: join the servers with a token and run the pods they place here (root).")

    @OptionGroup var common: CommonFlags
    @OptionGroup var node: NodeFlags

    @Option(name: .customLong("server"), help: "A server's node API, https://HOST:PORT (repeatable, or comma-separated: the others are tried when one is down).")
    var servers: [String] = []

    @Option(help: "File holding the join token (K10<CA hash>::<secret>, from the server's STATE_DIR/server/node-token).")
    var tokenFile: String?

    @Option(help: "Environment variable holding the join token.")
    var tokenEnv = "BERTH_TOKEN"

    @Option(help: "This node's address on the network between nodes: other nodes route its pods' traffic to it.")
    var nodeIp: String?

    @Option(help: "The node's lease in seconds, renewed every quarter of it: a node silent for longer is lost and its pods replaced.")
    var nodeLease = 10.0

    var serverURLs: [String] { servers.flatMap { $0.split(separator: ",").map(String.init) } }

    func validate() throws {
        guard !serverURLs.isEmpty else { throw ValidationError("give the servers' node API with --server https://HOST:PORT") }
        for s in serverURLs where !s.hasPrefix("https://") { throw ValidationError("--server \(s) is not an https:// URL") }
        if let nodeIp, nodeIp.split(separator: ".").compactMap({ UInt8($0) }).count != 4 { throw ValidationError("--node-ip \(nodeIp) is not an IPv4 address") }
        guard (2...300).contains(nodeLease) else { throw ValidationError("--node-lease is 2 to 300 seconds") }
    }

    func joinToken() throws -> JoinToken? {
        let text: String?
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else { throw ValidationError("cannot read \(tokenFile)") }
            text = String(decoding: data, as: UTF8.self)
        } else {
            text = ProcessInfo.processInfo.environment[tokenEnv]
        }
        guard let text else { return nil }
        guard let token = JoinToken(parsing: text) else { throw ValidationError("the join token is not K10<64 hex digits>::<secret>") }
        return token
    }

    func run() async throws {
        let logger = common.logger()
        try CommonFlags.requireRoot("agent")
        var nodeConfig = try node.nodeConfig(stateDir: common.stateDir, logger: logger)
        nodeConfig.nodeAddress = nodeIp
        let joined = try await credential(node: nodeConfig.nodeName, logger: logger)
        let store = try NodeAPIStore(servers: serverURLs, caPEM: joined.caPEM, node: nodeConfig.nodeName, credential: joined.credential)
        var options = NodeService.Options()
        options.leaseSeconds = nodeLease
        options.requestedPodCIDR = node.podCIDR
        options.stopWorkloadsOnExit = node.stopWorkloadsOnExit
        options.fenceOnLeaseLoss = true
        let service = try NodeService(config: nodeConfig, store: store, options: options,
                                      log: .init(info: { logger.info("\($0)") }, warning: { logger.warning("\($0)") }))
        logger.info("berth agent \(nodeConfig.nodeName): following \(serverURLs.joined(separator: ", ")), state in \(common.stateDir)")
        let group = ServiceGroup(configuration: .init(services: [StoreLifecycle(store: store), NodeLifecycle(node: service), MappedPagesService()],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// The node's credential: the one saved at the last join unless the servers refuse it, else a new join
    /// with the token (a wiped machine, a removed node, a credential replaced). Servers that cannot be
    /// reached are waited for (1 s, doubling to 10 s): a node that starts before them, or while its link
    /// comes back, joins when they answer. A refusal (a wrong token or CA) is final.
    func credential(node: String, logger: Logger) async throws -> NodeAPIStore.Joined {
        let path = common.stateDir + "/agent/credential.json"
        if let data = FileManager.default.contents(atPath: path), let saved = try? JSONDecoder().decode(NodeAPIStore.Joined.self, from: data) {
            let store = try NodeAPIStore(servers: serverURLs, caPEM: saved.caPEM, node: node, credential: saved.credential)
            defer { Task { await store.close() } }
            do {
                _ = try await store.revision
                return saved
            } catch let e as StoreError where e.code == .forbidden {
                logger.notice("the saved credential is refused (\(e.message)); joining again")
            } catch {
                // Unreachable for now: the node service retries with the saved credential.
                logger.warning("the servers do not answer yet (\(error)); starting with the saved credential")
                return saved
            }
        }
        guard let token = try joinToken() else {
            throw ValidationError("this node has not joined yet: give the join token with --token-file or $\(tokenEnv)")
        }
        var delay = 1.0
        var joined: NodeAPIStore.Joined
        while true {
            do {
                joined = try await NodeAPIStore.join(servers: serverURLs, caHash: token.caHash, secret: token.secret, node: node)
                break
            } catch let e as StoreError where e.code != .forbidden {
                logger.warning("cannot join yet (retried in \(Int(delay)) s): \(e.message)")
                try await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 10)
            }
        }
        try FileManager.default.createDirectory(atPath: common.stateDir + "/agent", withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: try JSONEncoder().encode(joined), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(path)")
        }
        logger.info("node \(node) joined the cluster")
        return joined
    }
}
