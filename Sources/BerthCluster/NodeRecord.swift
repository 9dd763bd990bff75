import BerthModel

/// A node as its agent registers it.
public struct NodeRecord: Codable, Sendable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var allocatable: Allocatable
    public var ready: Bool
    public var unschedulable = false
    public var taints: [Taint] = []
    /// The pod network the node asks for (`berth run --pod-cidr`); nil: any the control plane picks.
    public var requestedPodCIDR: String?
    /// The node's address on the network between nodes (`berth agent --node-ip`): other nodes route its
    /// pod CIDR to it.
    public var address: String?

    public struct Allocatable: Codable, Sendable, Hashable {
        public var cpuMilli: Int64
        public var memory: Int64
        public var pods: Int64
        public var extended: [String: Int64] = [:]
        public init(cpuMilli: Int64, memory: Int64, pods: Int64, extended: [String: Int64] = [:]) {
            self.cpuMilli = cpuMilli
            self.memory = memory
            self.pods = pods
            self.extended = extended
        }
    }

    public init(name: String, labels: [String: String] = [:], taints: [Taint] = [], allocatable: Allocatable, ready: Bool = true,
                requestedPodCIDR: String? = nil) {
        self.requestedPodCIDR = requestedPodCIDR
        self.name = name
        self.labels = labels
        self.taints = taints
        self.allocatable = allocatable
        self.ready = ready
    }

    public var key: ClusterKey { .node(name) }
}


/// A node's heartbeat, as Kubernetes' node Lease: the record lives on a store lease that the node keeps
/// alive, so it disappears (a watch delete event) when the node stops renewing it, with no store write
/// per beat.
public struct NodeLeaseRecord: Codable, Sendable, Hashable {
    public var node: String
    public var ttlSeconds: Double

    public init(node: String, ttlSeconds: Double) {
        self.node = node
        self.ttlSeconds = ttlSeconds
    }

    public var key: ClusterKey { .nodeLease(node) }
}

/// The pod network the control plane gave a node (its pods' addresses come from it), or why it has none.
public struct PodCIDRRecord: Codable, Sendable, Hashable {
    public var node: String
    public var cidr: String?
    public var error: String?

    public init(node: String, cidr: String? = nil, error: String? = nil) {
        self.node = node
        self.cidr = cidr
        self.error = error
    }

    public var key: ClusterKey { .podCIDR(node) }
}

/// An operator's cordon of a node (`berth cordon`), or a drain (`berth drain`: its Deployments' pods move
/// to other nodes within each Deployment's maxUnavailable).
public struct CordonRecord: Codable, Sendable, Hashable {
    public var node: String
    public var drain: Bool

    public init(node: String, drain: Bool) {
        self.node = node
        self.drain = drain
    }

    public var key: ClusterKey { .cordon(node) }
}

/// How each node reaches the other nodes' pod CIDRs: `routed` (a host route via the other node's address:
/// the nodes share one L2 network) or `vxlan` (an overlay over UDP: the nodes need only reach each other's
/// addresses; pods' MTU is 50 bytes below the nodes').
public struct NetworkSettingsRecord: Codable, Sendable, Hashable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        case routed, vxlan
    }

    public var mode: Mode
    public var vni: Int
    public var port: Int

    public init(mode: Mode, vni: Int = 1, port: Int = 8472) {
        self.mode = mode
        self.vni = vni
        self.port = port
    }
}
