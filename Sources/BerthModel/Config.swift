public struct Namespace: Sendable, Hashable, Codable {
    public var metadata = ObjectMeta()
    public init() {}
}

public struct ConfigMap: Sendable, Hashable, Codable {
    public var metadata = ObjectMeta()
    public var data: [String: String] = [:]
    public var binaryData: [String: [UInt8]] = [:]
    public var immutable = false
    public init() {}

    public var keys: Set<String> { Set(data.keys).union(binaryData.keys) }
}

/// A Secret. Its values never leave the node agent: status and notes print keys only.
public struct Secret: Sendable, Hashable, Codable {
    public var metadata = ObjectMeta()
    public var type = "Opaque"
    /// Decoded values of `data`, merged with `stringData` (which wins, as in Kubernetes).
    public var data: [String: [UInt8]] = [:]
    public var immutable = false
    public init() {}
}

public struct PersistentVolumeClaim: Sendable, Hashable, Codable {
    public enum AccessMode: String, Sendable, Hashable, Codable, CaseIterable {
        case readWriteOnce = "ReadWriteOnce"
        case readOnlyMany = "ReadOnlyMany"
        case readWriteMany = "ReadWriteMany"
        case readWriteOncePod = "ReadWriteOncePod"
    }
    public var metadata = ObjectMeta()
    public var accessModes: [AccessMode] = []
    public var storage = Quantity(milli: 0)
    public init() {}
}

public struct HorizontalPodAutoscaler: Sendable, Hashable, Codable {
    public struct ScaleTarget: Sendable, Hashable, Codable {
        public var apiVersion = ""
        public var kind = ""
        public var name = ""
        public init() {}
    }
    public struct ScalingPolicy: Sendable, Hashable, Codable {
        public enum PolicyType: String, Sendable, Hashable, Codable, CaseIterable {
            case pods = "Pods"
            case percent = "Percent"
        }
        public var type = PolicyType.pods
        public var value = 0
        public var periodSeconds = 0
        public init() {}
    }
    public struct ScalingRules: Sendable, Hashable, Codable {
        public enum SelectPolicy: String, Sendable, Hashable, Codable, CaseIterable {
            case max = "Max"
            case min = "Min"
            case disabled = "Disabled"
        }
        public var stabilizationWindowSeconds: Int?
        public var selectPolicy = SelectPolicy.max
        public var policies: [ScalingPolicy] = []
        public init() {}
    }
    public var metadata = ObjectMeta()
    public var scaleTarget = ScaleTarget()
    public var minReplicas = 1
    public var maxReplicas = 0
    /// Target average CPU utilization in percent of the request; Kubernetes' default is 80.
    public var targetCPUUtilization = 80
    public var scaleUp: ScalingRules?
    public var scaleDown: ScalingRules?
    public init() {}
}
