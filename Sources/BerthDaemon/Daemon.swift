import BerthCluster
import BerthConcurrency
import BerthController
import BerthGit
import BerthModel
import BerthNode
import BerthSource
import BerthStatus
import BerthStore
import Foundation
import Logging
import Prometheus

/// berth's one process: the source's snapshots go to the control plane, which writes its decisions to
/// the store; this machine's node (`NodeService`, a loop of its own) runs what the store binds to it and
/// writes back its pods' status, which the control plane watches; the observed state goes to the status
/// branch. The control loop is woken by syncs and the store's news, and runs fast while things move.
public actor Daemon {
    public nonisolated let config: DaemonConfig
    let source: GitSource
    public nonisolated let store: any Store
    let plane: ControlPlane
    /// This machine's node (`berth run`); nil on a server.
    public let node: NodeService?
    let writer: StatusWriter
    let logger: Logger
    let metrics = DaemonMetrics()
    let syncRequests: AsyncStream<Void>
    let syncContinuation: AsyncStream<Void>.Continuation
    let loopWake = WakeSignal()

    /// This instance runs the source, the controllers and the status writer (always, on the embedded store;
    /// on etcd, while it holds the leader key).
    var leading = false
    var leaderSince: ContinuousClock.Instant?

    // What came from Git.
    var desired = DesiredState()
    var appliedCommit: CommitInfo?
    var lastCommit: CommitInfo?
    var lastResult: ClusterStatus.SyncResult?
    var findings: [Finding] = []
    var sourceError: String?
    var applyError: String?
    var syncCount = 0
    var appliedGauge: Prometheus.Gauge?

    // The control plane's pods, and every pod's status as its node reported it through the store (the API
    // and the status branch show these).
    var records: [PodRecord] = []
    var reportedStatuses: [String: PodStatus] = [:]
    var lastChange = 0.0
    var events = EventLog()
    /// The nodes taken for lost, with the pods they had then and where those went (their status files).
    var nodeLosses: [String: NodeLoss] = [:]

    struct NodeLoss {
        var at: Double
        var pods: [PodRecord]
        /// "pod → node" for each of `pods`; looked for again only while one is still pending.
        var moved: [String] = []
        var settled: Bool { !moved.isEmpty && !moved.contains { $0.hasSuffix(" → pending") } }
    }

    // Toward the status branch.
    var lastStatus: ClusterStatus?
    /// Source commits applied whose rollouts have not ended yet, with the note written so far.
    var rollouts: [ObjectID: RolloutWatch] = [:]
    var writerCounted = (commits: 0, retries: 0)

    struct RolloutWatch {
        var deployments: [ObjectKey]
        /// Each Deployment's template hash at this commit: a later commit that changes it supersedes this one.
        var hashes: [ObjectKey: String]
        var text: String
    }

    public init(config: DaemonConfig, logger: Logger) async throws {
        self.config = config
        self.logger = logger
        source = try GitSource(config: config.source)
        switch config.store {
        case .embedded:
            let storeDir = config.source.stateDirectory + "/store"
            try FileManager.default.createDirectory(atPath: storeDir, withIntermediateDirectories: true)
            store = try EmbeddedStore(directory: storeDir)
        case .etcd(let options):
            store = try EtcdStore(options: options)
        }
        plane = try await ControlPlane(store: store, clock: { Date().timeIntervalSince1970 }, clusterCIDR: config.clusterCIDR)
        if let nodeConfig = config.node {
            var options = NodeService.Options()
            options.leaseSeconds = config.nodeLeaseSeconds
            options.requestedPodCIDR = config.requestedPodCIDR
            options.idlePeriod = config.idlePeriod
            options.stopWorkloadsOnExit = config.stopWorkloadsOnExit
            node = try NodeService(config: nodeConfig, store: store, options: options,
                                   log: .init(info: { logger.info("\($0)") }, warning: { logger.warning("\($0)") }))
        } else {
            node = nil
        }
        writer = try StatusWriter(repositoryPath: config.source.mirrorPath, access: config.source.access, config: config.status)
        (syncRequests, syncContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    static var now: Double { Date().timeIntervalSince1970 }
    var nodeName: String { config.name }

    /// Asks for a sync now (webhook, post-receive hook, `POST /api/v1/sync`).
    public nonisolated func requestSync() { syncContinuation.yield() }

    // MARK: services

    /// Polls the repository until cancelled; each outcome is applied at once.
    func runSource() async {
        let first = await source.lastGood == nil
        if first { logger.info("fetching \(config.source.access.redactedURL) (\(config.source.ref)) into \(config.source.mirrorPath)") }
        await source.run(interval: config.interval, trigger: syncRequests) { outcome in
            await self.handle(outcome)
        }
    }

    /// The control loop until cancelled: every 50 ms while something moves, else every `idlePeriod`.
    func runLoop() async {
        while !Task.isCancelled {
            let start = ContinuousClock.now
            await step()
            metrics.reconcileDuration.record(ContinuousClock.now - start)
            for seconds in await plane.takeSchedulingLatencies() { metrics.schedulingLatency.record(.milliseconds(Int64(seconds * 1000))) }
            let busy = Daemon.now - lastChange < 3 || rolloutInProgress
            await loopWake.wait(upTo: busy ? .milliseconds(50) : .seconds(config.idlePeriod))
        }
    }

    /// Flushes the status and stops following the store.
    func shutDown() async {
        _ = try? await writer.flush()
        await plane.stopFollowing()
    }

    /// Follows the store; what the nodes report wakes the loop.
    func startFollowing() async {
        let wake = loopWake
        await plane.startFollowing(changed: { Task { await wake.signal() } })
        await node?.observeStatuses { [weak self] old, new, now in await self?.recordPodEvents(old: old, new: new, now: now) }
    }

    /// Returns once this machine's node is ready for pods (its pod network set up), or after 10 s.
    func waitForTheNode() async {
        guard let node else { return }
        let deadline = ContinuousClock.now + .seconds(10)
        while await node.nodeRecord?.ready != true, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// On etcd, campaigns for the leader key and leads while it holds it; on the embedded store, leads at once.
    func runLeadership() async {
        guard case .etcd = config.store else {
            await takeOver(fence: nil)
            return
        }
        let identity = "\(nodeName) (\(ProcessInfo.processInfo.hostName), pid \(getpid()))"
        let election = LeaderElection(store: store, key: ClusterKey.leader.path, identity: identity, ttl: config.leaderLeaseSeconds)
        while !Task.isCancelled {
            do {
                let fence = try await election.campaign()
                await takeOver(fence: fence)
                try await election.keepLeading()
                standBy("the leader lease could not be renewed")
            } catch is CancellationError {
                break
            } catch {
                if leading { standBy("\(error)") }
                logger.warning("leader election: \(error); trying again in 1 s")
                try? await Task.sleep(for: .seconds(1))
            }
        }
        await election.resign()
    }

    func takeOver(fence: StoreFence?) async {
        do {
            try await plane.lead(under: fence)
        } catch {
            logger.error("control plane: cannot read the store to take over: \(error)")
            return
        }
        leading = true
        leaderSince = .now
        metrics.leader.set(Int64(1))
        if fence != nil {
            logger.info("leading: running the source, the controllers and the status writer")
            requestSync()
        }
        await loopWake.signal()
    }

    func standBy(_ why: String) {
        guard leading else { return }
        leading = false
        appliedCommit = nil
        lastResult = nil
        rollouts = [:]
        metrics.leader.set(Int64(0))
        logger.warning("no longer leading (\(why)): standing by")
    }

    /// On etcd, compacts the history berth wrote once a minute, keeping `EtcdOptions.keepHistory` of it.
    func runCompaction() async {
        guard let etcd = store as? EtcdStore else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(60))
            do {
                if let revision = try await etcd.compactOldHistory() { logger.debug("etcd: compacted history up to revision \(revision)") }
            } catch {
                logger.warning("etcd: compaction failed (retried in a minute): \(error)")
            }
        }
    }

    // MARK: sync

    func handle(_ outcome: GitSource.Outcome) async {
        syncCount += 1
        let now = Daemon.now
        let fetch = await source.lastRemoteDuration
        switch outcome {
        case _ where !leading:
            // A standby fetches (so that it is current when it takes over) but applies nothing.
            break
        case .unchanged(let snapshot) where appliedCommit == nil && lastResult == nil:
            // Just took over: the commit in force is applied here too.
            sourceError = nil
            await apply(snapshot, now: now)
        case .unchanged(let snapshot):
            metrics.syncs[.unchanged]?.increment()
            metrics.fetchDuration.record(fetch)
            if let e = sourceError {
                logger.info("sync: \(config.source.access.redactedURL) is reachable again (was: \(e))")
                events.add("Normal", "SourceRecovered", "the repository answers again", kind: "GitRepository", namespace: "", name: "source", at: now)
            }
            sourceError = nil
            logger.debug("sync: \(snapshot.commit.id.short) unchanged (\(fetch.milliseconds) ms)")
        case .updated(let snapshot):
            metrics.fetchDuration.record(fetch)
            sourceError = nil
            await apply(snapshot, now: now)
        case .failed(let error, _):
            metrics.fetchErrors.increment()
            metrics.syncs[.failed]?.increment()
            if sourceError != error.message {
                events.add("Warning", "FetchFailed", error.message, kind: "GitRepository", namespace: "", name: "source", at: now)
            }
            sourceError = error.message
            let failures = await source.consecutiveFailures
            logger.warning("sync failed (\(failures) in a row; workloads keep running): \(error.message)")
        }
        await loopWake.signal()
    }

    func apply(_ snapshot: Snapshot, now: Double) async {
        let commit = snapshot.commit
        lastCommit = commit
        findings = snapshot.result.findings
        let short = commit.id.short
        if snapshot.historyRewritten {
            events.add("Warning", "HistoryRewritten", "the tracked ref was force-pushed to \(short)", kind: "GitRepository", namespace: "", name: "source", at: now)
        }
        guard snapshot.result.isValid else {
            lastResult = .rejected
            metrics.syncs[.rejected]?.increment()
            let errors = snapshot.result.findings.filter { $0.severity == .error }
            let lines = errors.map(\.formatted)
            logger.error("sync \(short): rejected, \(errors.count) errors; nothing running changes\n  \(lines.prefix(20).joined(separator: "\n  "))")
            events.add("Warning", "Rejected", "commit \(short) rejected: \(lines.first ?? "")\(errors.count > 1 ? " (and \(errors.count - 1) more)" : "")",
                       kind: "GitRepository", namespace: "", name: "source", at: now)
            await writer.note(on: commit.id, StatusMessage.note(result: .rejected, findings: snapshot.result.findings, objects: 0))
            return
        }
        do {
            let pruned = try await plane.apply(snapshot.result.desired, allowEmpty: config.allowEmpty)
            let before = desired
            desired = snapshot.result.desired
            appliedCommit = commit
            lastResult = .applied
            applyError = nil
            metrics.syncs[.applied]?.increment()
            appliedGauge = metrics.appliedCommit(commit.id.hex, replacing: appliedGauge)
            let changed = desired.objects.filter { before.objects[$0.key]?.object != $0.value.object }.keys.sorted()
            let took = await source.lastSnapshotDuration
            logger.info("sync \(short): applied \(desired.count) objects (\(changed.count) changed, \(pruned.count) pruned), read in \(took.milliseconds) ms: \(commit.summary)")
            for key in changed {
                events.add("Normal", "Applied", "from commit \(short)", kind: key.kind.rawValue, namespace: key.namespace, name: key.name, at: now)
            }
            for key in pruned {
                events.add("Normal", "Pruned", "removed from Git in commit \(short)", kind: key.kind.rawValue, namespace: key.namespace, name: key.name, at: now)
            }
            let text = StatusMessage.note(result: .applied, findings: snapshot.result.findings, objects: desired.count)
                + "changed: \(changed.count), pruned: \(pruned.count)\n"
            let deployments = changed.filter { $0.kind == .deployment }
            if deployments.isEmpty {
                await writer.note(on: commit.id, text)
            } else {
                // The note gets the rollouts' outcome once they end.
                var hashes: [ObjectKey: String] = [:]
                for key in deployments { hashes[key] = await plane.status(of: key)?.revisionHash }
                rollouts[commit.id] = RolloutWatch(deployments: deployments, hashes: hashes, text: text)
                await writer.note(on: commit.id, text + "rollout: in progress\n")
            }
            lastChange = now
        } catch {
            lastResult = .rejected
            applyError = "\(error)"
            metrics.syncs[.rejected]?.increment()
            logger.error("sync \(short): not applied: \(error)")
            events.add("Warning", "NotApplied", "commit \(short): \(error)", kind: "GitRepository", namespace: "", name: "source", at: now)
            await writer.note(on: commit.id, "berth: rejected\n\(error)\n")
        }
    }

    // MARK: the loop

    func step() async {
        let now = Daemon.now
        do {
            guard leading else { throw StandingBy() }
            try await plane.reconcile()
        } catch is StandingBy {
        } catch let e as StoreError where e.code == .fenced {
            logger.warning("control plane: \(e.message); standing by")
        } catch {
            logger.error("control plane: \(error)")
        }
        let newRecords = await plane.allPods
        reportedStatuses = await plane.reportedStatuses
        noteLostNodes(await plane.lostNodeNames, now: now)
        if newRecords != records {
            recordSchedulingEvents(old: records, new: newRecords, now: now)
            records = newRecords
            lastChange = now
        }
        if leading { await publishStatus(now) }
        updatePodMetrics()
    }

    /// A node newly lost: its pods as they were before the control plane replaced them, an event and a log
    /// line; a node no longer lost is forgotten.
    func noteLostNodes(_ lost: Set<String>, now: Double) {
        for name in lost where nodeLosses[name] == nil {
            let evicted = records.filter { $0.nodeName == name }
            nodeLosses[name] = NodeLoss(at: now, pods: evicted)
            logger.warning("node \(name) lost (its lease ended): \(evicted.count) pods replaced on other nodes")
            recordNodeLost(name, pods: evicted.count, now: now)
        }
        for name in nodeLosses.keys where !lost.contains(name) { nodeLosses[name] = nil }
        // Where the pods went, while some have no replacement placed yet: not again on every status pass.
        for (name, loss) in nodeLosses where !loss.settled {
            nodeLosses[name]?.moved = replacements(of: loss.pods, from: name, since: loss.at)
        }
    }

    var rolloutInProgress: Bool {
        !rollouts.isEmpty || records.contains { $0.terminating || ($0.phase == .pending && $0.nodeName != nil) }
    }

    func updatePodMetrics() {
        var counts: [PodPhase: Int] = [.pending: 0, .running: 0, .succeeded: 0, .failed: 0]
        for r in records { counts[r.phase, default: 0] += 1 }
        for (phase, n) in counts { metrics.phases[phase]?.set(Int64(n)) }
        metrics.restarts.set(Int64(records.reduce(0) { $0 + $1.restarts }))
    }

}

/// The step's controller half is skipped while another instance leads.
struct StandingBy: Error {}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
