/// A path to a value inside a manifest document, rendered the way Kubernetes names fields:
/// `spec.template.spec.containers[0].env[2].valueFrom`, map entries as `metadata.labels[app]`.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public enum Component: Sendable, Hashable {
        /// A field of a schema type.
        case field(String)
        /// An element of a list.
        case index(Int)
        /// An entry of a free-form map (labels, ConfigMap data, resources).
        case key(String)
    }

    public var components: [Component]

    public init(_ components: [Component] = []) { self.components = components }

    public static let root = FieldPath()

    public func field(_ name: String) -> FieldPath { FieldPath(components + [.field(name)]) }
    public func index(_ i: Int) -> FieldPath { FieldPath(components + [.index(i)]) }
    public func key(_ k: String) -> FieldPath { FieldPath(components + [.key(k)]) }

    /// Builds a path from dotted field names: `FieldPath("spec.template")`.
    public init(dotted: String) {
        self.components = dotted.split(separator: ".").map { .field(String($0)) }
    }

    public var description: String {
        var out = ""
        for c in components {
            switch c {
            case .field(let name):
                if !out.isEmpty { out += "." }
                out += name
            case .index(let i):
                out += "[\(i)]"
            case .key(let k):
                out += "[\(k)]"
            }
        }
        return out
    }
}
