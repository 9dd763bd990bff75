public enum RestartPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    case always = "Always"
    case onFailure = "OnFailure"
    case never = "Never"
}

public struct PodSpec: Sendable, Hashable, Codable {
    public var containers: [Container] = []
    public var initContainers: [Container] = []
    public var volumes: [Volume] = []
    public var nodeSelector: [String: String] = [:]
    /// Required node affinity: the pod fits a node that matches any one of the terms.
    public var nodeAffinity: [NodeSelectorTerm] = []
    public var tolerations: [Toleration] = []
    public var restartPolicy: RestartPolicy?
    public var terminationGracePeriodSeconds: Int?
    /// The pod-level user settings every container inherits unless it sets its own.
    public var securityContext: PodSecurityContext?
    public init() {}

    public var allContainers: [Container] { initContainers + containers }

    /// A container's security context with the pod's user settings filled in where it sets none, as the
    /// kubelet merges them.
    public func securityContext(for c: Container) -> SecurityContext? {
        guard let pod = securityContext else { return c.securityContext }
        var sc = c.securityContext ?? SecurityContext()
        sc.runAsUser = sc.runAsUser ?? pod.runAsUser
        sc.runAsGroup = sc.runAsGroup ?? pod.runAsGroup
        sc.runAsNonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot
        return sc
    }
}

/// The parts of a pod's securityContext berth applies (the rest is checked by Pod Security, not run).
public struct PodSecurityContext: Sendable, Hashable, Codable {
    public var runAsUser: Int?
    public var runAsGroup: Int?
    public var runAsNonRoot: Bool?
    public init() {}
}

public struct PodTemplateSpec: Sendable, Hashable, Codable {
    public var labels: [String: String] = [:]
    public var annotations: [String: String] = [:]
    public var spec = PodSpec()
    public init() {}
}

public struct NodeSelectorTerm: Sendable, Hashable, Codable {
    public enum Operator: String, Sendable, Hashable, Codable, CaseIterable {
        case `in` = "In"
        case notIn = "NotIn"
        case exists = "Exists"
        case doesNotExist = "DoesNotExist"
        case gt = "Gt"
        case lt = "Lt"
    }
    public struct Requirement: Sendable, Hashable, Codable {
        public var key = ""
        public var op = Operator.in
        public var values: [String] = []
        public init() {}
    }
    public var matchExpressions: [Requirement] = []
    public init() {}
}

public struct Toleration: Sendable, Hashable, Codable {
    public enum Operator: String, Sendable, Hashable, Codable, CaseIterable {
        case equal = "Equal"
        case exists = "Exists"
    }
    public enum Effect: String, Sendable, Hashable, Codable, CaseIterable {
        case noSchedule = "NoSchedule"
        case preferNoSchedule = "PreferNoSchedule"
        case noExecute = "NoExecute"
    }
    public var key: String?
    public var op = Operator.equal
    public var value: String?
    /// nil tolerates every effect.
    public var effect: Effect?
    public var tolerationSeconds: Int?
    public init() {}
}

public struct Volume: Sendable, Hashable, Codable {
    public enum Source: Sendable, Hashable, Codable {
        case emptyDir(medium: String?, sizeLimit: Quantity?)
        case configMap(ProjectedKeys)
        case secret(ProjectedKeys)
        case persistentVolumeClaim(claimName: String, readOnly: Bool)
        case hostPath(path: String, type: String?)
    }
    public var name = ""
    public var source: Source = .emptyDir(medium: nil, sizeLimit: nil)
    public init() {}
}

/// The keys of a ConfigMap or Secret projected as files.
public struct ProjectedKeys: Sendable, Hashable, Codable {
    public struct Item: Sendable, Hashable, Codable {
        public var key = ""
        public var path = ""
        public var mode: Int?
        public init() {}
    }
    public var name = ""
    public var items: [Item] = []
    public var defaultMode: Int?
    public var optional = false
    public init() {}
}

public struct Pod: Sendable, Hashable, Codable {
    public var metadata = ObjectMeta()
    public var spec = PodSpec()
    public init() {}
}
