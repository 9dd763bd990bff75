/// A Service's ready backends, which the control plane keeps and each node's Service proxy follows.
public struct EndpointsRecord: Codable, Sendable, Hashable {
    public struct Address: Codable, Sendable, Hashable {
        public var pod: String
        public var ip: String
        public var node: String

        public init(pod: String, ip: String, node: String) {
            self.pod = pod
            self.ip = ip
            self.node = node
        }
    }
    public var namespace: String
    public var name: String
    public var addresses: [Address]

    public init(namespace: String, name: String, addresses: [Address]) {
        self.namespace = namespace
        self.name = name
        self.addresses = addresses
    }

    public var key: ClusterKey { .endpoints(namespace: namespace, name: name) }
}

