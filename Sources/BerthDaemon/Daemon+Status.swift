import BerthCluster
import BerthController
import BerthModel
import BerthSource
import BerthStatus

extension Daemon {
    /// Renders the observed state; the status writer commits it when it differs from the branch.
    func publishStatus(_ now: Double) async {
        var s = ClusterStatus(source: .init(repository: config.source.access.redactedURL, ref: Daemon.refText(config.source.ref),
                                            path: config.source.path))
        s.appliedCommit = appliedCommit?.id.hex
        s.lastCommit = lastCommit?.id.hex
        s.lastResult = lastResult
        s.findings = findings
        if let e = applyError { s.findings.append(Finding(at: SourceLocation(path: "", line: 0, column: 0), severity: .error, message: e, field: "")) }
        s.sourceError = sourceError
        var deploymentStatuses: [ObjectKey: DeploymentStatus] = [:]
        // Pods by owner and by node, once: looked up per object and per node, thousands of each.
        let owned = Dictionary(grouping: records, by: \.owner)
        var placed: [String: Int] = [:]
        for r in records where !r.terminating { if let n = r.nodeName { placed[n, default: 0] += 1 } }
        for key in desired.objects.keys.sorted() {
            guard let sourced = desired.objects[key] else { continue }
            var fields: [StatusField] = []
            switch key.kind {
            case .deployment:
                if let d = await plane.status(of: key) {
                    deploymentStatuses[key] = d
                    fields = [
                        StatusField("replicas", .int(d.replicas)),
                        StatusField("updatedReplicas", .int(d.updatedReplicas)),
                        StatusField("readyReplicas", .int(d.readyReplicas)),
                        StatusField("availableReplicas", .int(d.availableReplicas)),
                        StatusField("revision", .int(d.revision)),
                        StatusField("revisionHash", .string(d.revisionHash)),
                        StatusField("conditions", Daemon.conditions(d.conditions)),
                    ]
                }
                fields.append(StatusField("pods", podList(owned[key] ?? [])))
            case .job:
                if let j = await plane.jobStatus(of: key) {
                    fields = [StatusField("active", .int(j.active)), StatusField("succeeded", .int(j.succeeded)),
                              StatusField("failed", .int(j.failed)), StatusField("conditions", Daemon.conditions(j.conditions))]
                }
                fields.append(StatusField("pods", podList(owned[key] ?? [])))
            case .daemonSet:
                if let d = await plane.daemonSetStatus(of: key) {
                    fields = [StatusField("desiredNumberScheduled", .int(d.desiredNumberScheduled)),
                              StatusField("numberReady", .int(d.numberReady)),
                              StatusField("updatedNumberScheduled", .int(d.updatedNumberScheduled))]
                }
                fields.append(StatusField("pods", podList(owned[key] ?? [])))
            case .pod:
                fields = [StatusField("pods", podList(owned[key] ?? []))]
            case .service:
                let service = await plane.service(key)
                if let ip = service?.clusterIP { fields.append(StatusField("clusterIP", .string(ip))) }
                if let e = service?.error { fields.append(StatusField("error", .string(e))) }
                let ips = (await plane.endpoints(of: key))?.addresses.map(\.ip).sorted() ?? []
                fields.append(StatusField("endpoints", .list(ips.map { .string($0) })))
            case .horizontalPodAutoscaler:
                // Utilization moves all the time; only the decision is state worth a commit.
                if let h = await plane.autoscalerStatus(of: key) {
                    fields = [StatusField("currentReplicas", .int(h.currentReplicas)), StatusField("desiredReplicas", .int(h.desiredReplicas))]
                }
            default:
                break
            }
            s.objects.append(ClusterStatus.Object(key: key, origin: sourced.origin, status: fields))
        }
        // Every node as the store has it; this machine's node adds the conditions its agent sees.
        let local = await node?.nodeStatus
        let losses = nodeLosses
        s.nodes = await plane.nodeRecords.map { n in
            var fields = [StatusField("ready", .bool(n.ready))]
            if let loss = losses[n.name] {
                fields.append(StatusField("lost", .bool(true)))
                fields.append(StatusField("moved", .list(loss.moved.map { .string($0) })))
            }
            if n.unschedulable { fields.append(StatusField("unschedulable", .bool(true))) }
            if let address = n.address { fields.append(StatusField("address", .string(address))) }
            if let local, local.name == n.name {
                fields.append(StatusField("conditions", .list(local.conditions.map { c in
                    .map([StatusField("type", .string(c.type)), StatusField("status", .bool(c.status))])
                })))
            }
            if !n.labels.isEmpty { fields.append(StatusField("labels", .map(n.labels.sorted { $0.key < $1.key }.map { StatusField($0.key, .string($0.value)) }))) }
            if !n.taints.isEmpty {
                fields.append(StatusField("taints", .list(n.taints.map { .string($0.description) })))
            }
            var allocatable = [StatusField("cpu", .string("\(n.allocatable.cpuMilli)m")), StatusField("memory", .string("\(n.allocatable.memory >> 20)Mi")),
                               StatusField("pods", .int(Int(n.allocatable.pods)))]
            for (name, count) in n.allocatable.extended.sorted(by: { $0.key < $1.key }) { allocatable.append(StatusField(name, .int(Int(count)))) }
            fields.append(StatusField("allocatable", .map(allocatable)))
            fields.append(StatusField("pods", .int(placed[n.name] ?? 0)))
            return ClusterStatus.Node(name: n.name, status: fields)
        }
        await noteRollouts(deploymentStatuses)
        if s != lastStatus {
            lastStatus = s
            await writer.update(s)
        }
        // The writer counts; the metrics take what it added since the last look.
        let counted = (commits: await writer.commitsMade, retries: await writer.pushRetries)
        metrics.statusCommits.increment(by: Int64(counted.commits - writerCounted.commits))
        metrics.pushRetries.increment(by: Int64(counted.retries - writerCounted.retries))
        writerCounted = counted
    }

