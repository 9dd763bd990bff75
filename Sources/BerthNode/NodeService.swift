import BerthCluster
import BerthConcurrency
import BerthModel
import BerthStore
import Foundation

/// One node as a service of its own: the agent runs what the store binds to this node (through the
/// feed), and the node's record, lease and pods' status go back to the store (through the reporter).
/// It meets the control plane only through the store, so it runs the same beside it (`berth run`) or
/// on a machine of its own. Its loop runs every 50 ms while pods change, else every `idlePeriod`.
public actor NodeService {
    public struct Options: Sendable {
        /// The node's lease, renewed every quarter of it: a node that stops renewing is not ready (no new
        /// pods are placed on it) after about this long.
        public var leaseSeconds = 10.0
        /// The pod CIDR the node asks the control plane for; nil: any it picks.
        public var requestedPodCIDR: String?
        public var idlePeriod = 1.0
        /// Stop every pod when the lease cannot be renewed for most of its time (`berth agent`: the servers
        /// replace a lost node's pods). Off where nothing replaces them (`berth run`).
        public var fenceOnLeaseLoss = false
        /// Shutting down stops every pod and removes the pod network, and the node leaves (its lease ends).
        public var stopWorkloadsOnExit = false
        public init() {}
    }

    /// What the service tells its host: progress at `info`, failures at `warning`.
    public struct Log: Sendable {
        public var info: @Sendable (String) -> Void
        public var warning: @Sendable (String) -> Void
        public init(info: @escaping @Sendable (String) -> Void, warning: @escaping @Sendable (String) -> Void) {
            self.info = info
            self.warning = warning
        }
    }

    public let agent: NodeAgent
    public nonisolated let nodeName: String
    let feed: NodeFeed
    let reporter: NodeReporter
    let options: Options
    let log: Log
    let wake: WakeSignal
    /// Told of each change of the agent's pod statuses (before, after, when): the host's events.
    private var observer: (@Sendable ([String: PodStatus], [String: PodStatus], Double) async -> Void)?

    /// The agent's view of its pods, by "namespace/name".
    public private(set) var statuses: [String: PodStatus] = [:]
    /// The node as last written to the store, and its status (resources, conditions) at that time.
    public private(set) var nodeRecord: NodeRecord?
    public private(set) var nodeStatus: NodeStatus?
    private var usage: [String: PodUsage] = [:]
    private var lastUsage = 0.0
    private var lastNodeReport = 0.0
    private var lastChange = 0.0
    /// The version of the feed the agent last got.
    private var fedVersion = -1
    /// When the lease was last renewed (or the service started): a node that cannot renew it for most of
    /// its time to live stops its pods (fences itself) before the control plane replaces them elsewhere.
    private var lastRenewal = NodeAgent.now
    public private(set) var fenced = false

    public init(config: NodeConfig, store: any Store, options: Options, log: Log) throws {
        let wake = WakeSignal()
        var node = config
        // A finished pull wakes the loop, so its containers start at once rather than at the next idle pass.
        node.onImagePulled = { Task { await wake.signal() } }
        agent = try NodeAgent(config: node)
        nodeName = config.nodeName
        feed = NodeFeed(store: store, nodeName: config.nodeName, changed: { Task { await wake.signal() } })
        reporter = NodeReporter(store: store, clock: { Date().timeIntervalSince1970 })
        self.options = options
        self.log = log
        self.wake = wake
    }

    public func observeStatuses(_ observer: @escaping @Sendable ([String: PodStatus], [String: PodStatus], Double) async -> Void) {
        self.observer = observer
    }

    /// Follows the store, takes the lease and registers, so that the node is known before anything is placed.
    public func start() async {
        await feed.start()
        await heartbeat()
        await step()
    }

    /// The loop and the lease's renewals, until cancelled.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.runLoop() }
            group.addTask { await self.runHeartbeat() }
        }
    }

    /// Leaves the pods running for the next start to adopt, or stops them (`stopWorkloadsOnExit`).
    public func shutDown() async {
        if options.stopWorkloadsOnExit {
            log.info("stopping every workload and removing the pod network (--stop-workloads-on-exit)")
            await agent.stopAll()
            // The node leaves: not ready at once. Otherwise its lease runs on, as the next start adopts the pods.
            await reporter.releaseLease()
        } else {
            log.info("leaving \(statuses.count) pods running; the next start adopts them")
        }
        await agent.closeRegistries()
        await feed.stop()
    }

    private func runLoop() async {
        while !Task.isCancelled {
            await step()
            let stopping = await feed.boundPods().contains(where: \.terminating)
            let busy = stopping || NodeAgent.now - lastChange < 3 || statuses.values.contains { $0.phase == .pending }
            await wake.wait(upTo: busy ? .milliseconds(50) : .seconds(options.idlePeriod))
        }
    }

    /// One pass: the agent gets the feed's news, acts on it, and the store hears what changed. The news
    /// comes first so that this tick applies it (a Service's new endpoints before any slow pod set-up).
    func step() async {
        let now = NodeAgent.now
        if await !checkFence(now) { await feedAgent(now) }
        await agent.tick()
        let current = await agent.statuses()
        if current != statuses {
            let before = statuses
            statuses = current
            lastChange = now
            await observer?(before, current, now)
        }
        if now - lastUsage >= 10 {
            usage = await agent.usage()
            lastUsage = now
        }
        do {
            // At once when the node turns ready (its pod network set up), else every 10 s.
            let networkReady = await agent.isNetworkReady
            if nodeRecord == nil || now - lastNodeReport >= 10 || networkReady != nodeRecord?.ready {
                try await reportNode(now)
                // Routes that could not be set are tried again at this pace.
                await agent.route(to: await feed.peerRoutes())
            }
            try await reportPods()
        } catch {
            log.warning("node \(nodeName): cannot report to the store: \(error)")
        }
    }

    /// The agent's input is what the store binds to this node; until the feed has read it once, the agent
    /// keeps what it runs (pods adopted after a restart).
    private func feedAgent(_ now: Double) async {
        let version = await feed.version
        if version != fedVersion, let input = await feed.desired() {
            fedVersion = version
            lastChange = now
            await agent.configure(network: await feed.networkSettings())
            if let network = await feed.podCIDR() { await agent.assign(network) }
            await agent.update(pods: input.pods, view: input.view)
            await agent.route(to: await feed.peerRoutes())
        }
    }

    private func reportNode(_ now: Double) async throws {
        let s = await agent.nodeStatus()
        nodeStatus = s
        let ready = s.conditions.first { $0.type == "Ready" }?.status ?? false
        var record = NodeRecord(name: s.name, labels: s.labels, taints: s.taints,
                                allocatable: .init(cpuMilli: s.allocatable.cpuMilli, memory: s.allocatable.memory,
                                                   pods: s.allocatable.pods, extended: s.allocatable.extended),
                                ready: ready, requestedPodCIDR: options.requestedPodCIDR)
        record.address = agent.config.nodeAddress
        if try await reporter.register(record), nodeRecord == nil {
            log.info("node \(s.name) registered: \(s.allocatable.cpuMilli)m CPU, \(s.allocatable.memory >> 20) MiB allocatable")
        }
        nodeRecord = record
        lastNodeReport = now
    }

    /// The agent's view of each pod of this node goes to the store, where the control plane's watch takes
    /// it; a terminating pod the agent no longer has is reported stopped.
    private func reportPods() async throws {
        var reports: [PodStatusRecord] = []
        let bound = await feed.boundPods()
        for r in bound {
            let key = r.namespace + "/" + r.name
            if r.terminating && statuses[key] == nil {
                reports.append(PodStatusRecord(namespace: r.namespace, name: r.name, node: nodeName, phase: .succeeded, ready: false, stopped: true))
                continue
            }
            guard let s = statuses[key] else { continue }
            reports.append(PodStatusRecord(namespace: r.namespace, name: r.name, node: nodeName, phase: s.phase, ready: s.ready,
                                           podIP: s.podIP, restarts: s.restarts, cpuUsageMilli: usage[key]?.pod.cpuMilli, detail: s))
        }
        try await reporter.report(reports)
        await reporter.retain(Set(bound.map { ClusterKey.podStatus(namespace: $0.namespace, name: $0.name) }))
    }

    /// Fences the node once its lease is 80% gone without a renewal: its pods stop within the next 15%,
    /// before the lease ends and the control plane (after its confirmation) replaces them. A renewal
    /// lifts the fence and the pods still bound here start again. True while fenced.
    private func checkFence(_ now: Double) async -> Bool {
        guard options.fenceOnLeaseLoss else { return false }
        let silent = now - lastRenewal
        if !fenced && silent >= options.leaseSeconds * 0.8 {
            fenced = true
            log.warning("node \(nodeName): lease not renewed for \(Int(silent)) s: stopping every pod before the servers replace them elsewhere")
            await agent.fence(graceCap: options.leaseSeconds * 0.15)
        } else if fenced && silent < options.leaseSeconds * 0.8 {
            fenced = false
            fedVersion = -1
            log.info("node \(nodeName): lease renewed: running what is bound here again")
            await agent.fence(graceCap: nil)
        }
        return fenced
    }

    /// Renews every quarter of the lease; a failed renewal is tried again after half a second.
    private func runHeartbeat() async {
        var renewed = true
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(renewed ? options.leaseSeconds / 4 : min(0.5, options.leaseSeconds / 4)))
            renewed = await heartbeat()
            // Here as well as in the loop: a step can wait on a report to an unreachable server.
            _ = await checkFence(NodeAgent.now)
        }
    }

    @discardableResult
    private func heartbeat() async -> Bool {
        do {
            try await reporter.heartbeat(node: nodeName, ttl: options.leaseSeconds)
            lastRenewal = NodeAgent.now
            return true
        } catch {
            log.warning("node \(nodeName): cannot renew its lease: \(error)")
            return false
        }
    }
}
