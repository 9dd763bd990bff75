import BerthCluster
import BerthController
import BerthModel

extension Daemon {
    /// Events from what the node agent reports: starts, restarts, back-off, readiness.
    func recordPodEvents(old: [String: PodStatus], new: [String: PodStatus], now: Double) {
        for (key, s) in new {
            let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let before = old[key]
            func add(_ type: String, _ reason: String, _ message: String) {
                events.add(type, reason, message, kind: "Pod", namespace: parts[0], name: parts[1], at: now)
            }
            // The pod as a whole cannot start (its sandbox: cgroups, network): once per reason, as the kubelet.
            if let reason = s.reason, reason != before?.reason {
                add("Warning", reason, s.message ?? reason)
            }
            for c in s.initContainerStatuses + s.containerStatuses {
                let prior = (before?.initContainerStatuses ?? []) + (before?.containerStatuses ?? [])
                let was = prior.first { $0.name == c.name }
                if c.restartCount > (was?.restartCount ?? 0), case .terminated(let code, let reason, _, _)? = c.lastState {
                    add("Warning", "Restarted", "container \(c.name) exited with \(code) (\(reason)) and was restarted")
                }
                if let id = c.imageID, id != was?.imageID {
                    add("Normal", "Pulled", "image \"\(c.image)\" is \(id)")
                }
                guard c.state != was?.state else { continue }
                switch c.state {
                case .waiting("ContainerCreating", let message?) where message.hasPrefix("pulling image"):
                    add("Normal", "Pulling", message)
                case .running:
                    if case .running? = was?.state {} else { add("Normal", "Started", "started container \(c.name)") }
                case .waiting(let reason, let message) where reason != "ContainerCreating" && reason != "PodInitializing":
                    if was?.state.reason != reason {
                        add("Warning", reason.hasSuffix("BackOff") ? "BackOff" : "Failed", message ?? "\(c.name): \(reason)")
                    }
                case .terminated(let code, let reason, _, _):
                    if was?.state.reason != reason {
                        add(code == 0 ? "Normal" : "Warning", reason == "OOMKilled" ? "OOMKilled" : "Terminated",
                            "container \(c.name) exited with \(code) (\(reason))")
                    }
                default: break
                }
            }
            let stopping = records.contains { $0.namespace == parts[0] && $0.name == parts[1] && $0.terminating }
            if let before, before.ready != s.ready, !stopping {
                if s.ready { add("Normal", "Ready", "all containers are ready") } else if s.phase == .running {
                    add("Warning", "Unhealthy", "a readiness probe fails: the pod left its Services' endpoints")
                }
            }
        }
    }

    /// Events from the control plane's pods: created, scheduled or not (and why), stopped.
    func recordSchedulingEvents(old: [PodRecord], new: [PodRecord], now: Double) {
        let before = Dictionary(old.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Set(new.map(\.key))
        for p in new {
            let was = before[p.key]
            func add(_ type: String, _ reason: String, _ message: String) {
                events.add(type, reason, message, kind: "Pod", namespace: p.namespace, name: p.name, at: now)
            }
            if was == nil {
                events.add("Normal", "SuccessfulCreate", "created pod \(p.name) (revision \(p.revisionHash))",
                           kind: p.ownerKind, namespace: p.namespace, name: p.ownerName, at: now)
            }
            if let node = p.nodeName, was?.nodeName == nil {
                add("Normal", "Scheduled", "successfully assigned \(p.namespace)/\(p.name) to \(node)")
            }
            if let reason = p.unschedulableReason, reason != was?.unschedulableReason {
                add("Warning", "FailedScheduling", reason)
            }
            if let reason = p.waitingReason, reason != was?.waitingReason {
                add("Warning", "FailedCreate", reason)
            }
            if p.terminating && was?.terminating != true { add("Normal", "Killing", "stopping the pod") }
        }
        for p in old where !after.contains(p.key) {
            events.add("Normal", "SuccessfulDelete", "deleted pod \(p.name)", kind: p.ownerKind, namespace: p.namespace, name: p.ownerName, at: now)
        }
    }

    /// A node taken for lost: a Warning on the node, as Kubernetes' NodeNotReady.
    func recordNodeLost(_ node: String, pods: Int, now: Double) {
        events.add("Warning", "NodeLost", "node \(node) stopped renewing its lease: its \(pods) pods are replaced on other nodes",
                   kind: "Node", namespace: "", name: node, at: now)
    }
}