    /// Writes each applied commit's rollout outcome into its note once every Deployment it changed
    /// finished (or failed, or a later commit took over).
    func noteRollouts(_ statuses: [ObjectKey: DeploymentStatus]) async {
        for (id, watch) in rollouts {
            var lines: [String] = []
            var done = true
            var failed = false
            for key in watch.deployments {
                guard let d = statuses[key] else {
                    lines.append("\(key.name): removed")
                    continue
                }
                let progressing = d.condition("Progressing")
                if appliedCommit?.id != id, d.revisionHash != watch.hashes[key] {
                    lines.append("\(key.name): superseded by a later commit")
                } else if progressing?.reason == "ProgressDeadlineExceeded" {
                    failed = true
                    lines.append("\(key.name): failed: \(progressing?.message ?? "progress deadline exceeded")")
                } else if progressing?.reason == "NewReplicaSetAvailable" && d.updatedReplicas == d.replicas
                            && d.availableReplicas == d.replicas {
                    lines.append("\(key.name): \(d.readyReplicas)/\(d.replicas) ready at revision \(d.revision)")
                } else {
                    done = false
                }
            }
            guard done else { continue }
            rollouts[id] = nil
            let text = watch.text + "rollout: \(failed ? "failed" : "healthy")\n" + lines.map { "  " + $0 + "\n" }.joined()
            await writer.note(on: id, text)
            logger.info("rollout of \(id.short) \(failed ? "failed" : "complete"): \(lines.joined(separator: "; "))")
            let now = Daemon.now
            for key in watch.deployments {
                events.add(failed ? "Warning" : "Normal", failed ? "RolloutFailed" : "RolloutComplete",
                           "commit \(id.short): \(lines.first { $0.hasPrefix(key.name + ":") } ?? "")",
                           kind: "Deployment", namespace: key.namespace, name: key.name, at: now)
            }
        }
    }

    /// The pods of a workload as the status branch shows them.
    func podList(_ pods: [PodRecord]) -> StatusValue {
        .list(pods.map { p in
            var f = [StatusField("name", .string(p.name)), StatusField("phase", .string(p.phase.rawValue)),
                     StatusField("ready", .bool(p.ready)), StatusField("restarts", .int(p.restarts))]
            if let n = p.nodeName { f.append(StatusField("node", .string(n))) }
            if let ip = p.podIP { f.append(StatusField("ip", .string(ip))) }
            if p.terminating { f.append(StatusField("terminating", .bool(true))) }
            if let r = p.unschedulableReason ?? p.waitingReason { f.append(StatusField("reason", .string(r))) }
            let s = reportedStatuses[p.namespace + "/" + p.name]
            for c in (s?.initContainerStatuses ?? []) + (s?.containerStatuses ?? []) {
                if case .waiting(let reason, _) = c.state, reason != "ContainerCreating" {
                    f.append(StatusField("waiting", .string("\(c.name): \(reason)")))
                }
                if case .terminated(let code, let reason, _, _)? = c.lastState {
                    f.append(StatusField("lastExit", .string("\(c.name): \(code) \(reason)")))
                }
            }
            return .map(f)
        })
    }

    static func conditions(_ cs: [Condition]) -> StatusValue {
        .list(cs.map { c in
            .map([StatusField("type", .string(c.type)), StatusField("status", .bool(c.status)),
                  StatusField("reason", .string(c.reason)), StatusField("message", .string(c.message))])
        })
    }

    static func refText(_ ref: SourceRef) -> String {
        switch ref {
        case .branch(let b): return b
        case .tag(let t): return "refs/tags/" + t
        case .commit(let c): return c.hex
        }
    }

    /// Where a lost node's pods went: "web-5d8f-x2k → n1" for each whose owner has a pod made since the
    /// loss on another node (paired in order), "web-5d8f-x2k → pending" while none is placed.
    func replacements(of evicted: [PodRecord], from node: String, since: Double) -> [String] {
        var taken: Set<String> = []
        return evicted.map { old in
            let next = records.filter { r in
                r.owner == old.owner && r.nodeName != node
                    && r.nodeName != nil && r.createdAt >= since - 5 && !taken.contains(r.name)
                    && !evicted.contains { $0.name == r.name }
            }.min { ($0.createdAt, $0.name) < ($1.createdAt, $1.name) }
            guard let next else { return "\(old.name) → pending" }
            taken.insert(next.name)
            return "\(old.name) → \(next.nodeName ?? "")"
        }
    }
}
