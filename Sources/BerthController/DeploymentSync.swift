import BerthCluster
import BerthModel

/// What one sync of a Deployment decides: pods to create and delete, revisions to write and forget, and
/// the status. Pure: it reads the pods and revisions it is given and the clock value.
public struct DeploymentPlan: Sendable {
    public var creates: [PodRecord] = []
    /// Pod names to delete.
    public var deletes: [String] = []
    public var revisionWrites: [RevisionRecord] = []
    public var revisionDeletes: [ClusterKey] = []
    public var status = DeploymentStatus()
}

/// Kubernetes' Deployment semantics: revisions keyed by template hash, rolling update within maxSurge and
/// maxUnavailable (or Recreate), minReadySeconds, progress deadline, paused, revision history, and
/// self-healing (failed pods and pods on lost nodes are replaced).
public enum DeploymentSync {
    public static func sync(_ d: Deployment, pods allPods: [PodRecord], revisions: [RevisionRecord], previous: DeploymentStatus?,
                            nodeReady: (String) -> Bool, draining: (String) -> Bool = { _ in false }, now: Double,
                            nameSuffix: () -> String) -> DeploymentPlan {
        var plan = DeploymentPlan()
        let ns = d.metadata.effectiveNamespace, name = d.metadata.name
        let hash = TemplateHash.of(d.template)
        let maxNumber = revisions.map(\.number).max() ?? 0

        // The revision to run: the template's own, reused (and renumbered) if an earlier one had it.
        var current: RevisionRecord
        if d.paused, let newest = revisions.max(by: { $0.number < $1.number }), newest.hash != hash {
            current = newest
        } else if var existing = revisions.first(where: { $0.hash == hash }) {
            if existing.number != maxNumber {
                existing.number = maxNumber + 1
                plan.revisionWrites.append(existing)
            }
            current = existing
        } else {
            current = RevisionRecord(namespace: ns, deployment: name, hash: hash, number: maxNumber + 1, template: d.template)
            plan.revisionWrites.append(current)
        }

        // Self-healing: failed pods and pods on nodes that are gone or not ready are deleted (and so replaced).
        var pods: [PodRecord] = []
        for p in allPods where !p.terminating {
            if p.phase == .failed || (p.nodeName.map { !nodeReady($0) } ?? false) {
                plan.deletes.append(p.name)
            } else if p.phase != .succeeded {
                pods.append(p)
            }
        }
        // Pods on a draining node are replaced as an old revision's are: new ones elsewhere first, within
        // maxSurge, and the drained ones removed within maxUnavailable.
        let drained = Set(pods.filter { p in p.nodeName.map { draining($0) } ?? false }.map(\.name))
        var newPods = pods.filter { $0.revisionHash == current.hash && !drained.contains($0.name) }
        var oldPods = pods.filter { $0.revisionHash != current.hash || drained.contains($0.name) }
        let terminatingOld = allPods.contains { $0.terminating && $0.revisionHash != current.hash }
        let replicas = d.replicas
        let available = { (p: PodRecord) in p.isAvailable(now: now, minReadySeconds: d.minReadySeconds) }

        func create(_ n: Int) {
            for _ in 0..<max(0, n) {
                var labels = current.template.labels
                labels["pod-template-hash"] = current.hash
                let p = PodRecord(namespace: ns, name: "\(name)-\(current.hash)-\(nameSuffix())", ownerKind: "Deployment",
                                  ownerName: name, revisionHash: current.hash, labels: labels, spec: current.template.spec, createdAt: now)
                plan.creates.append(p)
                newPods.append(p)
            }
        }
        func remove(_ victims: [PodRecord]) {
            let names = Set(victims.map(\.name))
            plan.deletes += victims.map(\.name)
            newPods.removeAll { names.contains($0.name) }
            oldPods.removeAll { names.contains($0.name) }
        }

        var maxUnavailable = 0
        switch d.strategy {
        case .recreate:
            // Every old pod goes first; new ones start once none of the old is left, not even terminating.
            let oldRemain = !oldPods.isEmpty || terminatingOld
                || allPods.contains { !$0.terminating && $0.revisionHash != current.hash && plan.deletes.contains($0.name) }
            if !oldPods.isEmpty { remove(oldPods) }
            if !oldRemain && newPods.count < replicas { create(replicas - newPods.count) }
            if newPods.count > replicas { remove(Array(excessOrder(newPods, now: now).prefix(newPods.count - replicas))) }
        case .rollingUpdate:
            let surge = d.maxSurge.scaled(total: replicas, roundUp: true) ?? 0
            maxUnavailable = d.maxUnavailable.scaled(total: replicas, roundUp: false) ?? 0
            if surge == 0 && maxUnavailable == 0 { maxUnavailable = 1 }
            if newPods.count > replicas {
                remove(Array(excessOrder(newPods, now: now).prefix(newPods.count - replicas)))
            } else if newPods.count < replicas {
                let room = replicas + surge - (newPods.count + oldPods.count)
                create(min(room, replicas - newPods.count))
            }
            if !oldPods.isEmpty {
                let minAvailable = replicas - maxUnavailable
                let newUnavailable = newPods.filter { !available($0) }.count
                var budget = newPods.count + oldPods.count - minAvailable - newUnavailable
                // Unhealthy old pods first: removing them costs no availability.
                let unhealthy = excessOrder(oldPods.filter { !available($0) }, now: now)
                let cleanup = Array(unhealthy.prefix(max(0, budget)))
                remove(cleanup)
                budget -= cleanup.count
                let availableNow = (newPods + oldPods).filter(available).count
                let scaleDown = min(budget, availableNow - minAvailable, oldPods.count)
                if scaleDown > 0 { remove(Array(excessOrder(oldPods, now: now).prefix(scaleDown))) }
            }
        }

        // Old revisions beyond the history limit, and without pods, are forgotten (oldest first).
        let withPods = Set(allPods.map(\.revisionHash))
        let old = revisions.filter { $0.hash != current.hash && !withPods.contains($0.hash) }.sorted { $0.number < $1.number }
        let keep = max(0, d.revisionHistoryLimit)
        plan.revisionDeletes = old.prefix(max(0, old.count - keep)).map(\.key)

        plan.status = status(d, newPods: newPods, oldPods: oldPods, current: current, maxUnavailable: maxUnavailable,
                             previous: previous, changed: !plan.creates.isEmpty || !plan.deletes.isEmpty, now: now)
        return plan
    }

