import BerthModel

/// What a node reports about one of its pods. Only that node writes it; the control plane reads it
/// through a watch and removes it with the pod.
public struct PodStatusRecord: Codable, Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var node: String
    public var phase: PodPhase
    public var ready: Bool
    /// When the pod last became ready, on the node's clock (minReadySeconds counts from here).
    public var readySince: Double?
    public var podIP: String?
    public var restarts: Int
    /// CPU in use, in thousandths of a core (the autoscaler reads it).
    public var cpuUsageMilli: Int64?
    /// The node stopped the pod for good, as it was asked to: the control plane removes it.
    public var stopped: Bool
    /// The whole status as the node shows it (containers, conditions, reasons): what the API and the
    /// status branch show for a pod of any node. The fields above are what the controllers decide on.
    public var detail: PodStatus?

    public init(namespace: String, name: String, node: String, phase: PodPhase, ready: Bool, readySince: Double? = nil,
                podIP: String? = nil, restarts: Int = 0, cpuUsageMilli: Int64? = nil, stopped: Bool = false, detail: PodStatus? = nil) {
        self.namespace = namespace
        self.name = name
        self.node = node
        self.phase = phase
        self.ready = ready
        self.readySince = readySince
        self.podIP = podIP
        self.restarts = restarts
        self.cpuUsageMilli = cpuUsageMilli
        self.stopped = stopped
        self.detail = detail
    }

    public var key: ClusterKey { .podStatus(namespace: namespace, name: name) }
    public var podKey: ClusterKey { .pod(namespace: namespace, name: name) }
}
