import BerthCluster
import ArgumentParser
import BerthModel
import BerthScheduler
import BerthStore
import BerthTestSupport
import Foundation

extension BenchCommand {
    /// Places pending pods on simulated nodes through the embedded store, as the scheduling loop does:
    /// pods are read from the store, placed, and bound with compare-and-swap in batches.
    struct SchedulerBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scheduler",
            abstract: "Benchmark the scheduler: M pending pods of three templates on N simulated nodes.")

        @Option(help: "Simulated nodes (32 cpu, 128 GiB, 110 pods; a third labelled disktype=ssd).")
        var nodes = 5_000

        @Option(help: "Pending pods: small, medium, and large ones that need disktype=ssd.")
        var pods = 50_000

        @Option(help: "Bindings written to the store per batch (one journal write and fsync each).")
        var batch = 256

        @Option(help: "Bind through etcd, with this many members started on loopback ports (0: the embedded store).")
        var etcdMembers = 0

        @Option(help: "Write the nodes and placements as JSON lines to this file.")
        var placements: String?

        @Option(name: .shortAndLong, help: "Output format: text or json.")
        var output: OutputFormat = .text

        struct Template {
            let name: String
            let cpu: Int64
            let memory: Int64
            let selector: [String: String]
        }

        static let templates = [
            Template(name: "small", cpu: 100, memory: 128 << 20, selector: [:]),
            Template(name: "medium", cpu: 500, memory: 512 << 20, selector: [:]),
            Template(name: "large", cpu: 2000, memory: 4 << 30, selector: ["disktype": "ssd"]),
        ]

        static func encode(template: String, node: String) -> [UInt8] { Array("template=\(template);node=\(node)".utf8) }

        func run() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-sched-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store: any Store
            var etcd: TestEtcd?
            if etcdMembers > 0 {
                let cluster = try await TestEtcd.start(dir: dir + "/etcd", members: etcdMembers)
                etcd = cluster
                store = try EtcdStore(options: try EtcdOptions(url: cluster.url))
            } else {
                var options = EmbeddedStore.Options()
                options.snapshotAfterBytes = 256 << 20
                store = try EmbeddedStore(directory: dir, options: options)
            }
            defer { etcd?.stop() }

            // Set-up, not timed: nodes and pending pods in the store.
            var nodeSpecs: [NodeSpec] = []
            for i in 0..<nodes {
                let labels = i % 3 == 0 ? ["disktype": "ssd"] : [:]
                nodeSpecs.append(NodeSpec(name: "node-\(i)", labels: labels,
                                          allocatable: ResourceAmounts(cpuMilli: 32_000, memory: 128 << 30, ephemeralStorage: 1 << 40, pods: 110)))
            }
            var writes: [StoreWrite] = []
            for i in 0..<pods {
                writes.append(.put(ClusterKey.pod(namespace: "default", name: "pod-\(i)").path,
                                   Self.encode(template: Self.templates[i % 3].name, node: ""), expected: nil))
                if writes.count == 4096 || i == pods - 1 {
                    _ = try await store.txn(writes, fence: nil)
                    writes.removeAll(keepingCapacity: true)
                }
            }
            let baseline = Self.residentBytes()

            let clock = ContinuousClock()
            let start = clock.now
            let scheduler = Scheduler(nodes: nodeSpecs)
            let (pending, _) = try await store.list(prefix: ClusterKey.pods.path)
            var latencies: [Duration] = []
            latencies.reserveCapacity(pending.count)
            var placed: [(pod: String, template: Template, node: String)] = []
            placed.reserveCapacity(pods)
            var unschedulable = 0
            var batchStarts: [ContinuousClock.Instant] = []
            var bindings: [StoreWrite] = []
            var bound: [(Int, String)] = []
            for (n, value) in pending.enumerated() {
                let text = String(decoding: value.value, as: UTF8.self)
                let name = String(text.split(separator: ";")[0].dropFirst("template=".count))
                let t = Self.templates.first { $0.name == name }!
                let podStart = clock.now
                let request = PodRequest(namespace: "default", name: value.key, owner: "Deployment/\(t.name)",
                                         requests: ResourceAmounts(cpuMilli: t.cpu, memory: t.memory),
                                         nodeSelector: t.selector, equivalenceKey: t.name)
                switch scheduler.schedule(request) {
                case .bind(let node):
                    bindings.append(.put(value.key, Self.encode(template: t.name, node: node), expected: value.modRevision))
                    batchStarts.append(podStart)
                    bound.append((n, node))
                    placed.append((value.key, t, node))
                case .unschedulable:
                    unschedulable += 1
                    latencies.append(clock.now - podStart)
                }
                if bindings.count == batch || n == pending.count - 1 {
                    let results = try await store.txn(bindings, fence: nil)
                    let done = clock.now
                    for (i, r) in results.enumerated() {
                        guard case .swapped = r else { throw ValidationError("binding \(bindings[i].key) conflicted") }
                        latencies.append(done - batchStarts[i])
                    }
                    bindings.removeAll(keepingCapacity: true)
                    batchStarts.removeAll(keepingCapacity: true)
                    bound.removeAll(keepingCapacity: true)
                }
            }
            let elapsed = clock.now - start
            let perPod = max(0, Self.residentBytes() - baseline) / max(1, pods)
            latencies.sort()
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let p50 = latencies.isEmpty ? 0 : latencies[latencies.count / 2].milliseconds
            let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, latencies.count * 99 / 100)].milliseconds
            let rate = Double(pods) / seconds

            if let placements {
                var lines = ""
                for n in nodeSpecs {
                    let labels = n.labels.sorted { $0.key < $1.key }.map { "\(quotedString($0.key)): \(quotedString($0.value))" }
                    lines += "{\"node\": \(quotedString(n.name)), \"cpuMilli\": \(n.allocatable.cpuMilli), \"memoryBytes\": \(n.allocatable.memory), \"pods\": \(n.allocatable.pods), \"labels\": {\(labels.joined(separator: ", "))}}\n"
                }
                for p in placed {
                    let sel = p.template.selector.map { "\(quotedString($0.key)): \(quotedString($0.value))" }
                    lines += "{\"pod\": \(quotedString(p.pod)), \"cpuMilli\": \(p.template.cpu), \"memoryBytes\": \(p.template.memory), \"nodeSelector\": {\(sel.joined(separator: ", "))}, \"node\": \(quotedString(p.node))}\n"
                }
                try lines.write(toFile: placements, atomically: true, encoding: .utf8)
            }
            switch output {
            case .text:
                print("\(nodes) nodes, \(pods) pods through \(etcdMembers > 0 ? "etcd (\(etcdMembers) members)" : "the embedded store"): \(placed.count) scheduled, \(unschedulable) unschedulable in \(String(format: "%.2f", seconds)) s")
                print(String(format: "%.0f pods/s; per-pod latency to a durable binding p50 %.2f ms, p99 %.2f ms (batches of %d)", rate, p50, p99, batch))
                print("memory beyond the store: \(perPod) bytes per pod")
            case .json:
                print(String(format: "{\"nodes\": %d, \"pods\": %d, \"scheduled\": %d, \"unschedulable\": %d, \"podsPerSecond\": %.0f, \"p50Ms\": %.3f, \"p99Ms\": %.3f, \"bytesPerPod\": %d}",
                             nodes, pods, placed.count, unschedulable, rate, p50, p99, perPod))
            }
        }

        static func residentBytes() -> Int {
            guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
            let fields = text.split(separator: " ")
            return fields.count > 1 ? (Int(fields[1]) ?? 0) * 4096 : 0
        }
    }
}
