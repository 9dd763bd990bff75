import BerthModel

/// A Service's ready backends, which the control plane keeps and each node's Service proxy follows.
public struct EndpointsRecord: Codable, Sendable, Hashable {
    public struct Address: Codable, Sendable, Hashable {
        public var pod: String
        public var ip: String
        public var node: String
        /// The pod's port for each Service port ("80/TCP"), named targetPorts resolved against its containers;
        /// a Service port the pod does not serve is absent.
        public var ports: [String: Int]

        public init(pod: String, ip: String, node: String, ports: [String: Int]) {
            self.pod = pod
            self.ip = ip
            self.node = node
            self.ports = ports
        }

        /// Records written before ports were stored read as serving none, until the control plane rewrites them.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            pod = try c.decode(String.self, forKey: .pod)
            ip = try c.decode(String.self, forKey: .ip)
            node = try c.decode(String.self, forKey: .node)
            ports = try c.decodeIfPresent([String: Int].self, forKey: .ports) ?? [:]
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

    /// Where each of the Service's ports lands in a pod of this spec, as Kubernetes resolves targetPort:
    /// a number as is (the Service port when absent), a name through the containers' named ports of the
    /// same protocol.
    public static func targetPorts(of service: Service, in spec: PodSpec) -> [String: Int] {
        var ports: [String: Int] = [:]
        for sp in service.ports {
            switch sp.targetPort ?? .int(sp.port) {
            case .int(let n): ports[ServiceRecord.portKey(sp)] = n
            case .string(let name):
                let named = spec.containers.flatMap(\.ports).first { $0.name == name && $0.protocol == sp.protocol }
                if let named { ports[ServiceRecord.portKey(sp)] = named.containerPort }
            }
        }
        return ports
    }
}
