/// A pod's phase, as Kubernetes reports it.
public enum PodPhase: String, Sendable, Hashable, Codable {
    case pending = "Pending", running = "Running", succeeded = "Succeeded", failed = "Failed"
}

/// What a node reports about one container of a pod.
public struct ContainerStatus: Sendable, Hashable, Codable {
    public enum State: Sendable, Hashable, Codable {
        /// `ContainerCreating`, `PodInitializing`, `CrashLoopBackOff`, `CreateContainerConfigError`, …
        case waiting(reason: String, message: String?)
        case running(startedAt: Double)
        /// `Completed` (exit 0), `Error` or `OOMKilled`.
        case terminated(exitCode: Int32, reason: String, startedAt: Double, finishedAt: Double)

        public var reason: String? {
            switch self {
            case .waiting(let r, _), .terminated(_, let r, _, _): r
            case .running: nil
            }
        }
    }

    public var name: String
    public var image: String
    /// The image that runs, as Kubernetes writes it: `registry/repository@sha256:…` once pulled.
    public var imageID: String?
    public var state: State
    /// The previous run, once the container has restarted (what `berth logs --previous` shows).
    public var lastState: State?
    public var ready = false
    /// The startup probe passed (or there is none) and the container runs.
    public var started = false
    public var restartCount = 0

    public init(name: String, image: String, state: State) {
        self.name = name
        self.image = image
        self.state = state
    }
}

public struct PodCondition: Sendable, Hashable, Codable {
    /// `Initialized`, `ContainersReady`, `Ready`.
    public var type: String
    public var status: Bool
    public var reason: String?
    public init(type: String, status: Bool, reason: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
    }
}

/// What a node reports about a pod.
public struct PodStatus: Sendable, Hashable, Codable {
    public var phase = PodPhase.pending
    public var podIP: String?
    public var hostIP: String?
    public var conditions: [PodCondition] = []
    public var initContainerStatuses: [ContainerStatus] = []
    public var containerStatuses: [ContainerStatus] = []
    /// Why a pod cannot start, e.g. `CreateContainerConfigError` with a message naming the missing key.
    public var reason: String?
    public var message: String?
    public init() {}

    public var ready: Bool { conditions.first { $0.type == "Ready" }?.status ?? false }
    public var restarts: Int { (initContainerStatuses + containerStatuses).reduce(0) { $0 + $1.restartCount } }
}
