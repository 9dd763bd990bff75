public enum RestartPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    case always = "Always"
    case onFailure = "OnFailure"
    case never = "Never"
}

public struct PodSpec: Sendable, Hashable, Codable {
    public var containers: [Container] = []
    public var initContainers: [Container] = []
    public var volumes: [Volume] = []
    public var nodeSelector: [String: String] = [:]
    /// Required node affinity: the pod fits a node that matches any one of the terms.
    public var nodeAffinity: [NodeSelectorTerm] = []
    public var tolerations: [Toleration] = []
    public var restartPolicy: RestartPolicy?
    public var terminationGracePeriodSeconds: Int?
    /// The pod-level user settings every container inherits unless it sets its own.
    public var securityContext: PodSecurityContext?
    /// Names of `kubernetes.io/dockerconfigjson` Secrets whose credentials pull this pod's images.
    public var imagePullSecrets: [String]?
    public init() {}

    public var allContainers: [Container] { initContainers + containers }

    /// A container's security context with the pod's user settings filled in where it sets none, as the
    /// kubelet merges them.
    public func securityContext(for c: Container) -> SecurityContext? {
        guard let pod = securityContext else { return c.securityContext }
        var sc = c.securityContext ?? SecurityContext()
        sc.runAsUser = sc.runAsUser ?? pod.runAsUser
        sc.runAsGroup = sc.runAsGroup ?? pod.runAsGroup
        sc.runAsNonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot
        return sc
    }
}

/// The parts of a pod's securityContext berth applies (the rest is checked by Pod Security, not run).
public struct PodSecurityContext: Sendable, Hashable, Codable {
    public var runAsUser: Int?
    public var runAsGroup: Int?
    public var runAsNonRoot: Bool?
    public init() {}
}

public struct PodTemplateSpec: Sendable, Hashable, Codable {
    public var labels: [String: String] = [:]
    public var annotations: [String: String] = [:]
    public var spec = PodSpec()
    public init() {}
}

public struct NodeSelectorTerm: Sendable, Hashable, Codable {
    public enum Operator: String, Sendable, Hashable, Codable, CaseIterable {
        case `in` = "In"
        case notIn = "NotIn"
        case exists = "Exists"
        case doesNotExist = "DoesNotExist"
        case gt = "Gt"
        case lt = "Lt"
    }
    public struct Requirement: Sendable, Hashable, Codable {
        public var key = ""
        public var op = Operator.in
        public var values: [String] = []
        public init() {}
    }
    public var matchExpressions: [Requirement] = []
    public init() {}
}

public struct Toleration: Sendable, Hashable, Codable {
    public enum Operator: String, Sendable, Hashable, Codable, CaseIterable {
        case equal = "Equal"
        case exists = "Exists"
    }
    public enum Effect: String, Sendable, Hashable, Codable, CaseIterable {
        case noSchedule = "NoSchedule"
        case preferNoSchedule = "PreferNoSchedule"
        case noExecute = "NoExecute"
    }
    public var key: String?
    public var op = Operator.equal
    public var value: String?
    /// nil tolerates every effect.
    public var effect: Effect?
    public var tolerationSeconds: Int?
    public init() {}
}

public struct Volume: Sendable, Hashable, Codable {
    public enum Source: Sendable, Hashable, Codable {
        case emptyDir(medium: String?, sizeLimit: Quantity?)
        case configMap(ProjectedKeys)
        case secret(ProjectedKeys)
        case persistentVolumeClaim(claimName: String, readOnly: Bool)
        case hostPath(path: String, type: String?)
        case downwardAPI(DownwardAPIFiles)
    }
    public var name = ""
    public var source: Source = .emptyDir(medium: nil, sizeLimit: nil)
    public init() {}
}

/// The keys of a ConfigMap or Secret projected as files.
public struct ProjectedKeys: Sendable, Hashable, Codable {
    public struct Item: Sendable, Hashable, Codable {
        public var key = ""
        public var path = ""
        public var mode: Int?
        public init() {}
    }
    public var name = ""
    public var items: [Item] = []
    public var defaultMode: Int?
    public var optional = false
    public init() {}
}

/// The pod's own metadata as files (a downwardAPI volume).
public struct DownwardAPIFiles: Sendable, Hashable, Codable {
    public struct Item: Sendable, Hashable, Codable {
        public var path = ""
        /// metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, or one
        /// key of them: metadata.labels['KEY'].
        public var fieldPath = ""
        public var mode: Int?
        public init() {}
    }
    public var items: [Item] = []
    public var defaultMode: Int?
    public init() {}

    /// The field paths a downwardAPI volume can carry.
    public static func isSupported(_ fieldPath: String) -> Bool {
        if ["metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations"].contains(fieldPath) { return true }
        for prefix in ["metadata.labels['", "metadata.annotations['"] where fieldPath.hasPrefix(prefix) && fieldPath.hasSuffix("']") {
            return fieldPath.count > prefix.count + 2
        }
        return false
    }

    /// The content of a field for a pod: maps as sorted `key="value"` lines, as the kubelet writes them.
    public static func value(_ fieldPath: String, metadata: ObjectMeta, uid: String) -> String? {
        // Go's %q-style quoting of the values, as the kubelet writes label and annotation files.
        func quoted(_ v: String) -> String {
            var out = "\""
            for ch in v {
                switch ch {
                case "\\": out += "\\\\"
                case "\"": out += "\\\""
                case "\n": out += "\\n"
                default: out.append(ch)
                }
            }
            return out + "\""
        }
        func lines(_ map: [String: String]) -> String {
            map.keys.sorted().map { "\($0)=" + quoted(map[$0]!) }.joined(separator: "\n")
        }
        func key(_ prefix: String) -> String? {
            guard fieldPath.hasPrefix(prefix), fieldPath.hasSuffix("']") else { return nil }
            return String(fieldPath.dropFirst(prefix.count).dropLast(2))
        }
        switch fieldPath {
        case "metadata.name": return metadata.name
        case "metadata.namespace": return metadata.effectiveNamespace
        case "metadata.uid": return uid
        case "metadata.labels": return lines(metadata.labels)
        case "metadata.annotations": return lines(metadata.annotations)
        default:
            if let k = key("metadata.labels['") { return metadata.labels[k] ?? "" }
            if let k = key("metadata.annotations['") { return metadata.annotations[k] ?? "" }
            return nil
        }
    }
}

public struct Pod: Sendable, Hashable, Codable {
    public var metadata = ObjectMeta()
    public var spec = PodSpec()
    public init() {}
}
