import BerthCluster
import BerthController
import BerthDaemon
import BerthModel
import BerthNode
import Foundation

/// Kubernetes-shaped JSON for the API: `{"kind":"PodList","items":[{"metadata":…,"spec":…,"status":…}]}`.
enum KubeJSON {
    typealias Object = [String: Any]

    static func data(_ object: Object) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func list(_ kind: String, apiVersion: String, items: [Object]) -> Object {
        ["kind": kind + "List", "apiVersion": apiVersion, "metadata": [String: Any](), "items": items]
    }

    static func time(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    /// A Codable model value as JSON objects (the model's field names are Kubernetes' names).
    static func encoded<T: Encodable>(_ value: T) -> Any {
        guard let data = try? JSONEncoder().encode(value), let any = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            return [String: Any]()
        }
        return any
    }

    static func metadata(_ name: String, _ namespace: String?, labels: [String: String] = [:], annotations: [String: String] = [:]) -> Object {
        var m: Object = ["name": name]
        if let namespace { m["namespace"] = namespace }
        if !labels.isEmpty { m["labels"] = labels }
        if !annotations.isEmpty { m["annotations"] = annotations }
        return m
    }

    static func conditions(_ cs: [Condition]) -> [Object] {
        cs.map { ["type": $0.type, "status": $0.status ? "True" : "False", "reason": $0.reason, "message": $0.message] }
    }

    // MARK: pods

