/// Where a record lives in the cluster store: one constructor per kind of record, so that no caller
/// spells a key by hand and the embedded store and etcd see the same layout.
public struct ClusterKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let path: String

    private init(_ path: String) { self.path = path }

    public var description: String { path }
    public static func < (a: ClusterKey, b: ClusterKey) -> Bool { a.path < b.path }

    /// The prefix under which every record of one kind lives, for list and watch.
    public struct Prefix: Hashable, Sendable, CustomStringConvertible {
        public let path: String
        fileprivate init(_ path: String) { self.path = path }
        public var description: String { path }
    }

    public static func pod(namespace: String, name: String) -> ClusterKey { ClusterKey("pods/\(namespace)/\(name)") }
    public static let pods = Prefix("pods/")

    /// A pod's status as its node reports it.
    public static func podStatus(namespace: String, name: String) -> ClusterKey { ClusterKey("podstatus/\(namespace)/\(name)") }
    public static let podStatuses = Prefix("podstatus/")

    public static func node(_ name: String) -> ClusterKey { ClusterKey("nodes/\(name)") }
    public static let nodes = Prefix("nodes/")

    /// The pod network the control plane gave a node.
    public static func podCIDR(_ node: String) -> ClusterKey { ClusterKey("podcidrs/\(node)") }
    public static let podCIDRs = Prefix("podcidrs/")

    /// A node's heartbeat, on a store lease the node keeps alive.
    public static func nodeLease(_ name: String) -> ClusterKey { ClusterKey("nodeleases/\(name)") }
    public static let nodeLeases = Prefix("nodeleases/")

    /// How pod networks reach each other across nodes, as the servers chose it (`berth server --pod-network`).
    public static let networkSettings = ClusterKey("network/settings")
    public static let network = Prefix("network/")

    /// A node cordoned (or drained) by an operator: no new pods go there. Kept apart from the node's own
    /// record, which only the node writes.
    public static func cordon(_ name: String) -> ClusterKey { ClusterKey("cordons/\(name)") }
    public static let cordons = Prefix("cordons/")

    /// A node's credential (its hash): what a node presents to the servers' node API.
    public static func nodeCredential(_ name: String) -> ClusterKey { ClusterKey("credentials/\(name)") }
    public static let nodeCredentials = Prefix("credentials/")

    /// The cluster's CA (certificate and key) and join secret, made by the first server: every server
    /// signs its serving certificate with the CA and admits nodes that present the secret.
    public static let clusterSecrets = ClusterKey("cluster/secrets")

    public static func endpoints(namespace: String, name: String) -> ClusterKey { ClusterKey("endpoints/\(namespace)/\(name)") }
    public static let allEndpoints = Prefix("endpoints/")

    public static func revision(namespace: String, deployment: String, hash: String) -> ClusterKey {
        ClusterKey("revisions/\(namespace)/\(deployment)/\(hash)")
    }
    public static let revisions = Prefix("revisions/")

    /// A workload's status as its controller computed it: `kind` is Deployment, Job, DaemonSet or
    /// HorizontalPodAutoscaler.
    public static func workloadStatus(kind: String, namespace: String, name: String) -> ClusterKey {
        ClusterKey("status/\(namespace)/\(kind)/\(name)")
    }
    public static let workloadStatuses = Prefix("status/")

    /// What the CronJob controller remembers of one CronJob across restarts.
    public static func cronJobState(namespace: String, name: String) -> ClusterKey { ClusterKey("cronjobs/\(namespace)/\(name)") }
    public static let cronJobStates = Prefix("cronjobs/")

    /// A ConfigMap, Secret, claim or Service (with its allocation) that nodes read: `kind` is the object's kind.
    public static func config(kind: String, namespace: String, name: String) -> ClusterKey { ClusterKey("config/\(namespace)/\(kind)/\(name)") }
    public static let configs = Prefix("config/")

    /// Who runs the source, controllers and status writer, when several servers share the store; the
    /// key lives on its holder's lease.
    public static let leader = ClusterKey("leader")

    /// The objects berth created from Git, for pruning what leaves it.
    public static let inventory = ClusterKey("inventory")

    /// The parts of a key after its prefix (`status/ns/Kind/name` → `[ns, Kind, name]`), nil for a key
    /// of another kind.
    public func components(under prefix: Prefix) -> [String]? {
        guard path.hasPrefix(prefix.path) else { return nil }
        return path.dropFirst(prefix.path.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    }

    /// The key of a path read back from the store, if it is one of ours.
    public init?(stored path: String) {
        guard !path.isEmpty else { return nil }
        self.path = path
    }
}
