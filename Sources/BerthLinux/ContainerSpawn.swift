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

/// Everything the child needs to become the container's process; built in Swift, copied into one C
/// description before clone, so that no Swift runs between clone and execve.
public struct ContainerSpec: Sendable {
    public var namespaces: Set<Namespace> = [.pid, .mount, .uts, .ipc, .network]
    /// Existing namespaces to enter (network, ipc, uts, pid), as a pod's containers share its sandbox's;
    /// a joined type is not also in `namespaces`.
    public var joinNamespaces: [(type: Namespace, path: String)] = []
    public var rootfs = ""
    /// Overlay options for the root (lowerdir, upperdir, workdir); nil: rootfs is used as it is.
    public var rootfsOverlay: String?
    /// Bind the root without its submounts.
    public var rootfsNonRecursive = false
    /// What to bind at `rootfs` (nil: rootfs itself).
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
    public var stdin: Int32 = -1
    public var stdout: Int32 = -1
    public var stderr: Int32 = -1

    public init() {}
}

/// Owns the C copies of a spec's strings and arrays for the duration of one spawn.
private final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { blocks.forEach { free($0) } }

    func string(_ s: String?) -> UnsafePointer<CChar>? {
        guard let s else { return nil }
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    func array<T>(_ items: [T]) -> UnsafePointer<T>? {
        guard !items.isEmpty else { return nil }
        let p = UnsafeMutablePointer<T>.allocate(capacity: items.count)
        p.initialize(from: items, count: items.count)
        blocks.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    /// A NULL-terminated array of strings.
    func strings(_ items: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        array(items.map { string($0) } + [nil])!
    }
}

public enum ContainerSpawner {
    /// Starts the container's process; returns its pid (in the caller's pid namespace) once it has exec'd.
    public static func spawn(_ spec: ContainerSpec) throws(LinuxError) -> pid_t {
        var pid: pid_t = 0
        var error = berth_error()
        let rc = withCSpec(spec) { berth_spawn(&$0, &pid, &error) }
        guard rc == 0 else { throw LinuxError(error) }
        return pid
    }

    /// The C description of `spec` (joining `cgroups` first), valid during `body`.
    public static func withCSpec<T>(_ spec: ContainerSpec, cgroups: [String] = [], _ body: (inout berth_spec) throws -> T) rethrows -> T {
        let arena = CArena()
        var c = berth_spec()
        c.clone_flags = spec.namespaces.reduce(0) { $0 | $1.flag }
        c.rootfs = arena.string(spec.rootfs)
        c.rootfs_overlay = arena.string(spec.rootfsOverlay)
        c.rootfs_nonrecursive = spec.rootfsNonRecursive ? 1 : 0
        c.rootfs_source = arena.string(spec.rootfsSource)
        let joins = spec.joinNamespaces.map { berth_join(type: $0.type.flag, path: arena.string($0.path)) }
        c.joins = arena.array(joins)
        c.njoins = joins.count
        c.readonly_root = spec.readonlyRoot ? 1 : 0
        c.hostname = arena.string(spec.hostname)
        let mounts = spec.mounts.map { m in
            berth_mount(source: arena.string(m.source), target: arena.string(m.target), fstype: arena.string(m.type),
                        flags: m.flags, data: arena.string(m.data), bind_readonly: m.bindReadonly ? 1 : 0)
        }
        c.mounts = arena.array(mounts)
        c.nmounts = mounts.count
        c.masked_paths = spec.maskedPaths.isEmpty ? nil : arena.strings(spec.maskedPaths)
        c.nmasked = spec.maskedPaths.count
        c.readonly_paths = spec.readonlyPaths.isEmpty ? nil : arena.strings(spec.readonlyPaths)
        c.nreadonly = spec.readonlyPaths.count
        c.make_dev = spec.makeDev ? 1 : 0
        c.argv = arena.strings(spec.args)
        c.envp = arena.strings(spec.env)
        c.cwd = arena.string(spec.cwd)
        c.uid = spec.uid
        c.gid = spec.gid
        if spec.namespaces.contains(.user) {
            c.uid_map = arena.string(IDMapping.mapText(spec.uidMappings))
            c.gid_map = arena.string(IDMapping.mapText(spec.gidMappings))
        }
        if let adj = spec.oomScoreAdj {
            c.set_oom_score_adj = 1
            c.oom_score_adj = adj
        }
        c.sysctls = spec.sysctls.isEmpty ? nil : arena.strings(spec.sysctls.map { $0.key + "=" + $0.value })
        c.nsysctls = spec.sysctls.count
        let devices = spec.devices.map { d in
            berth_device(path: arena.string(d.path), mode: mode_t(d.mode), major: d.major, minor: d.minor, uid: d.uid, gid: d.gid)
        }
        c.devices = arena.array(devices)
        c.ndevices = devices.count
        c.groups = arena.array(spec.additionalGids)
        c.ngroups = spec.additionalGids.count
        c.cap_bounding = spec.capabilities.bounding
        c.cap_effective = spec.capabilities.effective
        c.cap_permitted = spec.capabilities.permitted
        c.cap_inheritable = spec.capabilities.inheritable
        c.cap_ambient = spec.capabilities.ambient
        c.no_new_privs = spec.noNewPrivileges ? 1 : 0
        let limits = spec.rlimits.map { berth_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }
        c.rlimits = arena.array(limits)
        c.nrlimits = limits.count
        let filter = spec.seccomp.map { arena.array($0.instructions) } ?? nil
        c.seccomp_filter = filter.map { UnsafeRawPointer($0) }
        c.seccomp_len = spec.seccomp?.count ?? 0
        c.stdin_fd = spec.stdin
        c.stdout_fd = spec.stdout
        c.stderr_fd = spec.stderr
        c.cgroups = cgroups.isEmpty ? nil : arena.strings(cgroups)
        c.ncgroups = cgroups.count
        return try withExtendedLifetime(arena) { try body(&c) }
    }

    /// Waits for the process (blocking: call off the cooperative pool) and returns its exit code, 128+N for a signal.
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 127 }
        }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
