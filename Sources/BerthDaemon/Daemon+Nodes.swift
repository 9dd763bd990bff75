import BerthCluster
import BerthStore
import Foundation

/// What an operator does to nodes through the API: cordon, drain, uncordon, remove. Each is a write to
/// the store that the leading control plane takes in through its watch, whichever server answered.
extension Daemon {
    public enum NodeAction: String, Sendable {
        case cordon, drain, uncordon
    }

    public func act(_ action: NodeAction, on node: String) async throws(QueryError) {
        try await requireNode(node)
        do {
            switch action {
            case .uncordon:
                try await store.delete(ClusterKey.cordon(node).path, expected: nil)
            case .cordon, .drain:
                let record = CordonRecord(node: node, drain: action == .drain)
                try await store.put(record.key.path, Array(try JSONEncoder().encode(record)), lease: nil)
            }
        } catch {
            throw QueryError(.failed, "cannot \(action.rawValue) \(node): \(error)")
        }
        logger.info("node \(node): \(action.rawValue)")
        await loopWake.signal()
    }

    /// Removes a node: its record, lease, cordon and credential (it must join again to come back); its
    /// pods are replaced on other nodes.
    public func removeNode(_ node: String) async throws(QueryError) {
        try await requireNode(node)
        do {
            for key in [ClusterKey.nodeCredential(node), .cordon(node), .nodeLease(node), .node(node)] {
                try await store.delete(key.path, expected: nil)
            }
        } catch {
            throw QueryError(.failed, "cannot remove \(node): \(error)")
        }
        logger.info("node \(node) removed")
    }

    private func requireNode(_ node: String) async throws(QueryError) {
        guard await plane.nodeRecords.contains(where: { $0.name == node }) else { throw QueryError(.notFound, "node \"\(node)\" not found") }
    }
}
