import BerthModel

/// What a node may do through the servers' node API, as Kubernetes' node authorizer decides it: read what
/// a node needs to run its pods and route to other nodes, and write only its own node record, lease and
/// its pods' status. Everything else (credentials, the CA, the leader key, the controllers' records) is
/// refused. A node reads the ConfigMaps, Secrets and claims of the pods bound to it only (`ConfigGrants`).
public enum NodeAccess {
    /// The prefixes a node lists and watches.
    public static let readable: [ClusterKey.Prefix] = [ClusterKey.pods, ClusterKey.configs, ClusterKey.allEndpoints, ClusterKey.podCIDRs, ClusterKey.nodes, ClusterKey.nodeLeases, ClusterKey.network]

    /// Why `node` may not read under `prefix` (a key or a prefix), nil when it may.
    public static func refusal(read path: String, by node: String) -> String? {
        if readable.contains(where: { path.hasPrefix($0.path) }) { return nil }
        return "node \(node) may not read \(path)"
    }

    /// The kinds of keys a node writes.
    public enum Target: Equatable, Sendable {
        case node, lease, podStatus(namespace: String, name: String)
    }

    /// What `key` is to `node` when it may write it, or why not: only its own node record and lease, and
    /// pod status records (the caller checks that the pod is bound to this node).
    public static func target(write path: String, by node: String) -> Result<Target, Refusal> {
        if path == ClusterKey.node(node).path { return .success(.node) }
        if path == ClusterKey.nodeLease(node).path { return .success(.lease) }
        if let parts = ClusterKey(stored: path)?.components(under: ClusterKey.podStatuses), parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty {
            return .success(.podStatus(namespace: parts[0], name: parts[1]))
        }
        return .failure(Refusal(message: "node \(node) may not write \(path): a node writes only its own node, lease and pods' status"))
    }

    /// The ConfigMaps, Secrets and claims a pod may read (optional references too), as config keys.
    public static func configs(of pod: PodRecord) -> Set<String> {
        Set(ObjectFacts.references(of: pod.spec, at: .root, optional: true).map {
            ClusterKey.config(kind: $0.kind.rawValue, namespace: pod.namespace, name: $0.name).path
        })
    }

    /// Whether a config key is everyone's to read (a Service: every node proxies every Service) rather
    /// than only the nodes whose pods refer to it.
    public static func isShared(config path: String) -> Bool {
        guard let parts = ClusterKey(stored: path)?.components(under: ClusterKey.configs), parts.count >= 2 else { return false }
        return parts[1] == "Service"
    }

    public struct Refusal: Error, Equatable, Sendable {
        public var message: String
        public init(message: String) { self.message = message }
    }
}

/// The token an agent joins with, as k3s' `K10<hash>::<secret>`: the SHA-256 of the cluster CA's PEM pins
/// the first contact (no certificate is trusted before it matches), and the secret admits the node.
public struct JoinToken: Sendable, Hashable, CustomStringConvertible {
    public var caHash: String
    public var secret: String

    public init(caHash: String, secret: String) {
        self.caHash = caHash
        self.secret = secret
    }

    public init?(parsing text: String) {
        let text = text.split(whereSeparator: \.isWhitespace).joined()
        guard text.hasPrefix("K10") else { return nil }
        let parts = text.dropFirst(3).split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix(":") else { return nil }
        let hash = parts[0].lowercased()
        var secret = String(parts[1].dropFirst())
        // k3s' full form names a user: `::server:SECRET` or `::node:SECRET`.
        for user in ["node:", "server:"] where secret.hasPrefix(user) { secret.removeFirst(user.count) }
        guard hash.count == 64, hash.allSatisfy(\.isHexDigit), secret.count >= 16 else { return nil }
        caHash = hash
        self.secret = secret
    }

    public var description: String { "K10\(caHash)::node:\(secret)" }
}

/// A node's credential record: the SHA-256 (hex) of the secret the node was given when it joined.
public struct NodeCredentialRecord: Codable, Sendable, Hashable {
    public var node: String
    public var secretHash: String
    public var issuedAt: Double

    public init(node: String, secretHash: String, issuedAt: Double) {
        self.node = node
        self.secretHash = secretHash
        self.issuedAt = issuedAt
    }

    public var key: ClusterKey { .nodeCredential(node) }
}

/// The cluster's CA and join secret, shared by every server through the store (etcd is reachable from
/// servers only).
public struct ClusterSecretsRecord: Codable, Sendable, Hashable {
    public var caCertificatePEM: String
    public var caKeyPEM: String
    public var joinSecret: String

    public init(caCertificatePEM: String, caKeyPEM: String, joinSecret: String) {
        self.caCertificatePEM = caCertificatePEM
        self.caKeyPEM = caKeyPEM
        self.joinSecret = joinSecret
    }
}
