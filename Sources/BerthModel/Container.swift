/// A container of a pod template. Fields hold what the manifest said; defaults are applied by consumers.
public struct Container: Sendable, Hashable, Codable {
    public var name = ""
    public var image = ""
    /// As written; nil means Kubernetes' default for the image's tag (`ImageReference.defaultPullPolicy`).
    public var imagePullPolicy: ImagePullPolicy?
    public var command: [String] = []
    public var args: [String] = []
    public var workingDir: String?
    public var env: [EnvVar] = []
    public var envFrom: [EnvFromSource] = []
    public var ports: [ContainerPort] = []
    public var resources = ResourceRequirements()
    public var livenessProbe: Probe?
    public var readinessProbe: Probe?
    public var startupProbe: Probe?
    public var volumeMounts: [VolumeMount] = []
    public var securityContext: SecurityContext?

    public init() {}
}

public struct EnvVar: Sendable, Hashable, Codable {
    public var name = ""
    public var value: String?
    public var valueFrom: EnvVarSource?
    public init() {}
}

public enum EnvVarSource: Sendable, Hashable, Codable {
    case configMapKeyRef(KeySelector)
    case secretKeyRef(KeySelector)
    case fieldRef(fieldPath: String)
}

/// A key of a ConfigMap or Secret.
public struct KeySelector: Sendable, Hashable, Codable {
    public var name = ""
    public var key = ""
    public var optional = false
    public init() {}
}

public struct EnvFromSource: Sendable, Hashable, Codable {
    public enum Source: Sendable, Hashable, Codable {
        case configMap(name: String, optional: Bool)
        case secret(name: String, optional: Bool)
    }
    public var prefix = ""
    public var source: Source?
    public init() {}
}

public enum PortProtocol: String, Sendable, Hashable, Codable, CaseIterable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"
}

public struct ContainerPort: Sendable, Hashable, Codable {
    public var name: String?
    public var containerPort = 0
    public var hostPort: Int?
    public var `protocol` = PortProtocol.tcp
    public init() {}
}

/// Requests and limits by resource name (`cpu`, `memory`, `ephemeral-storage`, `nvidia.com/gpu`).
public struct ResourceRequirements: Sendable, Hashable, Codable {
    public var requests: [String: Quantity] = [:]
    public var limits: [String: Quantity] = [:]
    public init() {}

    /// Kubernetes: a limit without a request makes the request equal to the limit.
    public var effectiveRequests: [String: Quantity] {
        var r = requests
        for (k, v) in limits where r[k] == nil { r[k] = v }
        return r
    }
}

public struct Probe: Sendable, Hashable, Codable {
    public enum Handler: Sendable, Hashable, Codable {
        case exec(command: [String])
        case httpGet(HTTPGetAction)
        case tcpSocket(port: IntOrString, host: String?)
    }
    public var handler: Handler = .exec(command: [])
    public var initialDelaySeconds = 0
    public var periodSeconds = 10
    public var timeoutSeconds = 1
    public var successThreshold = 1
    public var failureThreshold = 3
    public init() {}
}

public struct HTTPGetAction: Sendable, Hashable, Codable {
    public var path = "/"
    public var port: IntOrString = .int(0)
    public var host: String?
    public var scheme = "HTTP"
    public var httpHeaders: [HTTPHeader] = []
    public init() {}
}

public struct HTTPHeader: Sendable, Hashable, Codable {
    public var name = ""
    public var value = ""
    public init() {}
}

public struct VolumeMount: Sendable, Hashable, Codable {
    public var name = ""
    public var mountPath = ""
    public var subPath: String?
    public var readOnly = false
    public init() {}
}

public struct SecurityContext: Sendable, Hashable, Codable {
    public var runAsUser: Int?
    public var runAsGroup: Int?
    public var runAsNonRoot: Bool?
    public var readOnlyRootFilesystem: Bool?
    public var allowPrivilegeEscalation: Bool?
    public var capabilities = Capabilities()
    public init() {}
}

public struct Capabilities: Sendable, Hashable, Codable {
    public var add: [String] = []
    public var drop: [String] = []
    public init() {}

    /// What Pod Security's baseline level lets a container add (Docker's default set), without `CAP_`.
    public static let baseline: Set<String> = [
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
        "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    ]

    /// A capability name as written in a manifest (`sys_admin`, `CAP_SYS_ADMIN`) in the form above.
    public static func bare(_ name: String) -> String {
        let upper = name.uppercased()
        return upper.hasPrefix("CAP_") ? String(upper.dropFirst(4)) : upper
    }
}
