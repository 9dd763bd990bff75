import BerthDaemon
import BerthModel

/// The kinds the API lists, by their plural path segment.
enum Resource: String, CaseIterable, Sendable {
    case pods, deployments, services, nodes, jobs, events

    var kind: String {
        switch self {
        case .pods: "Pod"
        case .deployments: "Deployment"
        case .services: "Service"
        case .nodes: "Node"
        case .jobs: "Job"
        case .events: "Event"
        }
    }

    var apiVersion: String {
        switch self {
        case .deployments: "apps/v1"
        case .jobs: "batch/v1"
        default: "v1"
        }
    }

    func list(_ s: APIState, namespace: String?) -> KubeJSON.Object {
        KubeJSON.list(kind, apiVersion: apiVersion, items: items(s, namespace: namespace))
    }

    func one(_ s: APIState, namespace: String, name: String) throws(APIError) -> KubeJSON.Object {
        let found = items(s, namespace: self == .nodes ? nil : namespace).first {
            ($0["metadata"] as? KubeJSON.Object)?["name"] as? String == name
        }
        guard let found else {
            throw APIError(.notFound, "\(rawValue) \"\(name)\" not found" + (self == .nodes ? "" : " in namespace \(namespace)"))
        }
        return found
    }

    func items(_ s: APIState, namespace ns: String?) -> [KubeJSON.Object] {
        func inNamespace(_ key: ObjectKey) -> Bool { ns == nil || key.namespace == ns }
        switch self {
        case .pods:
            return s.records.filter { ns == nil || $0.namespace == ns }.map {
                KubeJSON.pod($0, s.podStatuses[$0.namespace + "/" + $0.name])
            }
        case .deployments:
            return s.desired.objects.keys.sorted().filter(inNamespace).compactMap { key in
                guard case .deployment(let d)? = s.desired[key] else { return nil }
                return KubeJSON.deployment(d, s.deployments[key])
            }
        case .services:
            return s.desired.objects.keys.sorted().filter(inNamespace).compactMap { key in
                guard case .service(let svc)? = s.desired[key] else { return nil }
                return KubeJSON.service(svc, clusterIP: s.clusterIPs[key], endpoints: s.endpoints[key])
            }
        case .nodes:
            return s.nodes.map { KubeJSON.node($0, s.node?.name == $0.name ? s.node : nil) }
        case .jobs:
            var keys = s.desired.objects.keys.filter { $0.kind == .job }
            keys.append(contentsOf: s.cronJobRuns)
            return keys.sorted().filter(inNamespace).map { key in
                var job: Job?
                if case .job(let j)? = s.desired[key] { job = j }
                return KubeJSON.job(key, job, s.jobs[key])
            }
        case .events:
            return s.events.enumerated().filter { ns == nil || $0.element.involvedObject.namespace == ns }.map {
                KubeJSON.event($0.element, index: $0.offset)
            }
        }
    }
}
