import BerthImage
import BerthModel

/// A node's settings (flags or a config file of `berth run`); DESIGN §8 gives the defaults.
public struct NodeConfig: Sendable {
    public var nodeName: String
    /// Pod state, IP allocations, claims (`<stateDir>/node`); survives reboots.
    public var stateDir = "/var/lib/berth"
    /// Containers' runtime state and bundles (`<runDir>/runtime`, `<runDir>/pods`).
    public var runDir = "/run/berth"
    /// berth-shim and berth-init, next to the berth executable.
    public var shimBinary: String
    public var initBinary: String
    /// The image store's root (`<stateDir>/images`).
    public var imageStore: String?
    /// Mirrors, CAs, credentials and limits for pulling images.
    public var registry = RegistryOptions()
    /// Image garbage collection: when the store's filesystem is fuller than `imageGCHigh` percent,
    /// images no pod uses go, least recently used first, until it is below `imageGCLow`.
    public var imageGCHigh = 85.0
    public var imageGCLow = 80.0
    /// Where the agent tells of slow pulls and their failures (the daemon's log).
    public var log: (@Sendable (String) -> Void)?
    /// Called when a pull ends, so that whoever drives `tick()` can call it now.
    public var onImagePulled: (@Sendable () -> Void)?

    public var bridge = "berth0"
    /// This node's pod network, given (as a standalone kubelet's `--pod-cidr`); nil: the one the control
    /// plane assigns (`NodeAgent.assign`).
    public var podCIDR: String?
    public var serviceCIDR = "10.96.0.0/16"
    public var clusterDomain = "cluster.local"
    /// Masquerade pod traffic leaving the pod CIDR (not to Services or other pods).
    public var masquerade = false
    /// The network namespace the node's side of pod networking lives in (bridge, veths, nftables);
    /// nil: this process's. Tests use one made for them.
    public var networkNamespace: String?
    /// The node's address on the network between nodes (`berth agent --node-ip`): other nodes route its
    /// pods' traffic to it.
    public var nodeAddress: String?

    /// hostPath volumes only under these directories; none by default.
    public var hostPathRoots: [String] = []
    /// Containers may add capabilities beyond Pod Security's baseline (for namespaces at the privileged
    /// level); off by default, so a namespace marked privileged in Git still cannot take over the node.
    public var allowPrivileged = false

    /// CrashLoopBackOff: the first delay, doubling up to the cap, forgotten after `backoffReset` of running.
    public var backoffInitial = 10.0
    public var backoffCap = 300.0
    public var backoffReset = 600.0

    public var labels: [String: String] = [:]
    public var taints: [Taint] = []
    /// Extended resources, e.g. `nvidia.com/gpu: 1`.
    public var extendedResources: [String: Int64] = [:]
    /// Kept back from capacity for the system: allocatable = capacity − reserve.
    public var reservedCPUMilli: Int64 = 0
    public var reservedMemory: Int64 = 0
    public var maxPods: Int64 = 110

    public init(nodeName: String, shimBinary: String, initBinary: String) {
        self.nodeName = nodeName
        self.shimBinary = shimBinary
        self.initBinary = initBinary
    }

    var nodeDir: String { stateDir + "/node" }
}
