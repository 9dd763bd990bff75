/// The kinds berth understands, with the apiVersion each is served under.
public enum ObjectKind: String, Sendable, Hashable, CaseIterable, Comparable {
    case namespace = "Namespace"
    case configMap = "ConfigMap"
    case secret = "Secret"
    case service = "Service"
    case persistentVolumeClaim = "PersistentVolumeClaim"
    case pod = "Pod"
    case deployment = "Deployment"
    case daemonSet = "DaemonSet"
    case job = "Job"
    case cronJob = "CronJob"
    case horizontalPodAutoscaler = "HorizontalPodAutoscaler"

    public var apiVersion: String {
        switch self {
        case .namespace, .configMap, .secret, .service, .persistentVolumeClaim, .pod: return "v1"
        case .deployment, .daemonSet: return "apps/v1"
        case .job, .cronJob: return "batch/v1"
        case .horizontalPodAutoscaler: return "autoscaling/v2"
        }
    }

    /// Namespace is the one cluster-scoped kind.
    public var isNamespaced: Bool { self != .namespace }

    public static func < (a: ObjectKind, b: ObjectKind) -> Bool { a.rawValue < b.rawValue }
}

/// Identity of an object: kind, namespace (empty for cluster-scoped kinds) and name.
public struct ObjectKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kind: ObjectKind
    public var namespace: String
    public var name: String

    public init(kind: ObjectKind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = kind.isNamespaced ? namespace : ""
        self.name = name
    }

    public var description: String {
        namespace.isEmpty ? "\(kind.rawValue) \(name)" : "\(kind.rawValue) \(namespace)/\(name)"
    }

    public static func < (a: ObjectKey, b: ObjectKey) -> Bool {
        (a.kind, a.namespace, a.name) < (b.kind, b.namespace, b.name)
    }
}

// Indirect: the payloads are large structs, and objects are copied through indexes and dictionaries.
public indirect enum KubeObject: Sendable, Hashable {
    case namespace(Namespace)
    case configMap(ConfigMap)
    case secret(Secret)
    case service(Service)
    case persistentVolumeClaim(PersistentVolumeClaim)
    case pod(Pod)
    case deployment(Deployment)
    case daemonSet(DaemonSet)
    case job(Job)
    case cronJob(CronJob)
    case horizontalPodAutoscaler(HorizontalPodAutoscaler)

    public var kind: ObjectKind {
        switch self {
        case .namespace: return .namespace
        case .configMap: return .configMap
        case .secret: return .secret
        case .service: return .service
        case .persistentVolumeClaim: return .persistentVolumeClaim
        case .pod: return .pod
        case .deployment: return .deployment
        case .daemonSet: return .daemonSet
        case .job: return .job
        case .cronJob: return .cronJob
        case .horizontalPodAutoscaler: return .horizontalPodAutoscaler
        }
    }

    public var metadata: ObjectMeta {
        switch self {
        case .namespace(let o): return o.metadata
        case .configMap(let o): return o.metadata
        case .secret(let o): return o.metadata
        case .service(let o): return o.metadata
        case .persistentVolumeClaim(let o): return o.metadata
        case .pod(let o): return o.metadata
        case .deployment(let o): return o.metadata
        case .daemonSet(let o): return o.metadata
        case .job(let o): return o.metadata
        case .cronJob(let o): return o.metadata
        case .horizontalPodAutoscaler(let o): return o.metadata
        }
    }

    public var key: ObjectKey {
        ObjectKey(kind: kind, namespace: metadata.effectiveNamespace, name: metadata.name)
    }

    private static let templatePath = FieldPath(dotted: "spec.template")
    private static let cronTemplatePath = FieldPath(dotted: "spec.jobTemplate.spec.template")

    /// The pod template of a workload, with the field path that leads to it.
    public var podTemplate: (template: PodTemplateSpec, path: FieldPath)? {
        switch self {
        case .deployment(let d): return (d.template, KubeObject.templatePath)
        case .daemonSet(let d): return (d.template, KubeObject.templatePath)
        case .job(let j): return (j.spec.template, KubeObject.templatePath)
        case .cronJob(let c): return (c.jobSpec.template, KubeObject.cronTemplatePath)
        case .pod(let p):
            var t = PodTemplateSpec()
            t.labels = p.metadata.labels
            t.annotations = p.metadata.annotations
            t.spec = p.spec
            return (t, .root)
        default: return nil
        }
    }
}

/// An object as it came from a manifest, with where it came from.
public struct SourcedObject: Sendable, Hashable {
    public var object: KubeObject
    /// Where the document starts.
    public var origin: SourceLocation

    public init(object: KubeObject, origin: SourceLocation) {
        self.object = object
        self.origin = origin
    }
}

/// What a commit (or a directory) asks the cluster to be: every object by key.
public struct DesiredState: Sendable, Hashable {
    public var objects: [ObjectKey: SourcedObject]

    public init(objects: [ObjectKey: SourcedObject] = [:]) { self.objects = objects }

    public subscript(key: ObjectKey) -> KubeObject? { objects[key]?.object }

    public func objects(of kind: ObjectKind) -> [KubeObject] {
        objects.keys.filter { $0.kind == kind }.sorted().compactMap { objects[$0]?.object }
    }

    public var count: Int { objects.count }
}