    static func status(_ d: Deployment, newPods: [PodRecord], oldPods: [PodRecord], current: RevisionRecord, maxUnavailable: Int,
                       previous: DeploymentStatus?, changed: Bool, now: Double) -> DeploymentStatus {
        var s = DeploymentStatus()
        let all = newPods + oldPods
        s.replicas = all.count
        s.updatedReplicas = newPods.count
        s.readyReplicas = all.filter(\.ready).count
        s.availableReplicas = all.filter { $0.isAvailable(now: now, minReadySeconds: d.minReadySeconds) }.count
        s.unavailableReplicas = max(0, d.replicas - s.availableReplicas)
        s.revision = current.number
        s.revisionHash = current.hash
        let availableNew = newPods.filter { $0.isAvailable(now: now, minReadySeconds: d.minReadySeconds) }.count
        let complete = newPods.count == d.replicas && availableNew == d.replicas && oldPods.isEmpty
        let moved = changed || previous == nil || previous?.revisionHash != current.hash
            || (previous?.availableReplicas ?? -1) != s.availableReplicas || (previous?.updatedReplicas ?? -1) != s.updatedReplicas
        s.lastProgress = moved ? now : (previous?.lastProgress ?? now)
        let progressing: Condition
        if complete {
            progressing = Condition(type: "Progressing", status: true, reason: "NewReplicaSetAvailable",
                                    message: "revision \(current.number) (\(current.hash)) has successfully progressed")
        } else if d.paused {
            progressing = Condition(type: "Progressing", status: false, reason: "DeploymentPaused", message: "deployment is paused")
        } else if now - s.lastProgress > Double(d.progressDeadlineSeconds) {
            progressing = Condition(type: "Progressing", status: false, reason: "ProgressDeadlineExceeded",
                                    message: "revision \(current.number) (\(current.hash)) has timed out progressing")
        } else {
            progressing = Condition(type: "Progressing", status: true, reason: "ReplicaSetUpdated",
                                    message: "revision \(current.number) (\(current.hash)) is progressing")
        }
        let minimum = d.replicas - maxUnavailable
        let availableCondition = s.availableReplicas >= minimum
            ? Condition(type: "Available", status: true, reason: "MinimumReplicasAvailable", message: "deployment has minimum availability")
            : Condition(type: "Available", status: false, reason: "MinimumReplicasUnavailable", message: "deployment does not have minimum availability")
        s.conditions = [availableCondition, progressing]
        return s
    }

    /// Which pods go first when there are too many, Kubernetes' order: not yet on a node, pending before
    /// running, not ready before ready, ready for less time, more restarts, newer.
    public static func excessOrder(_ pods: [PodRecord], now: Double) -> [PodRecord] {
        pods.sorted { a, b in
            if (a.nodeName == nil) != (b.nodeName == nil) { return a.nodeName == nil }
            if a.phase != b.phase { return rank(a.phase) < rank(b.phase) }
            if a.ready != b.ready { return !a.ready }
            if a.ready, let x = a.readySince, let y = b.readySince, x != y { return x > y }
            if a.restarts != b.restarts { return a.restarts > b.restarts }
            if a.createdAt != b.createdAt { return a.createdAt > b.createdAt }
            return a.name < b.name
        }
    }

    static func rank(_ p: PodRecord.Phase) -> Int {
        switch p {
        case .pending: return 0
        case .running: return 2
        default: return 1
        }
    }
}
