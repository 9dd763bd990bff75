import BerthModel

/// A node as its agent registers it.
public struct NodeRecord: Codable, Sendable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var allocatable: Allocatable
    public var ready: Bool
    public var unschedulable = false
    public var taints: [Taint] = []

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

    public init(name: String, labels: [String: String] = [:], taints: [Taint] = [], allocatable: Allocatable, ready: Bool = true) {
        self.name = name
        self.labels = labels
        self.taints = taints
        self.allocatable = allocatable
        self.ready = ready
    }

    public var key: ClusterKey { .node(name) }
}

