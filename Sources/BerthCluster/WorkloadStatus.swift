/// What the controllers record about the workloads they run, one record per object.

public struct Condition: Codable, Sendable, Hashable {
    public var type: String
    public var status: Bool
    public var reason: String
    public var message: String

    public init(type: String, status: Bool, reason: String, message: String) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}

public struct DeploymentStatus: Codable, Sendable, Hashable {
    public var replicas = 0
    public var updatedReplicas = 0
    public var readyReplicas = 0
    public var availableReplicas = 0
    public var unavailableReplicas = 0
    public var revision = 0
    public var revisionHash = ""
    public var conditions: [Condition] = []
    /// When the rollout last moved; ProgressDeadlineExceeded counts from here.
    public var lastProgress: Double = 0

    public init() {}

    public func condition(_ type: String) -> Condition? { conditions.first { $0.type == type } }
}

public struct JobStatus: Codable, Sendable, Hashable {
    public var active = 0
    public var succeeded = 0
    public var failed = 0
    public var startTime: Double?
    public var completionTime: Double?
    /// When the last pod failure happened; the next pod waits out the backoff from here.
    public var lastFailure: Double?
    public var conditions: [Condition] = []

    public init() {}

    public var isFinished: Bool { conditions.contains { ($0.type == "Complete" || $0.type == "Failed") && $0.status } }
    public func condition(_ type: String) -> Condition? { conditions.first { $0.type == type } }
}

public struct DaemonSetStatus: Codable, Sendable, Hashable {
    public var desiredNumberScheduled = 0
    public var currentNumberScheduled = 0
    public var updatedNumberScheduled = 0
    public var numberReady = 0
    public var numberAvailable = 0
    public init() {}
}

/// One recommendation, kept for the stabilization windows.
public struct Recommendation: Codable, Sendable, Hashable {
    public var time: Double
    public var replicas: Int

    public init(time: Double, replicas: Int) {
        self.time = time
        self.replicas = replicas
    }
}

public struct AutoscalerStatus: Codable, Sendable, Hashable {
    public var currentReplicas = 0
    public var desiredReplicas = 0
    public var currentCPUUtilizationPercentage: Int?
    public var lastScaleTime: Double?
    public var recommendations: [Recommendation] = []
    /// Scale events (time, replicas before, after) within the longest policy period, for rate limits.
    public var events: [ScaleEvent] = []

    public struct ScaleEvent: Codable, Sendable, Hashable {
        public var time: Double
        public var from: Int
        public var to: Int

        public init(time: Double, from: Int, to: Int) {
            self.time = time
            self.from = from
            self.to = to
        }
    }

    public init() {}
}