    static func pod(_ r: PodRecord, _ s: PodStatus?) -> Object {
        var labels = r.labels
        if r.ownerKind == "Deployment" { labels["pod-template-hash"] = r.revisionHash }
        var meta = metadata(r.name, r.namespace, labels: labels)
        meta["creationTimestamp"] = time(r.createdAt)
        meta["ownerReferences"] = [["kind": r.ownerKind, "name": r.ownerName]]
        if r.terminating { meta["deletionTimestamp"] = time(r.createdAt) }
        var spec = encoded(r.spec) as? Object ?? [:]
        if let n = r.nodeName { spec["nodeName"] = n }
        var status: Object = ["phase": (s?.phase ?? r.phase).rawValue]
        if let ip = s?.podIP ?? r.podIP { status["podIP"] = ip }
        if let h = s?.hostIP { status["hostIP"] = h }
        var conditions: [Object] = [["type": "PodScheduled", "status": r.nodeName == nil ? "False" : "True"]]
        if let reason = r.unschedulableReason {
            conditions[0]["reason"] = "Unschedulable"
            conditions[0]["message"] = reason
        }
        for c in s?.conditions ?? [] {
            var o: Object = ["type": c.type, "status": c.status ? "True" : "False"]
            if let reason = c.reason { o["reason"] = reason }
            conditions.append(o)
        }
        status["conditions"] = conditions
        if let s {
            status["containerStatuses"] = s.containerStatuses.map(container)
            if !s.initContainerStatuses.isEmpty { status["initContainerStatuses"] = s.initContainerStatuses.map(container) }
            if let reason = s.reason { status["reason"] = reason }
            if let message = s.message { status["message"] = message }
        } else if let reason = r.waitingReason {
            status["reason"] = "ContainerCreating"
            status["message"] = reason
        }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status]
    }

    static func container(_ c: ContainerStatus) -> Object {
        var o: Object = ["name": c.name, "image": c.image, "ready": c.ready, "started": c.started,
                         "restartCount": c.restartCount, "state": state(c.state)]
        if let last = c.lastState { o["lastState"] = state(last) }
        if let id = c.imageID { o["imageID"] = id }
        return o
    }

    static func state(_ s: ContainerStatus.State) -> Object {
        switch s {
        case .waiting(let reason, let message):
            var w: Object = ["reason": reason]
            if let message { w["message"] = message }
            return ["waiting": w]
        case .running(let started):
            return ["running": ["startedAt": time(started)]]
        case .terminated(let code, let reason, let started, let finished):
            return ["terminated": ["exitCode": Int(code), "reason": reason, "startedAt": time(started), "finishedAt": time(finished)]]
        }
    }

    // MARK: workloads

    static func template(_ t: PodTemplateSpec) -> Object {
        ["metadata": metadata("", nil, labels: t.labels, annotations: t.annotations).filter { $0.key != "name" },
         "spec": encoded(t.spec)]
    }

    static func deployment(_ d: Deployment, _ s: DeploymentStatus?) -> Object {
        var meta = metadata(d.metadata.name, d.metadata.effectiveNamespace, labels: d.metadata.labels, annotations: d.metadata.annotations)
        if let s, s.revision > 0 {
            var a = d.metadata.annotations
            a["deployment.kubernetes.io/revision"] = String(s.revision)
            meta["annotations"] = a
        }
        var strategy: Object = ["type": d.strategy.rawValue]
        if d.strategy == .rollingUpdate {
            strategy["rollingUpdate"] = ["maxSurge": encoded(d.maxSurge), "maxUnavailable": encoded(d.maxUnavailable)]
        }
        let spec: Object = ["replicas": d.replicas, "selector": encoded(d.selector), "template": template(d.template),
                            "strategy": strategy, "minReadySeconds": d.minReadySeconds, "paused": d.paused,
                            "revisionHistoryLimit": d.revisionHistoryLimit, "progressDeadlineSeconds": d.progressDeadlineSeconds]
        var status: Object = [:]
        if let s {
            status = ["replicas": s.replicas, "updatedReplicas": s.updatedReplicas, "readyReplicas": s.readyReplicas,
                      "availableReplicas": s.availableReplicas, "unavailableReplicas": s.unavailableReplicas,
                      "conditions": conditions(s.conditions), "revisionHash": s.revisionHash]
        }
        return ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec, "status": status]
    }

    static func job(_ key: ObjectKey, _ j: Job?, _ s: JobStatus?) -> Object {
        var spec: Object = [:]
        if let j {
            spec = ["template": template(j.spec.template), "backoffLimit": j.spec.backoffLimit]
            if let c = j.spec.completions { spec["completions"] = c }
            if let p = j.spec.parallelism { spec["parallelism"] = p }
            if let d = j.spec.activeDeadlineSeconds { spec["activeDeadlineSeconds"] = d }
        }
        var status: Object = [:]
        if let s {
            status = ["active": s.active, "succeeded": s.succeeded, "failed": s.failed, "conditions": conditions(s.conditions)]
            if let t = s.startTime { status["startTime"] = time(t) }
            if let t = s.completionTime { status["completionTime"] = time(t) }
        }
        let meta = j.map { metadata($0.metadata.name, key.namespace, labels: $0.metadata.labels, annotations: $0.metadata.annotations) }
            ?? metadata(key.name, key.namespace)
        return ["apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec, "status": status]
    }

    static func service(_ svc: Service, clusterIP: String?, endpoints: EndpointsRecord?) -> Object {
        var spec: Object = ["type": svc.type.rawValue, "selector": svc.selector,
                            "ports": svc.ports.map { p -> Object in
                                var o: Object = ["port": p.port, "protocol": p.protocol.rawValue]
                                if let n = p.name { o["name"] = n }
                                if let t = p.targetPort { o["targetPort"] = encoded(t) }
                                if let n = p.nodePort { o["nodePort"] = n }
                                return o
                            }]
        if let ip = clusterIP ?? svc.clusterIP { spec["clusterIP"] = ip }
        let addresses: [Object] = (endpoints?.addresses ?? []).map { ["ip": $0.ip, "nodeName": $0.node, "targetRef": ["kind": "Pod", "name": $0.pod]] }
        let m = svc.metadata
        return ["apiVersion": "v1", "kind": "Service", "metadata": metadata(m.name, m.effectiveNamespace, labels: m.labels, annotations: m.annotations),
                "spec": spec, "status": ["loadBalancer": [String: Any](), "endpoints": addresses]]
    }

    /// A node as the store has it; this machine's node (`berth run`) adds its capacity and conditions.
    static func node(_ record: NodeRecord, _ local: NodeStatus?) -> Object {
        func resources(cpuMilli: Int64, memory: Int64, pods: Int64, extended: [String: Int64]) -> Object {
            var o: Object = ["cpu": "\(cpuMilli)m", "memory": "\(memory >> 10)Ki", "pods": String(pods)]
            for (k, v) in extended { o[k] = String(v) }
            return o
        }
        let a = record.allocatable
        let allocatable = resources(cpuMilli: a.cpuMilli, memory: a.memory, pods: a.pods, extended: a.extended)
        let capacity = local.map { resources(cpuMilli: $0.capacity.cpuMilli, memory: $0.capacity.memory, pods: $0.capacity.pods, extended: $0.capacity.extended) }
        var conditions = local?.conditions.filter { $0.type != "Ready" } ?? []
        conditions.insert(PodCondition(type: "Ready", status: record.ready, reason: record.ready ? "NodeReady" : "NodeNotReady"), at: 0)
        let spec: Object = ["unschedulable": record.unschedulable, "taints": encoded(record.taints)]
        var status: Object = ["capacity": capacity ?? allocatable, "allocatable": allocatable,
                              "conditions": conditions.map { c -> Object in
                                  var o: Object = ["type": c.type, "status": c.status ? "True" : "False"]
                                  if let r = c.reason { o["reason"] = r }
                                  return o
                              }]
        if let address = record.address { status["addresses"] = [["type": "InternalIP", "address": address] as Object] }
        return ["apiVersion": "v1", "kind": "Node", "metadata": metadata(record.name, nil, labels: record.labels), "spec": spec, "status": status]
    }

    static func event(_ e: Event, index: Int) -> Object {
        ["apiVersion": "v1", "kind": "Event",
         "metadata": metadata("\(e.involvedObject.name).\(index)", e.involvedObject.namespace.isEmpty ? nil : e.involvedObject.namespace),
         "type": e.type, "reason": e.reason, "message": e.message, "count": e.count,
         "involvedObject": ["kind": e.involvedObject.kind, "namespace": e.involvedObject.namespace, "name": e.involvedObject.name],
         "firstTimestamp": time(e.firstTimestamp), "lastTimestamp": time(e.lastTimestamp)]
    }

    static func status(_ s: SyncInfo) -> Object {
        var o: Object = ["source": ["repository": s.repository, "ref": s.ref, "path": s.path],
                         "syncs": s.syncs, "consecutiveFailures": s.consecutiveFailures,
                         "statusBranch": s.statusBranch, "statusCommits": s.statusCommits,
                         "rolloutsInProgress": s.rolloutsInProgress, "leading": s.leading,
                         "findings": s.findings.map { f -> Object in
                             ["path": f.path, "line": f.line, "column": f.column, "severity": f.severity.rawValue,
                              "message": f.message, "field": f.field, "text": f.formatted]
                         }]
        if let c = s.appliedCommit { o["appliedCommit"] = ["id": c.id.hex, "summary": c.summary] }
        if let c = s.lastCommit { o["lastCommit"] = ["id": c.id.hex, "summary": c.summary] }
        if let r = s.result { o["result"] = r.rawValue }
        if let e = s.sourceError { o["sourceError"] = e }
        if let e = s.applyError { o["applyError"] = e }
        if let e = s.statusError { o["statusError"] = e }
        return o
    }
}
