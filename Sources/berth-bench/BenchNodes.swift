import ArgumentParser
import BerthCluster
import BerthLinux
import BerthConcurrency
import BerthModel
import BerthNode
import BerthStore
import BerthTestSupport
import Foundation
import Synchronization

extension BenchCommand {
    /// Simulated nodes against a real `berth server` on a real etcd: each node joins with the token over
    /// the node API, keeps its lease alive, follows what is bound to it with the agent's own feed and
    /// reports its pods Running through the agent's own reporter; only containers are left out. Then a
    /// commit asks for the pods, and the server places them.
    struct NodesBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nodes",
            abstract: "Benchmark a server with simulated nodes: N nodes join, P pods placed and Running; server and etcd CPU, database size.")

        @Option(help: "Simulated nodes.")
        var nodes = 1_000

        @Option(help: "Pods to place (Deployments of --replicas each).")
        var pods = 30_000

        @Option(help: "Replicas per Deployment.")
        var replicas = 100

        @Flag(help: "A Service for each Deployment: every node follows its endpoints.")
        var services = false

        @Option(help: "Joins under way at once.")
        var concurrency = 50

        @Option(help: "Seconds the idle cluster is measured.")
        var idle = 30

        @Option(help: "etcd members.")
        var members = 1

        @Option(help: "Seconds to wait for each phase.")
        var timeout = 1_200.0

        func run() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-nodes-\(getpid())").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; etcd \(members) member(s) on loopback; \(nodes) nodes, \(pods) pods\(services ? " with Services" : "")")
            let etcd = try await TestEtcd.start(dir: dir + "/etcd", members: members)
            defer { etcd.stop() }
            let ws = GitWorkspace(root: dir)
            let (bare, work) = try ws.makeRepository("app")
            try ws.commit(["README": "simulated nodes\n"], in: work, message: "empty")

            let api = TestServers.freePort(), nodeAPI = TestServers.freePort()
            let server = Process()
            server.executableURL = URL(fileURLWithPath: BenchCommand.binaryDirectory + "/berth")
            server.arguments = ["server", "--repo", bare, "--state-dir", dir + "/server", "--interval", "1s", "--listen", "127.0.0.1:\(api)",
                                "--agent-listen", "127.0.0.1:\(nodeAPI)", "--store", etcd.url, "--cluster-cidr", "10.128.0.0/9", "--log-level", "warning"]
            FileManager.default.createFile(atPath: dir + "/server.log", contents: nil)
            let log = FileHandle(forWritingAtPath: dir + "/server.log")
            server.standardOutput = log
            server.standardError = log
            try server.run()
            defer {
                server.terminate()
                server.waitUntilExit()
            }
            let tokenFile = dir + "/server/server/node-token"
            try await wait("the join token", timeout: 60) { FileManager.default.fileExists(atPath: tokenFile) }
            guard let token = JoinToken(parsing: try String(contentsOfFile: tokenFile, encoding: .utf8)) else { throw ValidationError("no join token in \(tokenFile)") }
            let url = "https://127.0.0.1:\(nodeAPI)"
            let processes = ["server": [server.processIdentifier], "etcd": etcd.pids, "simulated nodes": [getpid()]]

            // 1. Join.
            var cpu = CPUTimes(processes)
            var start = ContinuousClock.now
            var joined: [SimulatedNode] = []
            var latencies: [Double] = []
            try await withThrowingTaskGroup(of: (SimulatedNode, Double).self) { group in
                var next = 0
                func add() {
                    let name = String(format: "sim-%04d", next)
                    next += 1
                    group.addTask {
                        let began = ContinuousClock.now
                        let node = try await SimulatedNode.join(servers: [url], token: token, name: name)
                        return (node, (ContinuousClock.now - began).seconds)
                    }
                }
                while next < min(concurrency, nodes) { add() }
                while let (node, took) = try await group.next() {
                    joined.append(node)
                    latencies.append(took)
                    if next < nodes { add() }
                }
            }
            defer { for n in joined { n.stop() } }
            try await wait("\(nodes) nodes Ready", timeout: timeout) { try readyNodes(api: api) == nodes }
            var took = (ContinuousClock.now - start).seconds
            say(String(format: "join: %d nodes Ready in %.1f s (%.0f nodes/s; kwok makes 20/s); each join p50 %.2f s, p95 %.2f s",
                         nodes, took, Double(nodes) / took, percentile(latencies, 0.5), percentile(latencies, 0.95)))
            say("  CPU: " + cpu.report(over: took))

            // 2. Place the pods.
            cpu = CPUTimes(processes)
            var files: [String: String] = [:]
            for d in 0..<(pods + replicas - 1) / replicas {
                let text = BenchCommand.pair(name: String(format: "app-%04d", d), replicas: min(replicas, pods - d * replicas))
                files[String(format: "apps/app-%04d.yaml", d)] = services ? text : String(text.components(separatedBy: "\n---\n")[0])
            }
            start = ContinuousClock.now
            try ws.commit(files, in: work, message: "\(pods) pods")
            var boundAt: Double?
            try await wait("\(pods) pods Running", timeout: timeout) {
                let counts = joined.map(\.counts)
                if boundAt == nil && counts.reduce(0, { $0 + $1.bound }) >= pods { boundAt = (ContinuousClock.now - start).seconds }
                return counts.reduce(0) { $0 + $1.running } >= pods
            }
            took = (ContinuousClock.now - start).seconds
            let perNode = joined.map(\.counts.running)
            say(String(format: "pods: %d bound in %.1f s, all Running in %.1f s (%.0f pods/s; kwok 20/s); per node %d–%d",
                         pods, boundAt ?? took, took, Double(pods) / took, perNode.min() ?? 0, perNode.max() ?? 0))
            say("  CPU: " + cpu.report(over: took))

            // 3. Idle: heartbeats only.
            cpu = CPUTimes(processes)
            try await Task.sleep(for: .seconds(idle))
            say("idle \(idle) s, \(nodes) nodes heartbeating: " + cpu.report(over: Double(idle)))
            let store = try EtcdStore(options: try EtcdOptions(url: etcd.url))
            let size = try await store.databaseSize()
            await store.close()
            say(String(format: "memory: server %.0f MiB RSS, etcd %.0f MiB; etcd database %.1f MB allocated, %.1f MB in use",
                         rssMiB(server.processIdentifier), etcd.pids.map(rssMiB).reduce(0, +), Double(size.size) / 1e6, Double(size.inUse) / 1e6))
        }

        func readyNodes(api: Int) throws -> Int {
            let out = try Subprocess.run(["/usr/bin/curl", "-sf", "-m", "30", "http://127.0.0.1:\(api)/api/v1/nodes"], timeout: 40)
            let items = (try JSONSerialization.jsonObject(with: Data(out.output.utf8)) as? [String: Any])?["items"] as? [[String: Any]] ?? []
            return items.filter { n in
                let conditions = (n["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
                return conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
            }.count
        }

        func wait(_ what: String, timeout: Double, _ done: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(timeout)
            while ContinuousClock.now < deadline {
                if (try? await done()) == true { return }
                try await Task.sleep(for: .milliseconds(500))
            }
            throw ValidationError("\(what): not within \(Int(timeout)) s")
        }

        func percentile(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
    }
}

/// CPU time used by groups of processes from now on.
struct CPUTimes {
    let groups: [String: [pid_t]]
    let started: [String: Double]

    init(_ groups: [String: [pid_t]]) {
        self.groups = groups
        started = groups.mapValues { $0.map(Self.seconds).reduce(0, +) }
    }

    static func seconds(_ pid: pid_t) -> Double {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 12 else { return 0 }
        return (Double(fields[11]) ?? 0) / Double(sysconf(Int32(_SC_CLK_TCK))) + (Double(fields[12]) ?? 0) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func report(over seconds: Double) -> String {
        groups.keys.sorted().map { name in
            let used = groups[name]!.map(Self.seconds).reduce(0, +) - started[name]!
            return String(format: "%@ %.1f s (%.1f%% of a core)", name, used, 100 * used / seconds)
        }.joined(separator: ", ")
    }
}

/// A line to standard output at once (print is buffered when it goes to a file): a log shows how far a
/// long run got.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func rssMiB(_ pid: pid_t) -> Double {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}

/// A node without containers: joins, heartbeats on a lease, follows its bound pods with `NodeFeed` and
/// reports them Running (an address each from its pod CIDR) with `NodeReporter`, as an agent would.
final class SimulatedNode: Sendable {
    let name: String
    let store: NodeAPIStore
    let feed: NodeFeed
    let reporter: NodeReporter
    let wake: WakeSignal
    private let state = Mutex((bound: 0, running: 0, task: Task<Void, Never>?.none))

    var counts: (bound: Int, running: Int) { state.withLock { ($0.bound, $0.running) } }

    init(name: String, store: NodeAPIStore) {
        self.name = name
        self.store = store
        let wake = WakeSignal()
        self.wake = wake
        feed = NodeFeed(store: store, nodeName: name) { Task { await wake.signal() } }
        reporter = NodeReporter(store: store) { Date().timeIntervalSince1970 }
    }

    /// Joins as an agent does, trying again after a failure (a busy server answers late) for up to a minute.
    static func join(servers: [String], token: JoinToken, name: String) async throws -> SimulatedNode {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            var store: NodeAPIStore?
            do {
                let joined = try await NodeAPIStore.join(servers: servers, caHash: token.caHash, secret: token.secret, node: name)
                store = try NodeAPIStore(servers: servers, caPEM: joined.caPEM, node: name, credential: joined.credential)
                let node = SimulatedNode(name: name, store: store!)
                try await node.start()
                return node
            } catch {
                await store?.close()
                guard ContinuousClock.now < deadline else { throw ValidationError("node \(name) cannot join: \(error)") }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func start() async throws {
        try await reporter.heartbeat(node: name, ttl: 10)
        let allocatable = NodeRecord.Allocatable(cpuMilli: 32_000, memory: 128 << 30, pods: 110)
        try await reporter.register(NodeRecord(name: name, labels: ["kubernetes.io/hostname": name], allocatable: allocatable))
        await feed.start()
        let node = self
        let task = Task { await node.loop() }
        state.withLock { $0.task = task }
    }

    func stop() {
        state.withLock { $0.task }?.cancel()
        let (feed, store) = (feed, store)
        Task {
            await feed.stop()
            await store.close()
        }
    }

    private func loop() async {
        var lastBeat = ContinuousClock.now
        var fed = -1
        var addresses: [String: Int] = [:]
        while !Task.isCancelled {
            if ContinuousClock.now - lastBeat >= .milliseconds(2500) {
                do {
                    try await reporter.heartbeat(node: name, ttl: 10)
                    lastBeat = .now
                } catch {
                    lastBeat = .now - .seconds(2)
                }
            }
            let version = await feed.version
            if version != fed {
                fed = version
                let bound = await feed.boundPods()
                let cidr = await feed.podCIDR()?.cidr.flatMap(CIDR.init)
                let keys = Set(bound.map { $0.namespace + "/" + $0.name })
                addresses = addresses.filter { keys.contains($0.key) }
                var reports: [PodStatusRecord] = []
                for r in bound {
                    let key = r.namespace + "/" + r.name
                    if r.terminating {
                        reports.append(PodStatusRecord(namespace: r.namespace, name: r.name, node: name, phase: .succeeded, ready: false, stopped: true))
                        continue
                    }
                    if addresses[key] == nil { addresses[key] = (2...).first { i in !addresses.values.contains(i) } }
                    let ip = cidr.map { IPv4($0.network.value + UInt32(addresses[key] ?? 0)).description }
                    reports.append(PodStatusRecord(namespace: r.namespace, name: r.name, node: name, phase: .running, ready: true, podIP: ip))
                }
                do {
                    try await reporter.report(reports)
                    await reporter.retain(Set(bound.map { ClusterKey.podStatus(namespace: $0.namespace, name: $0.name) }))
                    let running = reports.filter { $0.phase == .running }.count
                    state.withLock { $0.bound = bound.count; $0.running = running }
                } catch {
                    fed = -1
                }
            }
            await wake.wait(upTo: .milliseconds(fed == -1 ? 500 : 2500))
        }
    }
}
