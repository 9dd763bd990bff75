import BerthCluster
import BerthStore
import Foundation

/// The node's side of the store: its node record and its pods' status records, each written only when
/// it changed, as compare-and-swaps on the revision this node last wrote, and its lease, kept alive. The
/// control plane reads them through its watch; nothing else carries a node's news.
public actor NodeReporter {
    let store: any Store
    let clock: @Sendable () -> Double
    private let coder = JSONEncoder()
    private var known: [ClusterKey: Int64] = [:]
    private var written: [ClusterKey: PodStatusRecord] = [:]
    private var node: NodeRecord?
    private var lease: LeaseID?

    public init(store: any Store, clock: @escaping @Sendable () -> Double) {
        self.store = store
        self.clock = clock
        coder.outputFormatting = [.sortedKeys]
    }

    /// Writes the node's record if it changed; true when it did.
    @discardableResult
    public func register(_ record: NodeRecord) async throws -> Bool {
        guard record != node else { return false }
        _ = try await write([(record.key, try coder.encode(record))])
        node = record
        return true
    }

    /// Writes the status of each pod whose report changed, in one transaction, filling in when it became
    /// ready. Returns the revision written at, nil when nothing changed.
    @discardableResult
    public func report(_ statuses: [PodStatusRecord]) async throws -> Int64? {
        var changed: [PodStatusRecord] = []
        for var s in statuses {
            let previous = written[s.key]
            s.readySince = s.ready ? (previous?.ready == true ? previous?.readySince : clock()) : nil
            if s != previous { changed.append(s) }
        }
        guard !changed.isEmpty else { return nil }
        let revision = try await write(try changed.map { ($0.key, try coder.encode($0)) })
        for s in changed { written[s.key] = s }
        return revision
    }

    /// Renews the node's lease; when there is none yet, or it ran out (the node stalled longer than its
    /// time to live), takes a new one and puts the node's lease record on it.
    public func heartbeat(node: String, ttl: Double) async throws {
        if let lease {
            do {
                try await store.keepAlive(lease)
                return
            } catch let e as StoreError where e.code == .unknownLease {
                self.lease = nil
            }
        }
        let granted = try await store.grantLease(ttl: ttl)
        do {
            _ = try await store.put(ClusterKey.nodeLease(node).path, Array(try coder.encode(NodeLeaseRecord(node: node, ttlSeconds: ttl))), lease: granted)
        } catch {
            try? await store.revokeLease(granted)
            throw error
        }
        lease = granted
    }

    /// Ends the node's lease now (the node leaves on purpose): the control plane sees it not ready at
    /// once rather than when the lease would run out.
    public func releaseLease() async {
        guard let lease else { return }
        self.lease = nil
        try? await store.revokeLease(lease)
    }

    /// Forgets the pods not in `keys` (the control plane removed them).
    public func retain(_ keys: Set<ClusterKey>) {
        written = written.filter { keys.contains($0.key) }
        known = known.filter { keys.contains($0.key) || $0.key == node?.key }
    }

    /// Compare-and-swaps on the revisions this node wrote. A conflict means the key changed under it: the
    /// node owns it, so it writes again over what is there, unless the control plane removed it (the pod
    /// is gone: nothing to report any more).
    private func write(_ records: [(ClusterKey, Data)]) async throws -> Int64? {
        var pending = records
        var revision: Int64?
        for _ in 0..<3 where !pending.isEmpty {
            let writes = pending.map { StoreWrite.put($0.0.path, Array($0.1), expected: known[$0.0]) }
            let results = try await store.txn(writes, fence: nil)
            var retry: [(ClusterKey, Data)] = []
            for ((key, data), result) in zip(pending, results) {
                switch result {
                case .swapped(let r):
                    known[key] = r
                    revision = r
                case .conflict(let current?):
                    known[key] = current.modRevision
                    retry.append((key, data))
                case .conflict(nil):
                    // Removed by the control plane while this node had it; a node record is written again.
                    known[key] = nil
                    if key.components(under: ClusterKey.nodes) != nil { retry.append((key, data)) }
                }
            }
            pending = retry
        }
        return revision
    }
}
