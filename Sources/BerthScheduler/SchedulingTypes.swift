import BerthModel

/// Amounts of the resources the scheduler counts: cpu in thousandths of a core, memory and ephemeral
/// storage in bytes, a pod count, and extended resources (`nvidia.com/gpu`) in whole units.
public struct ResourceAmounts: Sendable, Hashable {
    public var cpuMilli: Int64 = 0
    public var memory: Int64 = 0
    public var ephemeralStorage: Int64 = 0
    public var pods: Int64 = 0
    public var extended: [String: Int64] = [:]

    public init(cpuMilli: Int64 = 0, memory: Int64 = 0, ephemeralStorage: Int64 = 0, pods: Int64 = 0, extended: [String: Int64] = [:]) {
        self.cpuMilli = cpuMilli
        self.memory = memory
        self.ephemeralStorage = ephemeralStorage
        self.pods = pods
        self.extended = extended
    }

    /// A pod's requests from its containers, Kubernetes' way: the sum over containers, or the largest
    /// init container's if that is more; a limit without a request counts as the request.
    public init(requestsOf spec: PodSpec) {
        func amounts(_ c: Container) -> ResourceAmounts {
            let r = c.resources.effectiveRequests
            var a = ResourceAmounts()
            a.cpuMilli = r["cpu"]?.milli ?? 0
            a.memory = r["memory"]?.value ?? 0
            a.ephemeralStorage = r["ephemeral-storage"]?.value ?? 0
            for (k, v) in r where k.contains("/") { a.extended[k] = v.value }
            return a
        }
        var sum = ResourceAmounts()
        for c in spec.containers { sum.add(amounts(c)) }
        for c in spec.initContainers { sum.raise(to: amounts(c)) }
        sum.pods = 1
        self = sum
    }

    mutating func add(_ o: ResourceAmounts) {
        cpuMilli += o.cpuMilli
        memory += o.memory
        ephemeralStorage += o.ephemeralStorage
        pods += o.pods
        for (k, v) in o.extended { extended[k, default: 0] += v }
    }

    mutating func subtract(_ o: ResourceAmounts) {
        cpuMilli -= o.cpuMilli
        memory -= o.memory
        ephemeralStorage -= o.ephemeralStorage
        pods -= o.pods
        for (k, v) in o.extended { extended[k, default: 0] -= v }
    }

    mutating func raise(to o: ResourceAmounts) {
        cpuMilli = max(cpuMilli, o.cpuMilli)
        memory = max(memory, o.memory)
        ephemeralStorage = max(ephemeralStorage, o.ephemeralStorage)
        for (k, v) in o.extended { extended[k] = max(extended[k] ?? 0, v) }
    }
}

/// A node as the scheduler sees it.
public struct NodeSpec: Sendable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var taints: [Taint]
    /// What pods may use: capacity less the node's reserve.
    public var allocatable: ResourceAmounts
    public var ready: Bool
    /// Cordoned: no new pods.
    public var unschedulable: Bool

    public init(name: String, labels: [String: String] = [:], taints: [Taint] = [], allocatable: ResourceAmounts,
                ready: Bool = true, unschedulable: Bool = false) {
        self.name = name
        self.labels = labels.merging(["kubernetes.io/hostname": name]) { a, _ in a }
        self.taints = taints
        self.allocatable = allocatable
        self.ready = ready
        self.unschedulable = unschedulable
    }
}

/// A pod to place.
public struct PodRequest: Sendable, Hashable {
    public var namespace: String
    public var name: String
    /// The workload that owns it (e.g. `Deployment/web`); its pods are spread over nodes.
    public var owner: String
    public var requests: ResourceAmounts
    public var nodeSelector: [String: String]
    /// Required node affinity: any one term must match.
    public var nodeAffinity: [NodeSelectorTerm]
    public var tolerations: [Toleration]
    public var hostPorts: [Int]
    /// Pods with the same key have the same constraints (one template): their node filtering is shared.
    public var equivalenceKey: String

    public init(namespace: String, name: String, owner: String, spec: PodSpec, equivalenceKey: String) {
        self.namespace = namespace
        self.name = name
        self.owner = owner
        requests = ResourceAmounts(requestsOf: spec)
        nodeSelector = spec.nodeSelector
        nodeAffinity = spec.nodeAffinity
        tolerations = spec.tolerations
        hostPorts = spec.allContainers.flatMap { $0.ports.compactMap(\.hostPort) }
        self.equivalenceKey = equivalenceKey
    }

    public init(namespace: String, name: String, owner: String, requests: ResourceAmounts, nodeSelector: [String: String] = [:],
                nodeAffinity: [NodeSelectorTerm] = [], tolerations: [Toleration] = [], hostPorts: [Int] = [], equivalenceKey: String) {
        self.namespace = namespace
        self.name = name
        self.owner = owner
        var r = requests
        r.pods = 1
        self.requests = r
        self.nodeSelector = nodeSelector
        self.nodeAffinity = nodeAffinity
        self.tolerations = tolerations
        self.hostPorts = hostPorts
        self.equivalenceKey = equivalenceKey
    }
}
