import CBerthLinux
#if canImport(Glibc)
import Glibc
#endif

/// Namespaces a container can be given.
public enum Namespace: String, Sendable, Hashable, CaseIterable {
    case pid, mount, uts, ipc, network, cgroup, user

    /// CLONE_NEW* (linux/sched.h; Glibc's module does not export them).
    var flag: Int32 {
        switch self {
        case .pid: return 0x2000_0000
        case .mount: return 0x0002_0000
        case .uts: return 0x0400_0000
        case .ipc: return 0x0800_0000
        case .network: return 0x4000_0000
        case .cgroup: return 0x0200_0000
        case .user: return 0x1000_0000
        }
    }
}

public struct MountSpec: Sendable, Hashable {
    public var source: String
    /// Absolute path inside the container.
    public var target: String
    /// nil for bind mounts.
    public var type: String?
    public var flags: UInt
    public var data: String?
    public var bindReadonly: Bool

    public init(source: String, target: String, type: String?, flags: UInt = 0, data: String? = nil, bindReadonly: Bool = false) {
        self.source = source
        self.target = target
        self.type = type
        self.flags = flags
        self.data = data
        self.bindReadonly = bindReadonly
    }
}

/// One line of a user namespace's uid_map or gid_map: `size` ids from `containerID` inside are
/// `hostID`... outside.
public struct IDMapping: Sendable, Hashable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32
    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.size = size
    }

    /// The text /proc/PID/uid_map takes.
    public static func mapText(_ mappings: [IDMapping]) -> String {
        mappings.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
    }

    /// The host id of `id` inside, if a mapping covers it.
    public static func host(_ id: UInt32, in mappings: [IDMapping]) -> UInt32? {
        for m in mappings where id >= m.containerID && UInt64(id) < UInt64(m.containerID) + UInt64(m.size) {
            return m.hostID + (id - m.containerID)
        }
        return nil
    }
}

/// A device node to make in the container (OCI linux.devices).
public struct DeviceNode: Sendable, Hashable {
    public var path: String
    /// S_IFCHR, S_IFBLK or S_IFIFO, with the permission bits.
    public var mode: UInt32
    public var major: UInt32
    public var minor: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public init(path: String, mode: UInt32, major: UInt32, minor: UInt32, uid: UInt32, gid: UInt32) {
        self.path = path
        self.mode = mode
        self.major = major
        self.minor = minor
        self.uid = uid
        self.gid = gid
    }
}

public struct CapabilitySets: Sendable, Hashable {
    public var bounding: UInt64 = 0
    public var effective: UInt64 = 0
    public var permitted: UInt64 = 0
    public var inheritable: UInt64 = 0
    public var ambient: UInt64 = 0
    public init() {}
}

/// Everything the child needs to become the container's process; built in Swift, encoded for the C
/// supervisor (SpecEncoding), so that no Swift runs between clone and execve.
public struct ContainerSpec: Sendable {
    public var namespaces: Set<Namespace> = [.pid, .mount, .uts, .ipc, .network]
    /// Existing namespaces to enter (network, ipc, uts, pid), as a pod's containers share its sandbox's;
    /// a joined type is not also in `namespaces`.
    public var joinNamespaces: [(type: Namespace, path: String)] = []
    public var rootfs = ""
    /// Overlay options for the root (lowerdir, upperdir, workdir); nil: rootfs is used as it is.
    public var rootfsOverlay: String?
    /// A read-only lower layer under a tmpfs of the container (nil: rootfs itself): writes and missing
    /// mount targets never reach it.
    public var rootfsSource: String?
    public var readonlyRoot = false
    public var hostname: String?
    public var mounts: [MountSpec] = []
    public var maskedPaths: [String] = []
    public var readonlyPaths: [String] = []
    public var makeDev = true
    public var args: [String] = []
    public var env: [String] = []
    public var cwd = "/"
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var additionalGids: [UInt32] = []
    /// With `.user` in `namespaces`.
    public var uidMappings: [IDMapping] = []
    public var gidMappings: [IDMapping] = []
    public var oomScoreAdj: Int32?
    /// Namespaced kernel parameters, "kernel.shmmax" style keys.
    public var sysctls: [(key: String, value: String)] = []
    public var devices: [DeviceNode] = []
    public var capabilities = CapabilitySets()
    public var noNewPrivileges = true
    public var rlimits: [(resource: Int32, soft: UInt64, hard: UInt64)] = []
    public var seccomp: SeccompProgram?
    /// The process's umask (runc's default when the config gives none).
    public var umask: UInt32 = 0o022
    /// Mount propagation flags for the container's root (MS_SHARED, MS_SLAVE, ... with MS_REC); 0: private.
    public var rootPropagation: UInt = 0
    /// process.terminal: a pty of the container is the process's stdio; its master goes to the caller's
    /// console socket.
    public var terminal = false
    /// startContainer hooks, run in the container after `start`, before the process; their stdin is the
    /// file `hookState` (written by the runtime once the container is created).
    public var startHooks: [Hook] = []
    public var hookState: String?

    public init() {}
}

/// An OCI hook: a program (path, argv, environment) given the container's state on stdin, killed after
/// `timeout` seconds.
public struct Hook: Sendable, Equatable {
    public var path: String
    public var args: [String]
    public var env: [String]
    public var timeout: Int?

    public init(path: String, args: [String] = [], env: [String] = [], timeout: Int? = nil) {
        self.path = path
        self.args = args
        self.env = env
        self.timeout = timeout
    }
}
