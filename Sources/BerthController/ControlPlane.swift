import BerthCluster
import BerthModel
import BerthScheduler
import BerthStore
import Foundation

public struct ControlPlaneError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Runs the controllers over the store: it takes the desired state of each reconciled commit, keeps an
/// inventory of what Git created (and prunes what left Git), syncs the Deployments that changed or whose
/// pods changed, schedules pending pods, and keeps Service endpoints to the ready pods.
public actor ControlPlane {
    public static let allowPruneAllAnnotation = "berth.dev/allow-prune-all"

    let store: any Store
    let clock: @Sendable () -> Double
    let coder = JSONEncoder()
    let decoder = JSONDecoder()
    var pods: [ClusterKey: PodRecord] = [:]
    /// Each pod's whole status as its node last reported it, for the API and the status branch.
    var podDetails: [ClusterKey: PodStatus] = [:]
    var podsByOwner: [ObjectKey: Set<ClusterKey>] = [:]
    var revisions: [ClusterKey: RevisionRecord] = [:]
    var statuses: [ObjectKey: DeploymentStatus] = [:]
    /// The nodes as placement sees them: as they registered, not ready unless their lease is alive.
    var nodes: [String: NodeRecord] = [:]
    /// The nodes' own records, and the nodes whose lease record exists.
    var registered: [String: NodeRecord] = [:]
    var leased: Set<String> = []
    /// Nodes an operator cordoned or drains.
    var cordons: [String: CordonRecord] = [:]
    /// When each node not ready turned so, and the nodes taken for lost at the last pass.
    var notReadySince: [String: Double] = [:]
    var lost: Set<String> = []
    /// How long a node stays not ready before it is taken for lost: nodes that vanish together (a
    /// partition) are all seen gone within one renewal period, and then the 55% rule holds.
    public var lossConfirmation = 3.0
    var endpoints: [ObjectKey: EndpointsRecord] = [:]
    var desired: [ObjectKey: KubeObject] = [:]
    var inventory: Set<ObjectKey> = []
    var dirty: Set<ObjectKey> = []
    var backoff: [ClusterKey: (until: Double, delay: Double)] = [:]
    /// When a Deployment must be looked at again without any change: its progress deadline, or a ready pod
    /// reaching minReadySeconds.
    var wakeAt: [ObjectKey: Double] = [:]
    var endpointsDirty = true
    var jobStatuses: [ObjectKey: JobStatus] = [:]
    var daemonSetStatuses: [ObjectKey: DaemonSetStatus] = [:]
    var autoscalers: [ObjectKey: AutoscalerStatus] = [:]
    /// Replicas an autoscaler chose, by Deployment; a Deployment no HPA targets runs its own `replicas`.
    var scale: [ObjectKey: Int] = [:]
    /// Jobs started by CronJobs: their spec, their CronJob and the time they stand for.
    var cronJobRuns: [ObjectKey: (spec: JobSpec, cron: ObjectKey, scheduledTime: Double)] = [:]
    var lastSchedule: [ObjectKey: Double] = [:]
    /// The scheduler's view of the nodes and what runs on them, kept between passes (kube-scheduler's
    /// cache) and rebuilt when a node changes.
    var schedulerCache: Scheduler?
    var waitingPods: Set<ClusterKey> = []
    var firstSeen: [ObjectKey: Double] = [:]
    /// The revision of every key as last read or written: the compare of the next write to it.
    var known: [ClusterKey: Int64] = [:]
    /// Writes of this pass, sent as one transaction by `flush`.
    var staged: [ClusterKey: StoreWrite.Operation] = [:]
    var stagedOrder: [ClusterKey] = []
    /// The leadership key every write is conditional on, when several control planes share the store.
    var fence: StoreFence?
    /// The revision each followed prefix was read or watched up to.
    var followed: [ClusterKey.Prefix: Int64] = [:]
    /// The newest revision of a node's report taken in, and who waits for one (`caughtUp`).
    var seen: Int64 = 0
    var seenWaiters: [(revision: Int64, continuation: CheckedContinuation<Void, Never>)] = []
    var following: Task<Void, Never>?
    var onChange: @Sendable () -> Void = {}
    /// The service network ClusterIPs come from.
    let serviceCIDR: CIDR
    /// The network nodes' pod CIDRs come from, and what each node got.
    let clusterCIDR: CIDR
    var podCIDRs: [String: PodCIDRRecord] = [:]
    var podCIDRsDirty = true
    /// What nodes read of the applied commit: ConfigMaps, Secrets, claims, Services with their addresses.
    var configs: [ClusterKey: ConfigRecord] = [:]
    /// Seconds from creation to binding of the pods bound since the last `takeSchedulingLatencies`.
    var schedulingLatencies: [Double] = []

    public init(store: any Store, clock: @escaping @Sendable () -> Double, serviceCIDR: String = "10.96.0.0/16",
                clusterCIDR: String = "10.244.0.0/16") async throws {
        guard let range = CIDR(serviceCIDR) else {
            throw ControlPlaneError(message: "service CIDR \(serviceCIDR) is not an IPv4 network such as 10.96.0.0/16")
        }
        guard let pods = CIDR(clusterCIDR), pods.prefix <= PodCIDRAllocator.nodePrefix else {
            throw ControlPlaneError(message: "cluster CIDR \(clusterCIDR) is not an IPv4 network of /\(PodCIDRAllocator.nodePrefix) or larger, such as 10.244.0.0/16")
        }
        guard !pods.overlaps(range) else { throw ControlPlaneError(message: "cluster CIDR \(clusterCIDR) overlaps service CIDR \(serviceCIDR)") }
        self.serviceCIDR = range
        self.clusterCIDR = pods
        self.store = store
        self.clock = clock
        coder.outputFormatting = [.sortedKeys]
        try await load()
    }

    struct InventoryEntry: Codable {
        var kind: String
        var namespace: String
        var name: String
        var key: ObjectKey { ObjectKey(kind: ObjectKind(rawValue: kind) ?? .configMap, namespace: namespace, name: name) }
    }

    /// Starts leading: reads the store afresh (another leader may have changed it) and writes from now on
    /// under `fence` (nil: the only control plane, as on the embedded store).
    public func lead(under fence: StoreFence?) async throws {
        self.fence = fence
        staged = [:]
        stagedOrder = []
        try await load()
    }

    // MARK: desired state from Git

    /// Applies a commit's desired state: refuses to prune everything unless asked, prunes what left Git,
    /// and syncs what changed. Returns the keys pruned.
    @discardableResult
    public func apply(_ state: DesiredState, allowEmpty: Bool = false) async throws -> [ObjectKey] {
        let keys = Set(state.objects.keys)
        let optedIn = allowEmpty || state.objects.values.contains {
            $0.object.metadata.annotations[ControlPlane.allowPruneAllAnnotation] == "true"
        }
        if !inventory.isEmpty && keys.isDisjoint(with: inventory) && !optedIn {
            throw ControlPlaneError(message: "the commit would delete every object berth created (\(inventory.count)); "
                + "refusing without --allow-empty or the annotation \(ControlPlane.allowPruneAllAnnotation): \"true\"")
        }
        let gone = inventory.subtracting(keys).sorted()
        for key in gone { try await prune(key) }
        var changed: [ObjectKey] = []
        for (key, sourced) in state.objects where desired[key] != sourced.object {
            changed.append(key)
        }
        desired = state.objects.mapValues(\.object)
        try syncConfigs()
        if keys != inventory {
            inventory = keys
            let entries = keys.sorted().map { InventoryEntry(kind: $0.kind.rawValue, namespace: $0.namespace, name: $0.name) }
            try stage(ClusterKey.inventory, entries)
        }
        dirty.formUnion(changed)
        if changed.contains(where: { $0.kind == .service }) || !gone.isEmpty { endpointsDirty = true }
        // A commit may bring what waiting pods need.
        for key in waitingPods {
            guard var record = pods[key] else {
                waitingPods.remove(key)
                continue
            }
            let reason = missingConfiguration(record.spec, namespace: record.namespace)
            guard reason != record.waitingReason else { continue }
            record.waitingReason = reason
            try stage(key, record)
            pods[key] = record
            if reason == nil { waitingPods.remove(key) }
        }
        try await reconcile()
        return gone
    }

    private func prune(_ key: ObjectKey) async throws {
        desired[key] = nil
        for (job, run) in cronJobRuns where run.cron == key { try await pruneJob(job) }
        if key.kind == .cronJob {
            for (name, _) in cronStates[key]?.runs ?? [:] { try await pruneJob(ObjectKey(kind: .job, namespace: key.namespace, name: name)) }
            cronStates[key] = nil
            firstSeen[key] = nil
            lastSchedule[key] = nil
            stageDelete(.cronJobState(namespace: key.namespace, name: key.name))
        }
        for kind in ["Deployment", "Job", "DaemonSet", "HorizontalPodAutoscaler"] where kind == key.kind.rawValue {
            stageDelete(.workloadStatus(kind: kind, namespace: key.namespace, name: key.name))
        }
        jobStatuses[key] = nil
        daemonSetStatuses[key] = nil
        autoscalers[key] = nil
        for podKey in podsByOwner[key] ?? [] { try await deletePod(podKey) }
        for r in revisions.values where r.namespace == key.namespace && r.deployment == key.name && key.kind == .deployment {
            stageDelete(r.key)
            revisions[r.key] = nil
        }
        statuses[key] = nil
        if key.kind == .service {
            stageDelete(.endpoints(namespace: key.namespace, name: key.name))
            endpoints[key] = nil
        }
    }

    /// Writes what nodes need of the commit, allocating addresses for new Services.
    private func syncConfigs() throws {
        var wanted: [ClusterKey: ConfigRecord] = [:]
        var services: [Service] = []
        for object in desired.values {
            let record: ConfigRecord
            switch object {
            case .configMap(let c): record = .configMap(c)
            case .secret(let s): record = .secret(s)
            case .persistentVolumeClaim(let c): record = .claim(c)
            case .service(let s):
                services.append(s)
                continue
            default: continue
            }
            wanted[record.key] = record
        }
        var previous: [String: ServiceRecord] = [:]
        for case .service(let r) in configs.values { previous[r.namespace + "/" + r.name] = r }
        for r in ServiceAllocator.allocate(services, previous: previous, range: serviceCIDR).values {
            wanted[ConfigRecord.service(r).key] = .service(r)
        }
        for (key, record) in wanted where configs[key] != record { try stage(key, record) }
        for key in configs.keys where wanted[key] == nil { stageDelete(key) }
        configs = wanted
    }

    // MARK: reconciling

    /// Syncs every Deployment that changed, whose pods changed, or that waits on time (a rollout in
    /// progress), then schedules and updates endpoints.
    public func reconcile() async throws {
        let now = clock()
        try allocatePodCIDRs()
        try await autoscale(now: now)
        try await runCronJobs(now: now)
        for (key, at) in wakeAt where at <= now {
            dirty.insert(key)
            wakeAt[key] = nil
        }
        // A lost node stopped its pods itself when it could not renew its lease (an agent fences itself
        // before the lease runs out), so those being deleted are gone: nobody is left to report it.
        refreshLost(now: now)
        for p in pods.values where p.terminating && nodeGone(p.nodeName, lost: lost) { remove(p) }
        let work = dirty
        dirty.removeAll()
        // Pods made in one pass are bounded (Kubernetes' ReplicaSet controller makes at most 500 per sync):
        // a pass stays short, so leases are renewed and nodes heard between passes; the rest come next pass.
        var budget = Self.podsPerPass
        func create(_ all: [PodRecord], for key: ObjectKey) throws {
            let created = all.prefix(budget)
            budget -= created.count
            if created.count < all.count { dirty.insert(key) }
            for var p in created {
                p.waitingReason = missingConfiguration(p.spec, namespace: p.namespace)
                if p.waitingReason != nil { waitingPods.insert(p.key) }
                try stage(p.key, p)
                pods[p.key] = p
                podsByOwner[key, default: []].insert(p.key)
            }
            if !created.isEmpty { endpointsDirty = true }
        }
        for key in work.sorted() {
            switch desired[key] ?? cronJobRuns[key].map({ run in
                var j = Job()
                j.metadata.name = key.name
                j.metadata.namespace = key.namespace
                j.spec = run.spec
                return KubeObject.job(j)
            }) {
            case .job(let j)?:
                let owned = (podsByOwner[key] ?? []).compactMap { pods[$0] }
                let plan = JobSync.sync(namespace: key.namespace, name: key.name, spec: j.spec, pods: owned, previous: jobStatuses[key],
                                        now: now, nameSuffix: nextSuffix)
                for name in plan.deletes { try await deletePod(.pod(namespace: key.namespace, name: name)) }
                try create(plan.creates, for: key)
                if jobStatuses[key] != plan.status {
                    try stage(.workloadStatus(kind: "Job", namespace: key.namespace, name: key.name), plan.status)
                    jobStatuses[key] = plan.status
                }
                wakeAt[key] = plan.wakeAt
                continue
            case .daemonSet(let ds)?:
                let owned = (podsByOwner[key] ?? []).compactMap { pods[$0] }
                let plan = DaemonSetSync.sync(ds, nodes: nodes.values.sorted { $0.name < $1.name }, pods: owned, now: now,
                                              nameSuffix: nextSuffix)
                for name in plan.deletes { try await deletePod(.pod(namespace: key.namespace, name: name)) }
                try create(plan.creates, for: key)
                if daemonSetStatuses[key] != plan.status {
                    try stage(.workloadStatus(kind: "DaemonSet", namespace: key.namespace, name: key.name), plan.status)
                    daemonSetStatuses[key] = plan.status
                }
                continue
            case .deployment(var d)?:
                if let replicas = scale[key] { d.replicas = replicas }
                try await syncDeployment(d, key: key, now: now, create: create)
            case .pod(let bare)?:
                // A bare Pod runs as written, under its own name, and is not replaced when it ends; a changed
                // manifest replaces it once the old one has stopped (a pod's spec cannot change in place).
                let owned = (podsByOwner[key] ?? []).compactMap { pods[$0] }
                for p in owned where !p.terminating && (p.spec != bare.spec || p.labels != bare.metadata.labels) {
                    try await deletePod(p.key)
                }
                if owned.isEmpty {
                    try create([PodRecord(namespace: key.namespace, name: key.name, ownerKind: "Pod", ownerName: key.name, revisionHash: "",
                                          labels: bare.metadata.labels, spec: bare.spec, createdAt: now)], for: key)
                }
            default:
                continue
            }
        }
        try schedule(now: now)
        try updateEndpoints()
        try await flush()
    }

    private func syncDeployment(_ d: Deployment, key: ObjectKey, now: Double, create: ([PodRecord], ObjectKey) throws -> Void) async throws {
        do {
            let owned = (podsByOwner[key] ?? []).compactMap { pods[$0] }
            let revs = revisions.values.filter { $0.namespace == key.namespace && $0.deployment == key.name }
            let nodeStates = nodes, lost = lost, drained = cordons
            let plan = DeploymentSync.sync(d, pods: owned, revisions: revs, previous: statuses[key],
                                           nodeReady: { nodeStates[$0] != nil && !lost.contains($0) }, draining: { drained[$0]?.drain == true },
                                           now: now, nameSuffix: nextSuffix)
            for name in plan.deletes { try await deletePod(.pod(namespace: key.namespace, name: name)) }
            try create(plan.creates, key)
            for r in plan.revisionWrites {
                try stage(r.key, r)
                revisions[r.key] = r
            }
            for k in plan.revisionDeletes {
                stageDelete(k)
                revisions[k] = nil
            }
            if statuses[key] != plan.status {
                try stage(.workloadStatus(kind: "Deployment", namespace: key.namespace, name: key.name), plan.status)
                statuses[key] = plan.status
            }
            if !plan.deletes.isEmpty { endpointsDirty = true }
            if plan.status.condition("Progressing")?.reason == "ReplicaSetUpdated" {
                var wake = plan.status.lastProgress + Double(d.progressDeadlineSeconds) + 0.001
                for p in owned where p.ready && !p.isAvailable(now: now, minReadySeconds: d.minReadySeconds) {
                    wake = min(wake, (p.readySince ?? now) + Double(d.minReadySeconds))
                }
                wakeAt[key] = wake
            } else {
                wakeAt[key] = nil
            }
        }
    }

    /// ConfigMaps, Secrets and claims come before the pods that use them: a pod whose required one is
    /// absent waits, with Kubernetes' reason, until a commit brings it.
    func missingConfiguration(_ spec: PodSpec, namespace: String) -> String? {
        for r in ObjectFacts.references(of: spec, at: .root)
        where desired[ObjectKey(kind: r.kind, namespace: namespace, name: r.name)] == nil {
            // Kubernetes' reasons: env sources fail the container's config, volumes hold it in creation.
            let stage = r.field.components.contains(.field("volumes")) ? "ContainerCreating" : "CreateContainerConfigError"
            return "\(stage): \(r.kind.rawValue.lowercased()) \"\(r.name)\" not found"
        }
        return nil
    }

    // MARK: autoscaling and cron

    /// Each HPA sets its Deployment's replicas from the CPU its ready pods use against what they request.
    private func autoscale(now: Double) async throws {
        var targeted = Set<ObjectKey>()
        for (key, object) in desired {
            guard case .horizontalPodAutoscaler(let h) = object else { continue }
            let target = ObjectKey(kind: .deployment, namespace: key.namespace, name: h.scaleTarget.name)
            guard case .deployment(let d)? = desired[target] else { continue }
            targeted.insert(target)
            let ready = (podsByOwner[target] ?? []).compactMap { pods[$0] }.filter { $0.ready && !$0.terminating }
            let usage = ready.compactMap(\.cpuUsageMilli).reduce(0, +)
            let requests = ready.filter { $0.cpuUsageMilli != nil }.map { ResourceAmounts(requestsOf: $0.spec).cpuMilli }.reduce(0, +)
            let current = scale[target] ?? d.replicas
            let status = HPASync.sync(h, currentReplicas: current, usage: usage, requests: requests, previous: autoscalers[key], now: now)
            let old = autoscalers[key]
            autoscalers[key] = status
            if old?.desiredReplicas != status.desiredReplicas || old?.currentCPUUtilizationPercentage != status.currentCPUUtilizationPercentage {
                try stage(.workloadStatus(kind: "HorizontalPodAutoscaler", namespace: key.namespace, name: key.name), status)
            }
            if scale[target] != status.desiredReplicas {
                scale[target] = status.desiredReplicas
                dirty.insert(target)
            }
        }
        for key in scale.keys where !targeted.contains(key) {
            scale[key] = nil
            dirty.insert(key)
        }
    }

    /// What the CronJob controller must remember across restarts (`cronjobs/<namespace>/<name>`).
    struct CronState: Codable, Equatable {
        var firstSeen: Double
        var lastScheduleTime: Double?
        /// Jobs it started: name → the time each stands for.
        var runs: [String: Double]
    }

    var cronStates: [ObjectKey: CronState] = [:]

    /// CronJobs start Jobs at their times; the Jobs then run like any other.
    private func runCronJobs(now: Double) async throws {
        for (key, object) in desired {
            guard case .cronJob(let c) = object else { continue }
            if firstSeen[key] == nil { firstSeen[key] = cronStates[key]?.firstSeen ?? now }
            if lastSchedule[key] == nil { lastSchedule[key] = cronStates[key]?.lastScheduleTime }
            // Runs remembered from before a restart run on with the CronJob's job template.
            for (name, time) in cronStates[key]?.runs ?? [:] {
                let job = ObjectKey(kind: .job, namespace: key.namespace, name: name)
                if cronJobRuns[job] == nil { cronJobRuns[job] = (c.jobSpec, key, time) }
            }
            let runs = cronJobRuns.filter { $0.value.cron == key }.map { run in
                ScheduledJob(name: run.key.name, scheduledTime: run.value.scheduledTime,
                             succeeded: jobStatuses[run.key].flatMap { s in s.isFinished ? s.condition("Complete")?.status == true : nil })
            }
            let plan = CronJobSync.sync(c, jobs: runs, lastScheduleTime: lastSchedule[key], createdAt: firstSeen[key]!, now: now)
            lastSchedule[key] = plan.lastScheduleTime
            for name in plan.deleteJobs { try await pruneJob(ObjectKey(kind: .job, namespace: key.namespace, name: name)) }
            if let start = plan.start {
                let job = ObjectKey(kind: .job, namespace: key.namespace, name: start.name)
                cronJobRuns[job] = (c.jobSpec, key, start.scheduledTime)
                dirty.insert(job)
            }
            var remembered: [String: Double] = [:]
            for (job, run) in cronJobRuns where run.cron == key { remembered[job.name] = run.scheduledTime }
            let state = CronState(firstSeen: firstSeen[key]!, lastScheduleTime: lastSchedule[key], runs: remembered)
            if cronStates[key] != state {
                try stage(.cronJobState(namespace: key.namespace, name: key.name), state)
                cronStates[key] = state
            }
        }
    }

    private func pruneJob(_ key: ObjectKey) async throws {
        for podKey in podsByOwner[key] ?? [] { try await deletePod(podKey) }
        cronJobRuns[key] = nil
        jobStatuses[key] = nil
        stageDelete(.workloadStatus(kind: "Job", namespace: key.namespace, name: key.name))
    }

    private func deletePod(_ key: ClusterKey) async throws {
        guard var record = pods[key] else { return }
        if record.nodeName == nil {
            // Never started anywhere: gone at once.
            stageDelete(key)
            waitingPods.remove(key)
            pods[key] = nil
            podsByOwner[record.owner]?.remove(key)
            return
        }
        guard !record.terminating else { return }
        endpointsDirty = true
        record.terminating = true
        if nodeGone(record.nodeName, lost: lost) {
            // Its node fenced itself: the pod is stopped already.
            remove(record)
            return
        }
        try stage(key, record)
        pods[key] = record
    }

    // MARK: scheduling

    /// Pods made, and pods bound, in one pass at most.
    static let podsPerPass = 500

    /// Places pending pods; an unschedulable pod records why and waits 1 s, doubling to 10 s, before the next try.
    private func schedule(now: Double) throws {
        let pending = pods.values.filter { $0.nodeName == nil && !$0.terminating }
            .filter { (backoff[$0.key]?.until ?? 0) <= now }.sorted { ($0.createdAt, $0.name) < ($1.createdAt, $1.name) }
        guard !pending.isEmpty else { return }
        let scheduler: Scheduler
        if let cached = schedulerCache {
            scheduler = cached
        } else {
            scheduler = Scheduler(nodes: nodes.values.sorted { $0.name < $1.name }.map(\.spec))
            for p in pods.values where p.nodeName != nil {
                scheduler.assume(request(for: p), onNode: p.nodeName!)
            }
            schedulerCache = scheduler
        }
        // A binding that conflicts (its node changed the pod first) drops the scheduler's cache in flush.
        // At most `podsPerPass` a pass: the others wait for the next.
        for var p in pending.prefix(Self.podsPerPass) {
            switch scheduler.schedule(request(for: p)) {
            case .bind(let node):
                p.nodeName = node
                p.unschedulableReason = nil
                backoff[p.key] = nil
                if schedulingLatencies.count < 100_000 { schedulingLatencies.append(max(0, now - p.createdAt)) }
            case .unschedulable(let reason):
                let delay = min(10, (backoff[p.key]?.delay ?? 0.5) * 2)
                backoff[p.key] = (now + delay, delay)
                if p.unschedulableReason == reason { continue }
                p.unschedulableReason = reason
            }
            try stage(p.key, p)
            pods[p.key] = p
        }
    }

    /// Pod name suffixes, random as Kubernetes makes them (no vowels, so no words): a name taken
    /// already fails its create, which is a compare-and-swap on absence, and the next pass picks another.
    private func nextSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }

    private func forgetOnNode(_ p: PodRecord) {
        if let node = p.nodeName { schedulerCache?.forget(request(for: p), onNode: node) }
        waitingPods.remove(p.key)
    }

    func request(for p: PodRecord) -> PodRequest {
        PodRequest(namespace: p.namespace, name: p.name, owner: "\(p.ownerKind)/\(p.ownerName)", spec: p.spec,
                   equivalenceKey: "\(p.ownerKind)/\(p.namespace)/\(p.ownerName)/\(p.revisionHash)")
    }

    // MARK: endpoints

    /// Recomputed only after pods or Services changed; serving pods are grouped by namespace once.
    private func updateEndpoints() throws {
        guard endpointsDirty else { return }
        endpointsDirty = false
        var serving: [String: [PodRecord]] = [:]
        // A lost node's pods leave the Services at once: what they last reported cannot be trusted.
        for p in pods.values where p.ready && !p.terminating && p.podIP != nil && !lost.contains(p.nodeName ?? "") {
            serving[p.namespace, default: []].append(p)
        }
        for (key, object) in desired {
            guard case .service(let s) = object, !s.selector.isEmpty else { continue }
            let selector = LabelSelector(matchLabels: s.selector)
            let addresses = (serving[key.namespace] ?? []).filter { selector.matches($0.labels) }.map {
                EndpointsRecord.Address(pod: $0.name, ip: $0.podIP!, node: $0.nodeName ?? "", ports: EndpointsRecord.targetPorts(of: s, in: $0.spec))
            }.sorted { $0.pod < $1.pod }
            let record = EndpointsRecord(namespace: key.namespace, name: key.name, addresses: addresses)
            if endpoints[key] != record {
                try stage(record.key, record)
                endpoints[key] = record
            }
        }
    }

    // MARK: what nodes report

    /// Gives each registered node a pod CIDR (and frees those of nodes gone), when nodes changed.
    private func allocatePodCIDRs() throws {
        guard podCIDRsDirty else { return }
        podCIDRsDirty = false
        let records = PodCIDRAllocator.allocate(Array(registered.values), previous: podCIDRs, range: clusterCIDR, serviceRange: serviceCIDR)
        for (name, record) in records where podCIDRs[name] != record { try stage(record.key, record) }
        for name in podCIDRs.keys where records[name] == nil { stageDelete(.podCIDR(name)) }
        podCIDRs = records
    }

    /// The nodes whose pods are replaced elsewhere: those not ready for `lossConfirmation`, unless most
    /// nodes are not ready (55% or more, Kubernetes' unhealthy-zone threshold). Then this side is more
    /// likely the one cut off, or the store stalled, and moving every pod would only do harm; with one
    /// node, its pods never move.
    func lostNodes(now: Double) -> Set<String> {
        guard Double(notReadySince.count) < 0.55 * Double(nodes.count) else { return [] }
        return Set(notReadySince.filter { now - $0.value >= lossConfirmation }.keys)
    }

    /// Takes the lost nodes anew; the pods of a node lost or found again are looked at.
    func refreshLost(now: Double) {
        let current = lostNodes(now: now)
        guard current != lost else { return }
        let changed = current.symmetricDifference(lost)
        lost = current
        endpointsDirty = true
        for p in pods.values where changed.contains(p.nodeName ?? "") { dirty.insert(p.owner) }
        for (key, object) in desired { if case .daemonSet = object { dirty.insert(key) } }
    }

    /// The pod's node is lost (it fenced itself) or was removed (`berth node rm`): its pods are not running.
    func nodeGone(_ name: String?, lost: Set<String>) -> Bool {
        guard let name else { return false }
        return nodes[name] == nil || lost.contains(name)
    }

    /// A node's record or lease changed (registered, resized, lost, its lease run out): placements and
    /// DaemonSets are looked at again. A node whose lease is gone stays, not ready.
    func nodeChanged(_ name: String) {
        podCIDRsDirty = true
        var node = registered[name]
        if !leased.contains(name) { node?.ready = false }
        if cordons[name] != nil { node?.unschedulable = true }
        if node?.ready == false { notReadySince[name] = notReadySince[name] ?? clock() } else { notReadySince[name] = nil }
        guard nodes[name] != node else { return }
        nodes[name] = node
        schedulerCache = nil
        endpointsDirty = true
        for p in pods.values where p.nodeName == name { dirty.insert(p.owner) }
        for (key, object) in desired { if case .daemonSet = object { dirty.insert(key) } }
    }

    /// A node's report on one of its pods: phase, readiness, IP, restarts, CPU. A terminating pod that
    /// stopped is removed at the next flush.
    func statusReported(_ s: PodStatusRecord) {
        guard var p = pods[s.podKey], p.nodeName == s.node else { return }
        if p.terminating && (s.stopped || s.phase == .succeeded || s.phase == .failed) {
            remove(p)
            return
        }
        podDetails[p.key] = s.detail
        let before = p
        p.phase = s.phase
        p.ready = s.ready
        p.readySince = s.readySince
        p.podIP = s.podIP
        p.restarts = s.restarts
        p.cpuUsageMilli = s.cpuUsageMilli ?? p.cpuUsageMilli
        guard p != before else { return }
        if p.ready != before.ready || p.podIP != before.podIP { endpointsDirty = true }
        pods[p.key] = p
        dirty.insert(p.owner)
    }

    /// The pod and its node's status go from the store; its owner looks again.
    func remove(_ record: PodRecord) {
        stageDelete(record.key)
        stageDelete(.podStatus(namespace: record.namespace, name: record.name))
        forgetOnNode(record)
        pods[record.key] = nil
        podDetails[record.key] = nil
        podsByOwner[record.owner]?.remove(record.key)
        dirty.insert(record.owner)
    }

    // MARK: reading

    public func pods(of owner: ObjectKey) -> [PodRecord] {
        (podsByOwner[owner] ?? []).compactMap { pods[$0] }.sorted { $0.name < $1.name }
    }

    /// Every pod, by namespace and name.
    /// The nodes taken for lost at the last pass: their pods were replaced elsewhere.
    public var lostNodeNames: Set<String> { lost }

    /// Every registered node, not ready when its lease is gone.
    public var nodeRecords: [NodeRecord] { nodes.values.sorted { $0.name < $1.name } }
    public var allPods: [PodRecord] { pods.values.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) } }
    /// The pods' statuses as their nodes reported them, by "namespace/name".
    public var reportedStatuses: [String: PodStatus] {
        var out: [String: PodStatus] = [:]
        for (key, status) in podDetails {
            if let p = pods[key] { out[p.namespace + "/" + p.name] = status }
        }
        return out
    }
    /// The revision number of a Deployment's template hash, nil once it left the history.
    public func revisionNumber(of deployment: ObjectKey, hash: String) -> Int? {
        revisions[.revision(namespace: deployment.namespace, deployment: deployment.name, hash: hash)]?.number
    }
    public func status(of deployment: ObjectKey) -> DeploymentStatus? { statuses[deployment] }
    public func jobStatus(of job: ObjectKey) -> JobStatus? { jobStatuses[job] }
    public func daemonSetStatus(of ds: ObjectKey) -> DaemonSetStatus? { daemonSetStatuses[ds] }
    public func autoscalerStatus(of hpa: ObjectKey) -> AutoscalerStatus? { autoscalers[hpa] }
    public var cronJobRunKeys: [ObjectKey] { cronJobRuns.keys.sorted() }
    public func endpoints(of service: ObjectKey) -> EndpointsRecord? { endpoints[service] }
    /// A Service's address and node ports, or why it has none.
    public func service(_ key: ObjectKey) -> ServiceRecord? {
        guard case .service(let r)? = configs[.config(kind: "Service", namespace: key.namespace, name: key.name)] else { return nil }
        return r
    }
    public var inventoryKeys: Set<ObjectKey> { inventory }

    /// How long each pod bound since the last call waited from its creation, in seconds.
    public func takeSchedulingLatencies() -> [Double] {
        defer { schedulingLatencies = [] }
        return schedulingLatencies
    }
}
