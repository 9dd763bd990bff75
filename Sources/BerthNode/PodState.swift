import BerthLinux
import BerthModel
import BerthRuntime
import Foundation

/// What the agent keeps about a pod (`<stateDir>/node/pods/<namespace>_<name>.json`), so that a restarted
/// agent re-adopts its pods: nothing healthy restarts, IPs stay.
struct PodState: Codable, Equatable {
    struct Probing: Codable, Equatable {
        var nextAt = 0.0
        var successes = 0
        var failures = 0
    }

    struct Run: Codable, Equatable {
        var name: String
        var isInit: Bool
        /// The runtime container of the current (or last) run; kept after it ends for its log and state.
        var runtimeID: String?
        var attempt = 0
        var restartCount = 0
        var startedAt: Double?
        var state = ContainerStatus.State.waiting(reason: "ContainerCreating", message: nil)
        var lastState: ContainerStatus.State?
        var backoff = Backoff()
        var restartAt: Double?
        var started = false
        var ready = false
        /// No further run will come (an init container that succeeded, or a policy that does not restart).
        var done = false
        /// SIGTERM sent (liveness failure or pod deletion); SIGKILL at this time.
        var killAt: Double?
        var probes: [String: Probing] = [:]
        /// Image pulls (optional, so that state files of earlier versions still load): the attempt whose
        /// image is in, since when this attempt waits for a pull, the back-off after failed pulls.
        var pulledFor: Int?
        var pullSince: Double?
        var pullBackoff: Backoff?
        var imageID: String?

        /// Waiting for its first run, or for a restart whose time has come.
        func due(_ now: Double) -> Bool { restartAt.map { now >= $0 } ?? (attempt == 0) }
    }

    var pod: Pod
    var uid: String
    var createdAt: Double
    var ip: String?
    var sandboxID: String?
    var sandboxPid: Int32?
    var runs: [Run]
    var terminatingSince: Double?
    /// When the pod last left this node's Service rules: stopping, it gets SIGTERM once other nodes' rules
    /// had time to drop it too.
    var withdrawnAt: Double?
    /// Set when SIGTERM is sent to a terminating pod: SIGKILL at this time.
    var killAt: Double?
    var retryAt = 0.0
    var reason: String?
    var message: String?

    var key: String { pod.metadata.effectiveNamespace + "/" + pod.metadata.name }
    var fileName: String { pod.metadata.effectiveNamespace + "_" + pod.metadata.name + ".json" }

    init(pod: Pod, uid: String, now: Double) {
        self.pod = pod
        self.uid = uid
        createdAt = now
        runs = pod.spec.initContainers.map { Run(name: $0.name, isInit: true) } + pod.spec.containers.map { Run(name: $0.name, isInit: false) }
    }

    func container(_ r: Run) -> Container? {
        (r.isInit ? pod.spec.initContainers : pod.spec.containers).first { $0.name == r.name }
    }

    var policy: RestartPolicy { pod.spec.restartPolicy ?? .always }

    var status: PodStatus {
        var s = PodStatus()
        s.podIP = ip
        s.reason = reason
        s.message = message
        func status(_ r: Run) -> ContainerStatus {
            var c = ContainerStatus(name: r.name, image: container(r)?.image ?? "", state: r.state)
            c.lastState = r.lastState
            c.ready = r.ready
            c.started = r.started
            c.restartCount = r.restartCount
            c.imageID = r.imageID
            return c
        }
        s.initContainerStatuses = runs.filter(\.isInit).map(status)
        s.containerStatuses = runs.filter { !$0.isInit }.map(status)
        let inits = runs.filter(\.isInit), mains = runs.filter { !$0.isInit }
        let initialized = inits.allSatisfy(\.done)
        let initFailed = policy == .never && inits.contains { isFailure($0.state) }
        let containersReady = initialized && mains.allSatisfy(\.ready)
        s.conditions = [PodCondition(type: "Initialized", status: initialized),
                        PodCondition(type: "ContainersReady", status: containersReady),
                        PodCondition(type: "Ready", status: containersReady && terminatingSince == nil)]
        if initFailed {
            s.phase = .failed
        } else if !initialized || mains.contains(where: { $0.attempt == 0 }) {
            s.phase = .pending
        } else if mains.allSatisfy(\.done) {
            s.phase = mains.allSatisfy({ if case .terminated(0, _, _, _) = $0.state { true } else { false } }) ? .succeeded : .failed
        } else {
            s.phase = .running
        }
        return s
    }

    func isFailure(_ s: ContainerStatus.State) -> Bool {
        if case .terminated(let code, _, _, _) = s { return code != 0 }
        return false
    }
}

extension NodeAgent {
    /// The images of the pods this node runs or keeps (from its state directory), normalised, each with
    /// the pods (`namespace/name`) that use it.
    public static func podImages(stateDir: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        let dir = stateDir + "/node/pods"
        for name in Files.list(dir) where name.hasSuffix(".json") {
            guard let data = Files.read(dir + "/" + name, limit: 16 << 20),
                  let state = try? JSONDecoder().decode(PodState.self, from: Data(data)) else { continue }
            for c in state.pod.spec.allContainers where c.image != "host" {
                out[ImageRefs.normalized(c.image), default: []].append(state.key)
            }
        }
        return out
    }
}
