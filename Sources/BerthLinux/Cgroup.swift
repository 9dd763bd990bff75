#if canImport(Glibc)
import Glibc
#endif

/// Resource limits of a container's cgroup.
public struct CgroupLimits: Sendable, Hashable {
    public var memoryBytes: Int64?
    /// Microseconds of CPU per period; with `cpuPeriod`.
    public var cpuQuota: Int64?
    public var cpuPeriod: UInt64?
    /// cgroup v1 cpu.shares (v2 weight is derived from it).
    public var cpuShares: UInt64?
    public var pidsMax: Int64?
    public init() {}
}

/// A container's cgroup: on cgroup v2 one directory under the unified hierarchy when it has the
/// controllers; otherwise (as on hybrid hosts) one directory per v1 controller.
public struct Cgroup: Sendable {
    public enum Version: Sendable { case v1, v2 }
    public let version: Version
    /// The directories the container's processes are added to.
    public let paths: [String]

    static let v1Controllers = ["memory", "cpu", "pids"]

    /// Detects the layout: v2 only when the unified root delegates memory, cpu and pids.
    public static func detectVersion(root: String = "/sys/fs/cgroup") -> Version {
        if let controllers = Files.readText(root + "/cgroup.controllers") {
            let set = Set(controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            if set.isSuperset(of: ["memory", "cpu", "pids"]) { return .v2 }
        }
        return .v1
    }

    /// `relative` is the cgroupsPath (e.g. `berth/web-1`), without a leading slash.
    public static func create(relative: String, limits: CgroupLimits, root: String = "/sys/fs/cgroup") throws(LinuxError) -> Cgroup {
        let clean = relative.split(separator: "/").filter { $0 != "." && $0 != ".." && !$0.isEmpty }.joined(separator: "/")
        guard !clean.isEmpty else { throw LinuxError(stage: "cgroup", syscall: "path", path: relative, errno: EINVAL) }
        switch detectVersion(root: root) {
        case .v2:
            let dir = root + "/" + clean
            try makeDirs(dir, below: root)
            // Enable the controllers in the parents so the leaf can use them.
            var parent = root
            for component in clean.split(separator: "/").dropLast() {
                try? write("+memory +cpu +pids", to: parent + "/cgroup.subtree_control")
                parent += "/" + component
            }
            try? write("+memory +cpu +pids", to: parent + "/cgroup.subtree_control")
            let cg = Cgroup(version: .v2, paths: [dir])
            if let m = limits.memoryBytes { try write(String(m), to: dir + "/memory.max") }
            if let q = limits.cpuQuota { try write("\(q > 0 ? String(q) : "max") \(limits.cpuPeriod ?? 100_000)", to: dir + "/cpu.max") }
            if let shares = limits.cpuShares {
                let weight = 1 + ((max(2, min(shares, 262_144)) - 2) * 9999) / 262_142
                try write(String(weight), to: dir + "/cpu.weight")
            }
            if let p = limits.pidsMax { try write(p > 0 ? String(p) : "max", to: dir + "/pids.max") }
            return cg
        case .v1:
            var paths: [String] = []
            for c in v1Controllers {
                let dir = "\(root)/\(c)/\(clean)"
                try makeDirs(dir, below: "\(root)/\(c)")
                paths.append(dir)
            }
            let mem = paths[0], cpu = paths[1], pids = paths[2]
            if let m = limits.memoryBytes { try write(String(m), to: mem + "/memory.limit_in_bytes") }
            if let period = limits.cpuPeriod { try write(String(period), to: cpu + "/cpu.cfs_period_us") }
            if let q = limits.cpuQuota { try write(String(q), to: cpu + "/cpu.cfs_quota_us") }
            if let s = limits.cpuShares { try write(String(s), to: cpu + "/cpu.shares") }
            if let p = limits.pidsMax { try write(p > 0 ? String(p) : "max", to: pids + "/pids.max") }
            return Cgroup(version: .v1, paths: paths)
        }
    }

    public init(version: Version, paths: [String]) {
        self.version = version
        self.paths = paths
    }

    static func makeDirs(_ dir: String, below base: String) throws(LinuxError) {
        guard Files.exists(base) else {
            throw LinuxError(stage: "cgroup", syscall: "stat", path: base, errno: ENOENT)
        }
        do {
            try Files.makeDirectories(dir)
        } catch {
            throw LinuxError(stage: "cgroup", syscall: "mkdir", path: error.path, errno: error.errno)
        }
    }

    static func write(_ text: String, to path: String) throws(LinuxError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LinuxError(stage: "cgroup", syscall: "open", path: path, errno: errno) }
        defer { close(fd) }
        let ok = text.withCString { Glibc.write(fd, $0, strlen($0)) } >= 0
        if !ok { throw LinuxError(stage: "cgroup", syscall: "write", path: path, errno: errno) }
    }

    /// Processes killed by the OOM killer in this cgroup (v2 memory.events, v1 memory.oom_control).
    public var oomKills: Int {
        let file = version == .v2 ? paths[0] + "/memory.events" : paths[0] + "/memory.oom_control"
        guard let text = Files.readText(file) else { return 0 }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == "oom_kill" { return Int(parts[1]) ?? 0 }
        }
        return 0
    }

    /// Removes the directories; they must hold no process (the container has stopped).
    public func remove() {
        for p in paths {
            rmdir(p)
            // Parents made for it (berth/) go too once empty; a non-empty one stays.
            var parent = Files.parentPath(p)
            while parent.hasPrefix("/sys/fs/cgroup/"), parent.split(separator: "/").count > 4, rmdir(parent) == 0 {
                parent = Files.parentPath(parent)
            }
        }
    }
}
