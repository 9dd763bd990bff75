import BerthModel

/// A Service with what the control plane allocated for it: its ClusterIP and node ports, or why it has none.
public struct ServiceRecord: Codable, Sendable, Hashable {
    public var service: Service
    public var clusterIP: String?
    /// "80/TCP" → node port.
    public var nodePorts: [String: Int]
    /// Why the Service has no address (the one asked for is taken or outside the range, the range is full).
    public var error: String?

    public init(service: Service, clusterIP: String?, nodePorts: [String: Int] = [:], error: String? = nil) {
        self.service = service
        self.clusterIP = clusterIP
        self.nodePorts = nodePorts
        self.error = error
    }

    public var namespace: String { service.metadata.effectiveNamespace }
    public var name: String { service.metadata.name }
    public static func portKey(_ p: Service.Port) -> String { "\(p.port)/\(p.protocol.rawValue)" }
}

/// What a node needs of the applied commit, besides its pods: the ConfigMaps, Secrets and claims its pods
/// mount or read, and the Services its proxy serves. The control plane writes them from Git; nodes watch them.
public enum ConfigRecord: Codable, Sendable, Hashable {
    case configMap(ConfigMap)
    case secret(Secret)
    case claim(PersistentVolumeClaim)
    case service(ServiceRecord)

    public var key: ClusterKey {
        switch self {
        case .configMap(let c): .config(kind: "ConfigMap", namespace: c.metadata.effectiveNamespace, name: c.metadata.name)
        case .secret(let s): .config(kind: "Secret", namespace: s.metadata.effectiveNamespace, name: s.metadata.name)
        case .claim(let c): .config(kind: "PersistentVolumeClaim", namespace: c.metadata.effectiveNamespace, name: c.metadata.name)
        case .service(let s): .config(kind: "Service", namespace: s.namespace, name: s.name)
        }
    }
}
