import BerthCluster
import BerthModel
import BerthStore
import Foundation

/// The control plane's reads and writes. It reads everything once (and again after a conflict it cannot
/// resolve alone), keeps the revision it last saw of every key, and writes a pass's changes as one
/// transaction in which every write is a compare-and-swap on that revision.
extension ControlPlane {
    /// Lists the store into the caches, replacing what they held.
    func load() async throws {
        pods = [:]
        podDetails = [:]
        podsByOwner = [:]
        waitingPods = []
        revisions = [:]
        nodes = [:]
        registered = [:]
        leased = []
        cronStates = [:]
        statuses = [:]
        jobStatuses = [:]
        daemonSetStatuses = [:]
        autoscalers = [:]
        endpoints = [:]
        configs = [:]
        inventory = []
        known = [:]
        schedulerCache = nil
        for v in try await list(ClusterKey.pods).values {
            let p = try decoder.decode(PodRecord.self, from: Data(v.value))
            pods[p.key] = p
            podsByOwner[p.owner, default: []].insert(p.key)
            if p.waitingReason != nil { waitingPods.insert(p.key) }
        }
        for v in try await list(ClusterKey.revisions).values {
            let r = try decoder.decode(RevisionRecord.self, from: Data(v.value))
            revisions[r.key] = r
        }
        let (nodeValues, nodesAt) = try await list(ClusterKey.nodes)
        for v in nodeValues {
            let n = try decoder.decode(NodeRecord.self, from: Data(v.value))
            registered[n.name] = n
        }
        followed[ClusterKey.nodes] = nodesAt
        let (leaseValues, leasesAt) = try await list(ClusterKey.nodeLeases)
        for v in leaseValues {
            if let name = ClusterKey(stored: v.key)?.components(under: ClusterKey.nodeLeases)?.first { leased.insert(name) }
        }
        followed[ClusterKey.nodeLeases] = leasesAt
        let (cordonValues, cordonsAt) = try await list(ClusterKey.cordons)
        cordons = [:]
        for v in cordonValues {
            if let c = try? decoder.decode(CordonRecord.self, from: Data(v.value)) { cordons[c.node] = c }
        }
        followed[ClusterKey.cordons] = cordonsAt
        for name in registered.keys { nodeChanged(name) }
        podCIDRs = [:]
        for v in try await list(ClusterKey.podCIDRs).values {
            let r = try decoder.decode(PodCIDRRecord.self, from: Data(v.value))
            podCIDRs[r.node] = r
        }
        podCIDRsDirty = true
        let (statusValues, statusesAt) = try await list(ClusterKey.podStatuses)
        for v in statusValues {
            let s = try decoder.decode(PodStatusRecord.self, from: Data(v.value))
            if pods[s.podKey] == nil {
                // Its pod was removed while the control plane was away.
                stageDelete(s.key)
            } else {
                statusReported(s)
            }
        }
        followed[ClusterKey.podStatuses] = statusesAt
        for v in try await list(ClusterKey.cronJobStates).values {
            guard let parts = ClusterKey(stored: v.key)?.components(under: ClusterKey.cronJobStates), parts.count == 2 else { continue }
            cronStates[ObjectKey(kind: .cronJob, namespace: parts[0], name: parts[1])] = try decoder.decode(CronState.self, from: Data(v.value))
        }
        for v in try await list(ClusterKey.allEndpoints).values {
            let e = try decoder.decode(EndpointsRecord.self, from: Data(v.value))
            endpoints[ObjectKey(kind: .service, namespace: e.namespace, name: e.name)] = e
        }
        for v in try await list(ClusterKey.workloadStatuses).values {
            guard let parts = ClusterKey(stored: v.key)?.components(under: ClusterKey.workloadStatuses), parts.count == 3 else { continue }
            let ns = parts[0], name = parts[2]
            let bytes = Data(v.value)
            switch parts[1] {
            case "Deployment": statuses[ObjectKey(kind: .deployment, namespace: ns, name: name)] = try decoder.decode(DeploymentStatus.self, from: bytes)
            case "Job": jobStatuses[ObjectKey(kind: .job, namespace: ns, name: name)] = try decoder.decode(JobStatus.self, from: bytes)
            case "DaemonSet": daemonSetStatuses[ObjectKey(kind: .daemonSet, namespace: ns, name: name)] = try decoder.decode(DaemonSetStatus.self, from: bytes)
            case "HorizontalPodAutoscaler":
                autoscalers[ObjectKey(kind: .horizontalPodAutoscaler, namespace: ns, name: name)] = try decoder.decode(AutoscalerStatus.self, from: bytes)
            default: break
            }
        }
        for v in try await list(ClusterKey.configs).values {
            let r = try decoder.decode(ConfigRecord.self, from: Data(v.value))
            configs[r.key] = r
        }
        if let v = try await store.get(ClusterKey.inventory.path) {
            known[ClusterKey.inventory] = v.modRevision
            inventory = Set(try decoder.decode([InventoryEntry].self, from: Data(v.value)).map(\.key))
        }
        endpointsDirty = true
        dirty.formUnion(desired.keys)
    }

    private func list(_ prefix: ClusterKey.Prefix) async throws -> (values: [StoredValue], revision: Int64) {
        let (values, revision) = try await store.list(prefix: prefix.path)
        for v in values { if let key = ClusterKey(stored: v.key) { known[key] = v.modRevision } }
        return (values, revision)
    }

    /// Writes `value` at the next flush, over the revision of the key last seen.
    func stage<T: Encodable>(_ key: ClusterKey, _ value: T) throws {
        if staged[key] == nil { stagedOrder.append(key) }
        staged[key] = .put(Array(try coder.encode(value)), lease: nil)
    }

    /// Deletes the key at the next flush; a key created in this pass is just not written.
    func stageDelete(_ key: ClusterKey) {
        guard known[key] != nil else {
            if staged.removeValue(forKey: key) != nil { stagedOrder.removeAll { $0 == key } }
            return
        }
        if staged[key] == nil { stagedOrder.append(key) }
        staged[key] = .delete
    }

    /// Sends the staged writes as one transaction. A pod that someone else changed first (its node) is
    /// taken as they wrote it and its owner synced again; any other conflict means another writer touched
    /// what only the control plane writes, so the caches are read again from the store.
    func flush() async throws {
        guard !stagedOrder.isEmpty else { return }
        let writes = stagedOrder.map { StoreWrite(key: $0.path, expected: known[$0], operation: staged[$0]!) }
        stagedOrder = []
        staged = [:]
        let results = try await store.txn(writes, fence: fence)
        var reload = false
        for (w, r) in zip(writes, results) {
            guard let key = ClusterKey(stored: w.key) else { continue }
            switch r {
            case .swapped(let revision):
                if case .delete = w.operation { known[key] = nil } else { known[key] = revision }
            case .conflict(let current):
                known[key] = current?.modRevision
                // The node wrote its status again meanwhile: the watch brings it, and the next pass decides.
                if key.components(under: ClusterKey.podStatuses) != nil { continue }
                guard key.components(under: ClusterKey.pods) != nil else {
                    reload = true
                    continue
                }
                schedulerCache = nil
                if let old = pods[key] { dirty.insert(old.owner) }
                if let current {
                    let p = try decoder.decode(PodRecord.self, from: Data(current.value))
                    pods[key] = p
                    dirty.insert(p.owner)
                } else if let old = pods.removeValue(forKey: key) {
                    podDetails[key] = nil
                    podsByOwner[old.owner]?.remove(key)
                    waitingPods.remove(key)
                }
                endpointsDirty = true
            }
        }
        if reload { try await load() }
    }
}
