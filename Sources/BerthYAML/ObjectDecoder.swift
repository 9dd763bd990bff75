import BerthModel

/// Decodes one YAML document into a typed object, reporting every problem it finds on the way.
enum ObjectDecoder {
    /// Kinds Kubernetes serves that berth does not run.
    static let unsupportedKinds: Set<String> = [
        "StatefulSet", "ReplicaSet", "ReplicationController", "Ingress", "IngressClass", "NetworkPolicy",
        "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
        "StorageClass", "PodDisruptionBudget", "Endpoints", "EndpointSlice", "LimitRange", "ResourceQuota",
        "CustomResourceDefinition", "PriorityClass", "PodTemplate", "List",
    ]

    static func decode(_ document: YAMLNode, ctx: DecodeContext) -> KubeObject? {
        guard let r = MapReader(document, path: .root, ctx: ctx) else { return nil }
        let apiVersion = r.string("apiVersion", required: true)
        let kindName = r.string("kind", required: true)
        guard let apiVersion, let kindName else { return nil }
        guard let kind = ObjectKind(rawValue: kindName) else {
            var message = "unknown kind \"\(kindName)\""
            if unsupportedKinds.contains(kindName) {
                message = "kind \"\(kindName)\" is not supported by berth"
            } else if let near = Names.suggestion(for: kindName, among: ObjectKind.allCases.map(\.rawValue)) {
                message += " (did you mean \"\(near)\"?)"
            }
            r.error("kind", message)
            return nil
        }
        guard apiVersion == kind.apiVersion else {
            r.error("apiVersion", "unknown apiVersion \"\(apiVersion)\" for kind \(kind.rawValue): berth serves it as \"\(kind.apiVersion)\"")
            return nil
        }
        r.ignore("status")
        let meta = r.object("metadata", required: true) { metadata($0, kind: kind) } ?? ObjectMeta()
        let object: KubeObject
        switch kind {
        case .namespace:
            var o = Namespace()
            o.metadata = meta
            r.object("spec") { s in s.ignore("finalizers") }
            object = .namespace(o)
        case .configMap:
            object = .configMap(configMap(r, meta: meta))
        case .secret:
            object = .secret(secret(r, meta: meta))
        case .service:
            var o = r.object("spec", required: true) { service($0) } ?? Service()
            o.metadata = meta
            object = .service(o)
        case .persistentVolumeClaim:
            var o = r.object("spec", required: true) { persistentVolumeClaim($0) } ?? PersistentVolumeClaim()
            o.metadata = meta
            object = .persistentVolumeClaim(o)
        case .pod:
            var o = Pod()
            o.metadata = meta
            o.spec = r.object("spec", required: true) { podSpec($0) } ?? PodSpec()
            object = .pod(o)
        case .deployment:
            var o = r.object("spec", required: true) { deployment($0) } ?? Deployment()
            o.metadata = meta
            object = .deployment(o)
        case .daemonSet:
            var o = r.object("spec", required: true) { daemonSet($0) } ?? DaemonSet()
            o.metadata = meta
            object = .daemonSet(o)
        case .job:
            var o = Job()
            o.metadata = meta
            o.spec = r.object("spec", required: true) { jobSpec($0) } ?? JobSpec()
            object = .job(o)
        case .cronJob:
            var o = r.object("spec", required: true) { cronJob($0) } ?? CronJob()
            o.metadata = meta
            object = .cronJob(o)
        case .horizontalPodAutoscaler:
            var o = r.object("spec", required: true) { autoscaler($0) } ?? HorizontalPodAutoscaler()
            o.metadata = meta
            object = .horizontalPodAutoscaler(o)
        }
        r.finish()
        return object
    }

    static func metadata(_ r: MapReader, kind: ObjectKind) -> ObjectMeta {
        var m = ObjectMeta()
        r.ignore("generateName", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "ownerReferences", "finalizers", "managedFields", "selfLink")
        if let name = r.string("name", required: true) {
            m.name = name
            let why = (kind == .namespace || kind == .service) ? Names.dns1123Label(name) : Names.dns1123Subdomain(name)
            if let why { r.error("name", "invalid name \"\(name)\": \(why)") }
        }
        if let ns = r.string("namespace") {
            if kind.isNamespaced {
                m.namespace = ns
                if let why = Names.dns1123Label(ns) { r.error("namespace", "invalid namespace \"\(ns)\": \(why)") }
            } else {
                r.warning("namespace", "\(kind.rawValue) is not namespaced; namespace is ignored")
            }
        }
        m.labels = labels(r, "labels")
        m.annotations = annotations(r)
        return m
    }

    static func labels(_ r: MapReader, _ key: String) -> [String: String] {
        let labels = r.stringMap(key) ?? [:]
        for (k, v) in labels {
            if let why = Names.qualifiedName(k) {
                r.ctx.error("invalid label key \"\(k)\": \(why)", field: r.path.field(key).key(k))
            } else if let why = Names.labelValue(v) {
                r.ctx.error("invalid label value \"\(v)\": \(why)", field: r.path.field(key).key(k))
            }
        }
        return labels
    }

    static func annotations(_ r: MapReader) -> [String: String] {
        let annotations = r.stringMap("annotations") ?? [:]
        var total = 0
        for (k, v) in annotations {
            total += k.utf8.count + v.utf8.count
            if let why = Names.qualifiedName(k) {
                r.ctx.error("invalid annotation key \"\(k)\": \(why)", field: r.path.field("annotations").key(k))
            }
        }
        if total > 256 * 1024 {
            r.error("annotations", "annotations total \(total) bytes, more than Kubernetes' limit of 262144")
        }
        return annotations
    }

    static func selector(_ r: MapReader) -> LabelSelector {
        var s = LabelSelector()
        s.matchLabels = labels(r, "matchLabels")
        s.matchExpressions = r.objects("matchExpressions") { e in
            var req = LabelSelector.Requirement(key: e.string("key", required: true) ?? "", op: .exists)
            req.op = e.enumeration("operator", LabelSelector.Operator.self, required: true) ?? .exists
            req.values = e.stringList("values") ?? []
            let needsValues = req.op == .in || req.op == .notIn
            if needsValues && req.values.isEmpty {
                e.error("values", "values must not be empty for operator \(req.op.rawValue)")
            } else if !needsValues && !req.values.isEmpty {
                e.error("values", "values must be empty for operator \(req.op.rawValue)")
            }
            return req
        } ?? []
        return s
    }
}
