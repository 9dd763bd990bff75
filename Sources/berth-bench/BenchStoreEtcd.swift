import ArgumentParser
import BerthCluster
import BerthModel
import BerthNode
import BerthStore
import BerthTestSupport
import Foundation

extension BenchCommand {
    /// The cluster store on etcd (Debian's etcd-server, members started on loopback ports): how big its
    /// database grows under pod updates when berth compacts, how soon a node hears of a pod bound to it,
    /// and how soon a standby takes over from a leader that stopped renewing its lease.
    struct StoreEtcd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "etcd",
            abstract: "Benchmark berth on etcd: database size under updates, watch-to-node latency, leader failover.")

        @Option(help: "etcd members.")
        var members = 3

        @Option(help: "Pod updates to write.")
        var updates = 100_000

        @Option(help: "Pods the updates go round (each value about 1 KiB, as a pod record).")
        var pods = 1_000

        @Option(help: "Bindings to time from the write to the node's feed.")
        var bindings = 500

        @Option(help: "Leader failovers to time.")
        var failovers = 5

        func run() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-etcd-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; etcd \(members) member(s) on loopback")
            try await databaseSize(dir + "/size", compact: true)
            try await databaseSize(dir + "/size-uncompacted", compact: false)
            try await watchLatency(dir + "/watch")
            try await failover(dir + "/failover")
        }

        /// `updates` writes of 1 KiB pod records, 100 per transaction; with `compact`, berth's compaction
        /// runs every 10,000 updates keeping the last 10,000 revisions' history.
        func databaseSize(_ dir: String, compact: Bool) async throws {
            let etcd = try await TestEtcd.start(dir: dir, members: members)
            defer { etcd.stop() }
            let store = try EtcdStore(options: try EtcdOptions(url: etcd.url))
            let value = Array(repeating: UInt8(ascii: "x"), count: 1000)
            var revisions: [String: Int64] = [:]
            let start = ContinuousClock.now
            var done = 0
            var compactedTo: Int64 = 0
            while done < updates {
                let n = min(100, updates - done)
                let writes = (0..<n).map { i -> StoreWrite in
                    let key = ClusterKey.pod(namespace: "default", name: "pod-\((done + i) % pods)").path
                    return .put(key, value, expected: revisions[key])
                }
                let results = try await store.txn(writes, fence: nil)
                for (w, r) in zip(writes, results) {
                    guard case .swapped(let rev) = r else { throw ValidationError("update of \(w.key) conflicted") }
                    revisions[w.key] = rev
                }
                done += n
                if compact && done % 10_000 == 0 {
                    let now = try await store.revision
                    // History of the last 10,000 updates stays (100 revisions of 100 writes each).
                    let target = now - 100
                    if target > compactedTo {
                        try await store.compact(to: target)
                        compactedTo = target
                    }
                }
            }
            let took = ContinuousClock.now - start
            let size = try await store.databaseSize()
            await store.close()
            print(String(format: "%d updates of %d pods %@: %.1f s (%.0f updates/s); database %.1f MB allocated, %.1f MB in use",
                         updates, pods, compact ? "with compaction" : "without compaction", took.seconds, Double(updates) / took.seconds,
                         Double(size.size) / 1e6, Double(size.inUse) / 1e6))
        }

        /// Pods bound to a node, one every 10 ms: the time from the start of the write to the node's feed
        /// having it (what the agent then acts on).
        func watchLatency(_ dir: String) async throws {
            let etcd = try await TestEtcd.start(dir: dir, members: members)
            defer { etcd.stop() }
            let store = try EtcdStore(options: try EtcdOptions(url: etcd.url))
            let versions = AsyncStream<Void>.makeStream()
            let feed = NodeFeed(store: store, nodeName: "n1", changed: { versions.continuation.yield() })
            await feed.start()
            var changes = versions.stream.makeAsyncIterator()
            _ = await changes.next()
            var latencies: [Duration] = []
            var spec = PodSpec()
            var c = Container()
            c.name = "app"
            c.image = "host"
            spec.containers = [c]
            for i in 0..<bindings {
                var p = PodRecord(namespace: "default", name: "pod-\(i)", ownerKind: "Deployment", ownerName: "app", revisionHash: "h",
                                  labels: ["app": "app"], spec: spec, createdAt: 0)
                p.nodeName = "n1"
                let t0 = ContinuousClock.now
                _ = try await store.txn([.put(p.key.path, Array(try JSONEncoder().encode(p)), expected: nil)], fence: nil)
                while await feed.boundPods().count <= i { _ = await changes.next() }
                latencies.append(ContinuousClock.now - t0)
                try await Task.sleep(for: .milliseconds(10))
            }
            await feed.stop()
            await store.close()
            latencies.sort()
            print(String(format: "a pod bound → the node's feed has it: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d bindings",
                         latencies[latencies.count / 2].milliseconds, latencies[latencies.count * 99 / 100].milliseconds,
                         latencies[latencies.count - 1].milliseconds, bindings))
        }

        /// Two candidates with the daemon's 4 s lease; the leader stops renewing (as a killed process
        /// does) and the time until the standby leads is taken.
        func failover(_ dir: String) async throws {
            let etcd = try await TestEtcd.start(dir: dir, members: members)
            defer { etcd.stop() }
            let store = try EtcdStore(options: try EtcdOptions(url: etcd.url))
            var times: [Duration] = []
            var leader = LeaderElection(store: store, key: ClusterKey.leader.path, identity: "a", ttl: 4)
            _ = try await leader.campaign()
            for round in 0..<failovers {
                let keeping = Task { [leader] in try await leader.keepLeading() }
                let standby = LeaderElection(store: store, key: ClusterKey.leader.path, identity: "b\(round)", ttl: 4)
                let campaign = Task { try await standby.campaign() }
                try await Task.sleep(for: .seconds(2))
                // The leader dies: its renewals stop.
                keeping.cancel()
                let died = ContinuousClock.now
                _ = try await campaign.value
                times.append(ContinuousClock.now - died)
                leader = standby
            }
            await store.close()
            times.sort()
            print(String(format: "leader failover (4 s lease): median %.2f s, worst %.2f s over %d", times[times.count / 2].seconds,
                         times[times.count - 1].seconds, failovers))
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
