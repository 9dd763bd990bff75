import BerthCluster
import BerthStore
import Foundation

/// How the nodes' news reaches the control plane: watches on the node records, the nodes' leases and the
/// pod status records, from the revisions `load` listed them at. A compacted history means list again.
extension ControlPlane {
    static let followedPrefixes = [ClusterKey.nodes, ClusterKey.nodeLeases, ClusterKey.podStatuses, ClusterKey.cordons]

    /// Follows the nodes' records in a task of its own until `stopFollowing`; `changed` is called after
    /// each event taken in (to wake whoever runs `reconcile`).
    public func startFollowing(changed: @escaping @Sendable () -> Void = {}) {
        guard following == nil else { return }
        onChange = changed
        following = Task { await self.follow() }
    }

    public func stopFollowing() {
        following?.cancel()
        following = nil
    }

    func follow() async {
        while !Task.isCancelled {
            do {
                try await store.follow(Self.followedPrefixes.map { ($0.path, followed[$0] ?? 0) }) { event, path in
                    guard let prefix = Self.followedPrefixes.first(where: { $0.path == path }) else { return }
                    await self.ingest(event, under: prefix)
                }
            } catch let e as StoreError where e.code == .compacted {
                // Too far behind: read everything again and follow from there.
                do { try await load() } catch { try? await Task.sleep(for: .seconds(1)) }
            } catch {
                // The store is unreachable (etcd lost quorum): the watches start again from where they were.
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func ingest(_ event: WatchEvent, under prefix: ClusterKey.Prefix) {
        followed[prefix] = max(followed[prefix] ?? 0, event.revision)
        defer {
            noteSeen(event.revision)
            onChange()
        }
        guard let key = ClusterKey(stored: event.key) else { return }
        switch event {
        case .put(let value, _):
            known[key] = value.modRevision
            // A record that does not decode is not a node's: it is left alone.
            if prefix == ClusterKey.nodes, let n = try? decoder.decode(NodeRecord.self, from: Data(value.value)) {
                registered[n.name] = n
                nodeChanged(n.name)
            } else if prefix == ClusterKey.nodeLeases, let name = key.components(under: ClusterKey.nodeLeases)?.first {
                leased.insert(name)
                nodeChanged(name)
            } else if prefix == ClusterKey.podStatuses, let s = try? decoder.decode(PodStatusRecord.self, from: Data(value.value)) {
                statusReported(s)
            } else if prefix == ClusterKey.cordons, let c = try? decoder.decode(CordonRecord.self, from: Data(value.value)) {
                cordons[c.node] = c
                nodeChanged(c.node)
            }
        case .delete:
            known[key] = nil
            if prefix == ClusterKey.nodes, let name = key.components(under: ClusterKey.nodes)?.first {
                registered[name] = nil
                nodeChanged(name)
            } else if prefix == ClusterKey.nodeLeases, let name = key.components(under: ClusterKey.nodeLeases)?.first {
                // The node stopped renewing its lease (or left): not ready from now on.
                leased.remove(name)
                nodeChanged(name)
            } else if prefix == ClusterKey.cordons, let name = key.components(under: ClusterKey.cordons)?.first {
                cordons[name] = nil
                nodeChanged(name)
            }
        }
    }

    private func noteSeen(_ revision: Int64) {
        seen = max(seen, revision)
        let ready = seenWaiters.filter { $0.revision <= seen }
        seenWaiters.removeAll { $0.revision <= seen }
        for w in ready { w.continuation.resume() }
    }

    /// Returns once the control plane took in an event at `revision` or later. Each prefix has a watch of
    /// its own, so an earlier write under another prefix may still be on its way: a writer that needs
    /// several writes taken in waits after each.
    public func caughtUp(to revision: Int64) async {
        guard seen < revision else { return }
        await withCheckedContinuation { seenWaiters.append((revision, $0)) }
    }
}
