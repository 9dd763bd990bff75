public struct Service: Sendable, Hashable, Codable {
    public enum ServiceType: String, Sendable, Hashable, Codable, CaseIterable {
        case clusterIP = "ClusterIP"
        case nodePort = "NodePort"
    }
    public struct Port: Sendable, Hashable, Codable {
        public var name: String?
        public var port = 0
        /// nil: the same as `port`.
        public var targetPort: IntOrString?
        public var `protocol` = PortProtocol.tcp
        public var nodePort: Int?
        public init() {}
    }
    public var metadata = ObjectMeta()
    public var type = ServiceType.clusterIP
    public var selector: [String: String] = [:]
    public var ports: [Port] = []
    /// An address asked for in the manifest, or "None" for a headless Service.
    public var clusterIP: String?
    public init() {}
}
