import BerthCluster
import BerthConcurrency
import BerthImage
import BerthLinux
import BerthModel
import BerthRuntime
import Foundation

/// berth's kubelet and kube-proxy for one node: runs the pods it is given with the runtime, probes and
/// restarts them, wires their network and the Services, and reports their status.
public actor NodeAgent {
    /// Its work blocks: it runs on a queue of its own, off the cooperative pool (see `BlockingExecutor`).
    private let executor = BlockingExecutor(label: "node-agent")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public let config: NodeConfig
    let runtime: ContainerManager
    let network: HostNetwork
    /// This node's pod network and the addresses handed out from it; nil until it is known.
    var podCIDR: CIDR?
    var addresses: AddressBook?
    /// Why the node has no pod network (the control plane's record says), or why it keeps another one.
    var podCIDRProblem: String?
    let serviceCIDR: CIDR
    let bundles: ContainerBundle
    let puller: ImagePuller?
    var imageGCAt = 0.0

    var desired: [String: Pod] = [:]
    /// No `update` yet: pods adopted from an earlier run are kept as they are until the agent is told
    /// what should run (a restarted daemon reads its desired state first).
    var adopting = true
    var view = ClusterView()
    var viewChanged = false
    var pods: [String: PodState] = [:]
    var networkReady = false
    var appliedRules: String?
    /// While set, pods being stopped get at most this grace period: a fenced node must be done before its
    /// lease runs out and the control plane replaces its pods.
    var graceCap: Double?
    /// Routes to other nodes' pod CIDRs in force (CIDR → the node's address), and why the last change failed.
    var appliedRoutes: [String: String] = [:]
    var routesError: String?
    /// How pods reach other nodes (nil: routed), and the pods' MTU under an overlay.
    var overlay: NetworkSettingsRecord?
    var podMTU: Int?
    /// The pod IPs of each Service in the rules in force.
    var appliedEndpoints: [String: [String]] = [:]
    /// The Services or their endpoints changed since the last tick.
    var servicesChanged = false
    var lastClusterIPs: [String?] = []
    /// Why the Services' table could not be set (nft's error), until it can.
    var servicesError: String?
    var probeResults: [(pod: String, run: String, kind: String, ok: Bool)] = []
    var probesInFlight = Set<String>()
    var cpuSamples: [String: (usage: UInt64, at: Double)] = [:]

    public init(config: NodeConfig) throws {
        guard let sc = CIDR(config.serviceCIDR) else { throw NodeError("service CIDR \(config.serviceCIDR) is not an IPv4 network such as 10.96.0.0/16") }
        self.config = config
        serviceCIDR = sc
        var manager = ContainerManager(root: config.runDir + "/runtime", shim: config.shimBinary)
        manager.images = config.imageStore
        // berth's own state never shows in an `image: host` container.
        manager.hostHidden = [config.stateDir, config.runDir]
        runtime = manager
        network = HostNetwork(namespace: config.networkNamespace)
        bundles = ContainerBundle(initBinary: config.initBinary)
        let log = config.log ?? { _ in }
        let pulled = config.onImagePulled ?? {}
        puller = config.imageStore.map { ImagePuller(store: ImageStore(root: $0), options: config.registry, log: log, finished: pulled) }
        do {
            try Files.makePrivateDirectory(config.stateDir)
            try Files.makePrivateDirectory(config.runDir)
            try Files.makeDirectories(config.nodeDir + "/pods", mode: 0o700)
        } catch { throw NodeError("cannot prepare \(config.nodeDir): \(error)") }
        if let given = config.podCIDR {
            guard let pc = CIDR(given), pc.description == given else { throw NodeError("pod CIDR \(given) is not an IPv4 network such as 10.244.0.0/24") }
            addresses = try Self.addressBook(config, pc)
            podCIDR = pc
        }
        // Pods of an earlier run of the agent: adopted as they are.
        for name in Files.list(config.nodeDir + "/pods") where name.hasSuffix(".json") {
            guard let data = Files.read(config.nodeDir + "/pods/" + name, limit: 16 << 20),
                  let state = try? JSONDecoder().decode(PodState.self, from: Data(data)) else { continue }
            pods[state.key] = state
        }
        // A container no adopted pod knows was started just before a crash, before its pod's state was
        // saved: nothing would ever stop it, so it goes now (with its cgroup).
        let known = Set(pods.values.map(\.uid))
        for id in Files.list(runtime.root) {
            guard let uid = Self.podUID(ofContainer: id), !known.contains(uid) else { continue }
            try? runtime.delete(id: id, force: true)
        }
    }

    static var now: Double { Date().timeIntervalSince1970 }

    /// The bridge and the route to the Services are set up: the node can take pods.
    public var isNetworkReady: Bool { networkReady }

    /// The pod CIDR the control plane gave this node, or why it has none. Taken once: the node's pods hold
    /// addresses from it, so a different one later is refused until the agent starts again.
    public func assign(_ record: PodCIDRRecord) {
        podCIDRProblem = record.error
        guard let text = record.cidr, let cidr = CIDR(text) else { return }
        if let current = podCIDR {
            if current != cidr { podCIDRProblem = "the control plane gives this node the pod CIDR \(cidr); its pods use \(current) until the agent starts again" }
            return
        }
        do {
            addresses = try Self.addressBook(config, cidr)
            podCIDR = cidr
        } catch { podCIDRProblem = "\(error)" }
    }

    /// The pods' addresses: the CIDR's first is the bridge's.
    private static func addressBook(_ config: NodeConfig, _ cidr: CIDR) throws -> AddressBook {
        do {
            return try AddressBook(dir: config.nodeDir + "/addresses", from: IPv4(cidr.first.value + 1), to: cidr.last)
        } catch { throw NodeError("cannot prepare \(config.nodeDir)/addresses: \(error)") }
    }

    // MARK: input

    /// The pods this node should run and what they refer to. Pods not in `pods` are stopped.
    /// Stops every pod within `graceCap` seconds (the node lost its lease: the control plane will run them
    /// elsewhere), or, with nil, lets the next `update` start what is bound here again.
    public func fence(graceCap cap: Double?) {
        graceCap = cap
        guard let cap else { return }
        desired = [:]
        adopting = false
        let deadline = NodeAgent.now + cap
        for key in pods.keys {
            if let killAt = pods[key]?.killAt, killAt > deadline { pods[key]?.killAt = deadline }
        }
    }

    public func update(pods wanted: [Pod], view newView: ClusterView) {
        adopting = false
        desired = [:]
        for p in wanted { desired[p.metadata.effectiveNamespace + "/" + p.metadata.name] = p }
        if newView.configMaps != view.configMaps || newView.secrets != view.secrets || newView.services != view.services || newView.claims != view.claims {
            viewChanged = true
        }
        if newView.endpoints != view.endpoints || newView.services != view.services { servicesChanged = true }
        view = newView
    }

    /// Runs `tick` every `interval` seconds until the task is cancelled.
    public func run(interval: Double = 0.2) async {
        while !Task.isCancelled {
            tick()
            try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
        }
    }

    // MARK: output

    public func status(namespace: String, name: String) -> PodStatus? {
        guard var s = pods[namespace + "/" + name]?.status else { return nil }
        s.hostIP = podCIDR?.first.description
        return s
    }

    public func statuses() -> [String: PodStatus] { pods.mapValues(\.status) }

    /// The address a Service was given, "namespace/name".
    public func clusterIP(of service: String) -> String? { view.services.first { $0.namespace + "/" + $0.name == service }?.clusterIP }


    // MARK: the loop

    /// One pass: start, probe, restart and stop pods; refresh volumes and the Services' table.
    public func tick() {
        let now = NodeAgent.now
        // Supervisors of containers that ended are this process's children: collect them.
        Reaper.reap()
        applyProbeResults(now)
        if !networkReady { setUpNetwork() }
        // New endpoints now, not after the pods' work below (starting containers can take a while).
        if servicesChanged {
            servicesChanged = false
            syncServices(servingEndpoints())
        }
        for (key, pod) in desired where pods[key] == nil {
            pods[key] = PodState(pod: pod, uid: NodeAgent.makeUID(), now: now)
        }
        let refresh = viewChanged
        viewChanged = false
        for key in pods.keys.sorted() {
            guard var p = pods[key] else { continue }
            let before = p
            if !adopting && p.terminatingSince == nil && desired[key] != p.pod {
                p.terminatingSince = now
            }
            if p.terminatingSince != nil {
                if advanceTermination(&p, now) {
                    pods[key] = nil
                    unlink(config.nodeDir + "/pods/" + p.fileName)
                    continue
                }
            } else {
                advance(&p, now, refreshVolumes: refresh)
            }
            pods[key] = p
            // Written only when it changed: most ticks change nothing.
            if p != before { save(p) }
        }
        if refresh { collectClaims() }
        collectImages(now)
        let endpoints = servingEndpoints()
        syncServices(endpoints)
        // SIGTERM only once the Services' rules no longer send new connections to the pod; the grace
        // period runs from then.
        var serving = Set<String>()
        for (service, addresses) in endpoints {
            let namespace = service.prefix { $0 != "/" }
            for a in addresses where a.node == config.nodeName { serving.insert(namespace + "/" + a.pod) }
        }
        // Other nodes' proxies learn of the withdrawal through the servers, a little later than this one;
        // a fenced node is cut off from them and has no time to spare.
        let propagation = appliedRoutes.isEmpty || graceCap != nil ? 0 : Self.endpointPropagation
        for (key, p) in pods where p.terminatingSince != nil && p.killAt == nil && !serving.contains(key) {
            if let withdrawn = p.withdrawnAt, now - withdrawn < propagation { continue }
            send(SIGTERM, to: p)
            pods[key]?.killAt = now + min(Double(p.pod.spec.terminationGracePeriodSeconds ?? 30), graceCap ?? .infinity)
            if let p = pods[key] { save(p) }
        }
    }

    /// Keeps the pod's state for the next run of the agent, which adopts it.
    func save(_ p: PodState) {
        if let data = try? JSONEncoder().encode(p) {
            try? Files.write(Array(data), to: config.nodeDir + "/pods/" + p.fileName, mode: 0o600)
        }
    }

    /// The pod of a container the agent named (`<uid>-sandbox`, `<uid>-<container>-<attempt>`); nil for
    /// any other name, which is not the agent's to touch.
    static func podUID(ofContainer id: String) -> String? {
        let parts = id.split(separator: "-")
        guard parts.count >= 2, parts[0].count == 10, parts[0].allSatisfy(\.isHexDigit),
              parts.count == 2 ? parts[1] == "sandbox" : Int(parts[parts.count - 1]) != nil else { return nil }
        return String(parts[0])
    }

    static func makeUID() -> String {
        var g = SystemRandomNumberGenerator()
        return String((0..<10).map { _ in "0123456789abcdef".randomElement(using: &g)! })
    }

    var podsDir: String { config.runDir + "/pods" }

    func volumes(_ p: PodState) -> PodVolumes {
        PodVolumes(podDir: podsDir + "/" + p.uid, uid: p.uid, claimsDir: config.nodeDir + "/claims", hostPathRoots: config.hostPathRoots)
    }

    /// Claims that left the cluster and that no pod uses.
    func collectClaims() {
        let root = config.nodeDir + "/claims"
        var used = Set<String>()
        for p in pods.values {
            for v in p.pod.spec.volumes { if case .persistentVolumeClaim(let c, _) = v.source { used.insert(p.pod.metadata.effectiveNamespace + "/" + c) } }
        }
        for ns in Files.list(root) {
            for claim in Files.list(root + "/" + ns) where view.claims[ns + "/" + claim] == nil && !used.contains(ns + "/" + claim) {
                try? Files.removeTree(root + "/" + ns + "/" + claim)
            }
        }
    }

    // MARK: stopping

    func send(_ signal: Int32, to p: PodState) {
        for r in p.runs where isRunning(r) {
            if let id = r.runtimeID { try? runtime.kill(id: id, signal: signal) }
        }
    }

    /// True once every container and the sandbox are gone.
    func advanceTermination(_ p: inout PodState, _ now: Double) -> Bool {
        var left = false
        for i in p.runs.indices where isRunning(p.runs[i]) {
            if let id = p.runs[i].runtimeID, exited(id) {
                finish(&p, i, now)
            } else {
                left = true
                if let killAt = p.killAt, now >= killAt, let id = p.runs[i].runtimeID { try? runtime.kill(id: id, signal: SIGKILL) }
            }
        }
        if left { return false }
        for r in p.runs { if let id = r.runtimeID { removeContainer(id, p, r.name) } }
        tearDownSandbox(p)
        volumes(p).remove()
        return true
    }

    /// Stops every pod now (SIGKILL after each pod's grace period) and removes all the node set up:
    /// containers, sandboxes, veths, the bridge, the nftables table, mounts and state.
    /// Closes the registry connections; the agent pulls nothing after this.
    public func closeRegistries() async { await puller?.shutdown() }

    public func stopAll(timeout: Double = 60) async {
        adopting = false
        desired = [:]
        // Nothing waits for the control plane to withdraw endpoints: the node is going away.
        view.endpoints = [:]
        let deadline = NodeAgent.now + timeout
        while !pods.isEmpty && NodeAgent.now < deadline {
            tick()
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        if pods.isEmpty { Cgroup.removeRuntimeParent() }
        network.deleteTable(family: "inet", name: "berth")
        network.removeLink(config.bridge)
        for cidr in appliedRoutes.keys { _ = try? network.run([HostNetwork.ip, "route", "del", cidr]) }  // gone already: nothing to undo
        network.removeLink(Self.vxlanDevice)
        networkReady = false
        appliedRules = nil
        appliedRoutes = [:]
    }
}
