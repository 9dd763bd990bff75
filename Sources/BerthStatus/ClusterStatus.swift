import BerthModel

/// What berth reports about the cluster; the status branch is this, rendered as files.
/// Nothing here may hold a Secret value, nor a time that changes without a change of state.
public struct ClusterStatus: Sendable, Equatable {
    public enum SyncResult: String, Sendable {
        case applied = "Applied"
        case rejected = "Rejected"
    }

    public struct Source: Sendable, Equatable {
        public var repository: String
        public var ref: String
        public var path: String
        public init(repository: String, ref: String, path: String = "") {
            self.repository = repository
            self.ref = ref
            self.path = path
        }
    }

    /// One object in force, with the manifest it comes from.
    public struct Object: Sendable, Equatable {
        public var key: ObjectKey
        public var origin: SourceLocation
        /// What runs for it: replicas, conditions, pods with node, IP, state, restarts and last exit.
        public var status: [StatusField]
        public init(key: ObjectKey, origin: SourceLocation, status: [StatusField] = []) {
            self.key = key
            self.origin = origin
            self.status = status
        }
    }

    /// A node and what it reports (`nodes/<name>.yaml`).
    public struct Node: Sendable, Equatable {
        public var name: String
        public var status: [StatusField]
        public init(name: String, status: [StatusField]) {
            self.name = name
            self.status = status
        }
    }

    public var source: Source
    /// The commit whose objects are in force.
    public var appliedCommit: String?
    /// The newest commit berth read, and what became of it.
    public var lastCommit: String?
    public var lastResult: SyncResult?
    /// Findings of the newest commit (errors for a rejected one, warnings otherwise).
    public var findings: [Finding] = []
    /// Why the repository could not be read, while it cannot.
    public var sourceError: String?
    public var objects: [Object] = []
    public var nodes: [Node] = []

    public init(source: Source) { self.source = source }

    /// The object set of a desired state.
    public static func objects(of desired: DesiredState) -> [Object] {
        desired.objects.keys.sorted().map { Object(key: $0, origin: desired.objects[$0]!.origin) }
    }
}
