/// The metadata every object carries.
public struct ObjectMeta: Sendable, Hashable, Codable {
    public var name: String
    /// nil when the manifest names no namespace; the object then lives in `default`.
    public var namespace: String?
    public var labels: [String: String]
    public var annotations: [String: String]

    public init(name: String = "", namespace: String? = nil,
                labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
    }

    public static let defaultNamespace = "default"

    public var effectiveNamespace: String { namespace ?? ObjectMeta.defaultNamespace }
}
