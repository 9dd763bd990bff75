import BerthCluster
@testable import BerthController
import BerthModel
import BerthNode
import BerthStore
import Foundation
import Testing

@Suite struct NodeLeaseTests {
    /// A node's lease through the real pieces: the node's reporter takes and renews it, the embedded
    /// store ends it when it is not renewed, and the control plane learns of it from its watch. The only
    /// node gone: its pod stays (this side may be the one cut off) but nothing new is placed there; a
    /// renewal afterwards takes a new lease and the node is ready again.
    @Test func aNodeThatStopsRenewingIsNotReadyUntilItRenews() async throws {
        try await withControlPlane { cp, store, clock, _ in
            let reporter = NodeReporter(store: store, clock: { clock.now() })
            await cp.startFollowing()
            try await reporter.heartbeat(node: "n1", ttl: 5)
            await cp.caughtUp(to: try await store.revision)
            try await reporter.register(node("n1"))
            await cp.caughtUp(to: try await store.revision)
            try await cp.apply(state([.deployment(deployment(replicas: 1))]))
            #expect(await cp.pods(of: webKey).first?.nodeName == "n1")

            // Renewed in time, it lasts; past its time to live, the store deletes the lease record.
            clock.advance(4)
            try await reporter.heartbeat(node: "n1", ttl: 5)
            clock.advance(4)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await store.get(ClusterKey.nodeLease("n1").path) != nil)
            clock.advance(2)
            let deadline = ContinuousClock.now + .seconds(5)
            while try await store.get(ClusterKey.nodeLease("n1").path) != nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            await cp.caughtUp(to: try await store.revision)
            try await cp.apply(state([.deployment(deployment(replicas: 2))]))
            let pods = await cp.pods(of: webKey)
            #expect(pods.filter { !$0.terminating }.count == 2)
            #expect(pods.contains { $0.nodeName == "n1" && !$0.terminating })
            #expect(pods.contains { $0.nodeName == nil && $0.unschedulableReason == "0/1 nodes are available: 1 node(s) were not ready." })

            try await reporter.heartbeat(node: "n1", ttl: 5)
            await cp.caughtUp(to: try await store.revision)
            clock.advance(1.1)
            try await cp.reconcile()
            #expect(await cp.pods(of: webKey).allSatisfy { $0.nodeName == "n1" })
        }
    }
}
