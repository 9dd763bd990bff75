import BerthCluster
import ArgumentParser
import BerthController
import BerthModel
import BerthNode
import BerthStore
import Foundation

extension BenchCommand {
    /// Times how long a commit that changes one of many Deployments takes to reconcile.
    struct ControllerBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "controller",
            abstract: "Benchmark the control plane: reconcile a commit that changes one of many Deployments.")

        @Option(help: "Deployments (3 replicas each).")
        var deployments = 1_000

        @Option(help: "Simulated nodes.")
        var nodes = 100

        @Option(help: "Commits to time (the median is reported).")
        var commits = 21

        func run() async throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-cp-\(getpid())").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try EmbeddedStore(directory: dir)
            let start = ContinuousClock.now
            let clock: @Sendable () -> Double = {
                let d = ContinuousClock.now - start
                return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            }
            let cp = try await ControlPlane(store: store, clock: clock)
            await cp.startFollowing()
            // The nodes' agents, through the store as the real ones.
            // Leases first, then the records: each kind arrives on a watch of its own, and `caughtUp` waits for one.
            let nodeReporters = (0..<nodes).map { _ in NodeReporter(store: store, clock: clock) }
            for (i, r) in nodeReporters.enumerated() { try await r.heartbeat(node: "node-\(i)", ttl: 3600) }
            await cp.caughtUp(to: await store.revision)
            for (i, r) in nodeReporters.enumerated() {
                try await r.register(NodeRecord(name: "node-\(i)", allocatable: .init(cpuMilli: 64_000, memory: 256 << 30, pods: 250)))
            }
            await cp.caughtUp(to: await store.revision)
            // The pods' status, for every node at once.
            let reporter = NodeReporter(store: store, clock: clock)
            func deployment(_ i: Int, image: String) -> KubeObject {
                var d = Deployment()
                d.metadata.name = "app-\(i)"
                d.replicas = 3
                d.selector = LabelSelector(matchLabels: ["app": "app-\(i)"])
                d.template.labels = ["app": "app-\(i)"]
                var c = Container()
                c.name = "app"
                c.image = image
                c.resources.requests = ["cpu": Quantity(milli: 100), "memory": Quantity(milli: Int64(128 << 20) * 1000)]
                d.template.spec.containers = [c]
                return .deployment(d)
            }
            var state = DesiredState()
            for i in 0..<deployments {
                let o = deployment(i, image: "v0")
                state.objects[o.key] = SourcedObject(object: o, origin: SourceLocation(path: "apps/app-\(i).yaml", line: 1, column: 1))
            }
            try await cp.apply(state)
            // The node agents report every pod running and ready; the rollouts complete.
            func runAll() async throws {
                var reports: [PodStatusRecord] = []
                for i in 0..<deployments {
                    let key = ObjectKey(kind: .deployment, namespace: "default", name: "app-\(i)")
                    for p in await cp.pods(of: key) where !p.terminating && !p.ready && p.nodeName != nil {
                        reports.append(PodStatusRecord(namespace: p.namespace, name: p.name, node: p.nodeName!, phase: .running, ready: true,
                                                       podIP: "10.244.1.1"))
                    }
                }
                if let revision = try await reporter.report(reports) { await cp.caughtUp(to: revision) }
                try await cp.reconcile()
            }
            try await runAll()
            let setupDone = ContinuousClock.now
            var times: [Duration] = []
            for round in 1...commits {
                let i = (round * 37) % deployments
                let o = deployment(i, image: "v\(round)")
                state.objects[o.key] = SourcedObject(object: o, origin: SourceLocation(path: "apps/app-\(i).yaml", line: 1, column: 1))
                let t0 = ContinuousClock.now
                try await cp.apply(state)
                times.append(ContinuousClock.now - t0)
            }
            times.sort()
            print("\(deployments) deployments × 3 pods on \(nodes) nodes (first apply \(String(format: "%.2f", (setupDone - start).milliseconds / 1000)) s)")
            print(String(format: "a commit changing one deployment: median %.2f ms, best %.2f ms, worst %.2f ms over %d commits",
                         times[times.count / 2].milliseconds, times[0].milliseconds, times[times.count - 1].milliseconds, commits))
        }
    }
}
