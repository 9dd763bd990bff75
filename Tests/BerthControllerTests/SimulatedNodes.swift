import BerthCluster
@testable import BerthController
import BerthModel
import BerthStore
import Foundation

/// What node agents do, for the control plane's tests: they write their node's record and their pods'
/// status records to the store; the control plane takes them in through its watch.
extension ControlPlane {
    /// The node's record and its lease record (on no store lease: it lasts until `nodeLeaseRunsOut`).
    func registerNode(_ node: NodeRecord) async throws {
        startFollowing()
        await caughtUp(to: try await write(ClusterKey.nodeLease(node.name), NodeLeaseRecord(node: node.name, ttlSeconds: 10)))
        await caughtUp(to: try await write(node.key, node))
    }

    /// The node stopped renewing its lease: the store deletes the lease record.
    func nodeLeaseRunsOut(_ name: String) async throws {
        startFollowing()
        guard try await store.delete(ClusterKey.nodeLease(name).path, expected: nil) != nil else {
            throw ControlPlaneError(message: "no lease record for node \(name)")
        }
        await caughtUp(to: try await store.revision)
    }

    func reportPod(namespace: String, name: String, phase: PodPhase, ready: Bool, podIP: String?, restarts: Int = 0,
                   cpuUsageMilli: Int64? = nil) async throws {
        startFollowing()
        guard let node = pods[.pod(namespace: namespace, name: name)]?.nodeName else { return }
        let key = ClusterKey.podStatus(namespace: namespace, name: name)
        let previous = try await store.get(key.path).flatMap { try? JSONDecoder().decode(PodStatusRecord.self, from: Data($0.value)) }
        let readySince = ready ? (previous?.ready == true ? previous?.readySince : clock()) : nil
        let s = PodStatusRecord(namespace: namespace, name: name, node: node, phase: phase, ready: ready, readySince: readySince,
                                podIP: podIP, restarts: restarts, cpuUsageMilli: cpuUsageMilli)
        await caughtUp(to: try await write(key, s))
    }

    /// The node stopped a pod it was asked to stop.
    func podStopped(namespace: String, name: String) async throws {
        startFollowing()
        guard let node = pods[.pod(namespace: namespace, name: name)]?.nodeName else { return }
        let s = PodStatusRecord(namespace: namespace, name: name, node: node, phase: .succeeded, ready: false, stopped: true)
        await caughtUp(to: try await write(s.key, s))
    }

    /// The node's compare-and-swap over what the key holds.
    private func write<T: Encodable>(_ key: ClusterKey, _ value: T) async throws -> Int64 {
        let current = try await store.get(key.path)
        guard case .swapped(let revision) = try await store.compareAndSwap(key.path, expected: current?.modRevision,
                                                                            value: Array(try JSONEncoder().encode(value))) else {
            throw ControlPlaneError(message: "\(key) changed while a test node wrote it")
        }
        return revision
    }
}
