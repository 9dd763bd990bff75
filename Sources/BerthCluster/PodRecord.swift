import BerthModel

/// A pod as the control plane keeps it; node agents fill in the status half.
public struct PodRecord: Codable, Sendable, Hashable {
    public typealias Phase = PodPhase

    public var namespace: String
    public var name: String
    /// The workload that made it, e.g. kind `Deployment`, name `web`.
    public var ownerKind: String
    public var ownerName: String
    /// The hash of the pod template it runs (its revision).
    public var revisionHash: String
    public var labels: [String: String]
    public var spec: PodSpec
    /// Seconds on the control plane's clock.
    public var createdAt: Double
    public var nodeName: String?
    public var podIP: String?
    public var phase = Phase.pending
    public var ready = false
    public var readySince: Double?
    public var restarts = 0
    /// Deletion was asked for; the node is stopping it.
    public var terminating = false
    public var unschedulableReason: String?
    /// Why the pod cannot start yet although placed, e.g. a ConfigMap it needs is not there.
    public var waitingReason: String?
    /// CPU in use, in thousandths of a core, as the node agent last measured it (the autoscaler reads it).
    public var cpuUsageMilli: Int64?

    public init(namespace: String, name: String, ownerKind: String, ownerName: String, revisionHash: String,
                labels: [String: String], spec: PodSpec, createdAt: Double) {
        self.namespace = namespace
        self.name = name
        self.ownerKind = ownerKind
        self.ownerName = ownerName
        self.revisionHash = revisionHash
        self.labels = labels
        self.spec = spec
        self.createdAt = createdAt
    }

    public var key: ClusterKey { .pod(namespace: namespace, name: name) }
    /// The workload that made the pod (a Deployment when the kind is not one berth knows).
    public var owner: ObjectKey {
        ObjectKey(kind: ObjectKind(rawValue: ownerKind) ?? .deployment, namespace: namespace, name: ownerName)
    }
    public var isActive: Bool { !terminating && phase != .failed && phase != .succeeded }

    /// Ready for at least `minReadySeconds`.
    public func isAvailable(now: Double, minReadySeconds: Int) -> Bool {
        guard ready, let since = readySince else { return false }
        return now - since >= Double(minReadySeconds)
    }
}

/// One revision of a Deployment: a pod template, numbered in the order it was (last) rolled out.
public struct RevisionRecord: Codable, Sendable, Hashable {
    public var namespace: String
    public var deployment: String
    public var hash: String
    public var number: Int
    public var template: PodTemplateSpec

    public init(namespace: String, deployment: String, hash: String, number: Int, template: PodTemplateSpec) {
        self.namespace = namespace
        self.deployment = deployment
        self.hash = hash
        self.number = number
        self.template = template
    }

    public var key: ClusterKey { .revision(namespace: namespace, deployment: deployment, hash: hash) }
}
