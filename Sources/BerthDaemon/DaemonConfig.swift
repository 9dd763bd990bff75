import BerthNode
import BerthSource
import BerthStatus
import BerthStore

/// The cluster store the daemon's control plane uses.
public enum StoreChoice: Sendable {
    /// A journal under the state directory: one machine.
    case embedded
    case etcd(EtcdOptions)
}

/// Everything `berth run` and `berth server` are told; DESIGN §8 gives the defaults.
public struct DaemonConfig: Sendable {
    public var source: SourceConfig
    /// This instance's name: its node's (`berth run`), or the server's, in leadership and logs.
    public var name: String
    /// This machine's node (`berth run`); nil: a server, whose nodes are agents of their own.
    public var node: NodeConfig?
    public var status = StatusConfig()
    public var store = StoreChoice.embedded
    /// On etcd: the leader's lease; a dead leader is replaced within about this long.
    public var leaderLeaseSeconds = 4.0
    /// The node's lease, renewed every quarter of it: a node that stops renewing is not ready (no new pods
    /// are placed on it) after about this long.
    public var nodeLeaseSeconds = 10.0
    /// The pod CIDR the node asks the control plane for; nil: any it picks.
    public var requestedPodCIDR: String?
    /// Where the control plane takes each node's /24 pod network from (`berth server --cluster-cidr`).
    public var clusterCIDR = "10.244.0.0/16"
    /// Poll interval after a good sync (±10% jitter); webhooks and the post-receive hook sync at once.
    public var interval: Duration = .seconds(15)
    public var listenHost = "127.0.0.1"
    public var listenPort = 7420
    /// Bearer token for `POST /api/v1/sync` (`berth run` makes one under the state directory when not given).
    public var token: String
    /// Shared secret of the webhook (GitHub/Gitea HMAC key, GitLab token); nil: webhooks are refused.
    public var webhookSecret: String?
    /// SIGTERM removes every workload and what berth made on the machine, instead of leaving them running.
    public var stopWorkloadsOnExit = false
    /// Apply a commit that would remove every object berth created (otherwise refused, as a safety net).
    public var allowEmpty = false
    /// Loop period while nothing changes; it runs every 50 ms while pods or rollouts move.
    public var idlePeriod = 1.0

    public init(source: SourceConfig, node: NodeConfig, token: String) {
        self.source = source
        self.node = node
        name = node.nodeName
        self.token = token
    }

    /// A server: the source, controllers, status writer and API, with no node of its own.
    public init(source: SourceConfig, serverName: String, token: String) {
        self.source = source
        name = serverName
        self.token = token
    }
}
