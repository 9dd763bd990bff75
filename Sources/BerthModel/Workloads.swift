public struct Deployment: Sendable, Hashable, Codable {
    public enum StrategyType: String, Sendable, Hashable, Codable, CaseIterable {
        case rollingUpdate = "RollingUpdate"
        case recreate = "Recreate"
    }
    public var metadata = ObjectMeta()
    public var replicas = 1
    public var selector = LabelSelector()
    public var template = PodTemplateSpec()
    public var strategy = StrategyType.rollingUpdate
    public var maxSurge: IntOrString = .string("25%")
    public var maxUnavailable: IntOrString = .string("25%")
    public var minReadySeconds = 0
    public var revisionHistoryLimit = 10
    public var progressDeadlineSeconds = 600
    public var paused = false
    public init() {}
}

public struct DaemonSet: Sendable, Hashable, Codable {
    public enum StrategyType: String, Sendable, Hashable, Codable, CaseIterable {
        case rollingUpdate = "RollingUpdate"
        case onDelete = "OnDelete"
    }
    public var metadata = ObjectMeta()
    public var selector = LabelSelector()
    public var template = PodTemplateSpec()
    public var updateStrategy = StrategyType.rollingUpdate
    public var maxUnavailable: IntOrString = .int(1)
    public var maxSurge: IntOrString = .int(0)
    public var minReadySeconds = 0
    public var revisionHistoryLimit = 10
    public init() {}
}

public struct JobSpec: Sendable, Hashable, Codable {
    /// nil: Kubernetes generates a selector from the job's identity.
    public var selector: LabelSelector?
    public var template = PodTemplateSpec()
    public var completions: Int?
    public var parallelism: Int?
    public var backoffLimit = 6
    public var activeDeadlineSeconds: Int?
    public init() {}
}

public struct Job: Sendable, Hashable, Codable {
    public var metadata = ObjectMeta()
    public var spec = JobSpec()
    public init() {}
}

public struct CronJob: Sendable, Hashable, Codable {
    public enum ConcurrencyPolicy: String, Sendable, Hashable, Codable, CaseIterable {
        case allow = "Allow"
        case forbid = "Forbid"
        case replace = "Replace"
    }
    public var metadata = ObjectMeta()
    public var schedule = ""
    public var concurrencyPolicy = ConcurrencyPolicy.allow
    public var suspend = false
    public var startingDeadlineSeconds: Int?
    public var successfulJobsHistoryLimit = 3
    public var failedJobsHistoryLimit = 1
    public var jobLabels: [String: String] = [:]
    public var jobAnnotations: [String: String] = [:]
    public var jobSpec = JobSpec()
    public init() {}
}
