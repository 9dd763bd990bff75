import BerthCluster
import BerthModel
import BerthScheduler

public struct DaemonSetPlan: Sendable {
    public var creates: [PodRecord] = []
    public var deletes: [String] = []
    public var status = DaemonSetStatus()
}

/// One pod per node that the template's node selector, required affinity and tolerations allow; a node
/// that stops fitting loses its pod. Rolling update replaces old pods at most `maxUnavailable` at a time;
/// OnDelete replaces a pod only after someone deleted it.
public enum DaemonSetSync {
    public static func sync(_ ds: DaemonSet, nodes: [NodeRecord], pods: [PodRecord], now: Double, nameSuffix: () -> String) -> DaemonSetPlan {
        var plan = DaemonSetPlan()
        let ns = ds.metadata.effectiveNamespace, name = ds.metadata.name
        let hash = TemplateHash.of(ds.template)
        let spec = ds.template.spec
        let eligible = nodes.filter { n in
            spec.nodeSelector.allSatisfy { n.labels[$0.key] == $0.value }
                && (spec.nodeAffinity.isEmpty || spec.nodeAffinity.contains { Scheduler.matches($0, n.labels) })
                && n.taints.allSatisfy { t in t.effect == .preferNoSchedule || t.tolerated(by: spec.tolerations) }
        }.map { (n: NodeRecord) in n.name }
        let eligibleSet = Set(eligible)
        var byNode: [String: [PodRecord]] = [:]
        for p in pods where !p.terminating {
            guard let node = p.nodeName, eligibleSet.contains(node), p.phase != .failed else {
                plan.deletes.append(p.name)
                continue
            }
            byNode[node, default: []].append(p)
        }
        let available = { (p: PodRecord) in p.isAvailable(now: now, minReadySeconds: ds.minReadySeconds) }
        var unavailable = 0
        var oldAvailable: [PodRecord] = []
        for node in eligible {
            var here = byNode[node] ?? []
            // More than one pod on a node: keep the newest revision's, then the oldest pod.
            if here.count > 1 {
                here.sort { ($0.revisionHash == hash ? 0 : 1, $0.createdAt) < ($1.revisionHash == hash ? 0 : 1, $1.createdAt) }
                plan.deletes += here.dropFirst().map(\.name)
                here = [here[0]]
            }
            if let p = here.first {
                plan.status.currentNumberScheduled += 1
                if p.revisionHash == hash { plan.status.updatedNumberScheduled += 1 }
                if p.ready { plan.status.numberReady += 1 }
                if available(p) {
                    plan.status.numberAvailable += 1
                    if p.revisionHash != hash { oldAvailable.append(p) }
                } else {
                    unavailable += 1
                    // An old pod that is not serving anyway is replaced at once.
                    if p.revisionHash != hash && ds.updateStrategy == .rollingUpdate { plan.deletes.append(p.name) }
                }
            } else if !pods.contains(where: { $0.nodeName == node && $0.terminating }) {
                var labels = ds.template.labels
                labels["pod-template-hash"] = hash
                var p = PodRecord(namespace: ns, name: "\(name)-\(nameSuffix())", ownerKind: "DaemonSet", ownerName: name,
                                  revisionHash: hash, labels: labels, spec: spec, createdAt: now)
                p.nodeName = node
                plan.creates.append(p)
                unavailable += 1
            }
        }
        plan.status.desiredNumberScheduled = eligible.count
        if ds.updateStrategy == .rollingUpdate {
            let budget = (ds.maxUnavailable.scaled(total: eligible.count, roundUp: true) ?? 1) - unavailable
            if budget > 0 { plan.deletes += oldAvailable.sorted { $0.createdAt < $1.createdAt }.prefix(budget).map(\.name) }
        }
        return plan
    }
}
