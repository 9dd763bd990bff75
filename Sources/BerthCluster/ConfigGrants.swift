import Synchronization

/// Which node may read which ConfigMap, Secret or claim, as Kubernetes' node authorizer decides it: those
/// a pod bound to the node refers to, for as long as it is bound there. Services are every node's. Kept
/// from the pods as the store has them (listed, then each change), before a node hears of the change; it
/// also knows where each pod is bound, at which revision, so that a list need not decode every pod.
public final class ConfigGrants: Sendable {
    private struct State {
        var pods: [String: (node: String, configs: Set<String>, revision: Int64)] = [:]
        var counts: [String: [String: Int]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Starts over from these pods (a fresh list), each with its revision.
    public func reset(_ pods: [(PodRecord, Int64)]) {
        state.withLock { s in
            s = State()
            for (p, revision) in pods { Self.set(&s, p.namespace + "/" + p.name, p, revision) }
        }
    }

    /// The pod `key` ("namespace/name") is now `record` (nil: removed), as of `revision`; returns the node
    /// it was bound to until then.
    @discardableResult
    public func update(pod key: String, to record: PodRecord?, revision: Int64) -> String? {
        state.withLock { Self.set(&$0, key, record, revision) }
    }

    /// The node the pod `key` is bound to, when this index has it at `revision`; nil otherwise (unbound,
    /// or another revision: the caller decodes the pod).
    public func node(ofPod key: String, at revision: Int64) -> String? {
        state.withLock { s in s.pods[key].flatMap { $0.revision == revision ? $0.node : nil } }
    }

    public func allows(_ node: String, _ config: String) -> Bool {
        NodeAccess.isShared(config: config) || state.withLock { ($0.counts[node]?[config] ?? 0) > 0 }
    }

    @discardableResult
    private static func set(_ s: inout State, _ key: String, _ record: PodRecord?, _ revision: Int64) -> String? {
        let old = s.pods.removeValue(forKey: key)
        if let old {
            for c in old.configs {
                let n = (s.counts[old.node]?[c] ?? 1) - 1
                s.counts[old.node]?[c] = n > 0 ? n : nil
            }
            if s.counts[old.node]?.isEmpty == true { s.counts[old.node] = nil }
        }
        guard let record, let node = record.nodeName else { return old?.node }
        let configs = NodeAccess.configs(of: record)
        s.pods[key] = (node, configs, revision)
        for c in configs { s.counts[node, default: [:]][c, default: 0] += 1 }
        return old?.node
    }
}
