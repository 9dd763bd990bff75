import CBerthLinux
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
    /// cpuset lists ("0-3,6"); nil: the parent's.
    public var cpusetCpus: String?
    public var cpusetMems: String?
    /// Real-time scheduling budget (v1 cpu.rt_period_us / cpu.rt_runtime_us).
    public var cpuRealtimePeriod: UInt64?
    public var cpuRealtimeRuntime: Int64?
    public var pidsMax: Int64?
    /// memory.reservation (soft limit), memory+swap (-1: unlimited), swappiness, the OOM killer off, and
    /// the TCP buffers' limit (v1 kmem.tcp).
    public var memoryReservation: Int64?
    public var memorySwap: Int64?
    public var memorySwappiness: UInt64?
    public var disableOOMKiller = false
    public var kernelTCPBytes: Int64?
    /// blockIO: weights (10-1000), per-device weights, and per-device throttles ("read_bps", "write_bps",
    /// "read_iops", "write_iops").
    public var blkioWeight: UInt16?
    public var blkioLeafWeight: UInt16?
    public var blkioDevices: [BlkioDeviceLimit] = []
    /// hugetlb limits by page size ("2MB").
    public var hugepageLimits: [String: UInt64] = [:]
    /// net_cls class id and net_prio priorities by interface (cgroup v1 only).
    public var netClassID: UInt32?
    public var netPriorities: [String: UInt32] = [:]

    var wantsBlkio: Bool { blkioWeight != nil || blkioLeafWeight != nil || !blkioDevices.isEmpty }
    var wantsNetwork: Bool { netClassID != nil || !netPriorities.isEmpty }

    /// The v1 controllers a container joins only when it limits them.
    static let optionalV1Controllers: Set<String> = ["blkio", "hugetlb", "net_cls", "net_prio"]

    /// Whether these limits need one of `optionalV1Controllers`.
    func wants(_ controller: String) -> Bool {
        switch controller {
        case "blkio": wantsBlkio
        case "hugetlb": !hugepageLimits.isEmpty
        case "net_cls", "net_prio": wantsNetwork
        default: false
        }
    }

    /// Device rules after the deny-all that every container starts from (OCI linux.resources.devices,
    /// then an allow rule per linux.devices node); `DeviceRule.defaults` always follow.
    public var devices: [DeviceRule] = []
    public init() {}
}

/// A per-device blkio setting: "weight", or a throttle ("read_bps", "write_bps", "read_iops", "write_iops").
public struct BlkioDeviceLimit: Sendable, Hashable {
    public var kind: String
    public var major: Int64
    public var minor: Int64
    public var value: UInt64

    public init(kind: String, major: Int64, minor: Int64, value: UInt64) {
        self.kind = kind
        self.major = major
        self.minor = minor
        self.value = value
    }
}

/// One device cgroup rule, as v1's devices.allow/devices.deny take it.
public struct DeviceRule: Sendable, Hashable {
    public var allow: Bool
    /// "a" (every device), "c" or "b".
    public var type: String
    /// nil: any.
    public var major: Int64?
    public var minor: Int64?
    /// Letters of "rwm".
    public var access: String

    public init(allow: Bool, type: String, major: Int64? = nil, minor: Int64? = nil, access: String = "rwm") {
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access
    }

    /// What every container may use, as runc's default list: mknod of any node (opening it is what
    /// counts), null, zero, full, random, urandom, tty, console, ptmx and the pseudo-terminals.
    public static let defaults: [DeviceRule] = [
        DeviceRule(allow: true, type: "c", access: "m"), DeviceRule(allow: true, type: "b", access: "m"),
        DeviceRule(allow: true, type: "c", major: 1, minor: 3), DeviceRule(allow: true, type: "c", major: 1, minor: 5),
        DeviceRule(allow: true, type: "c", major: 1, minor: 7), DeviceRule(allow: true, type: "c", major: 1, minor: 8),
        DeviceRule(allow: true, type: "c", major: 1, minor: 9), DeviceRule(allow: true, type: "c", major: 5, minor: 0),
        DeviceRule(allow: true, type: "c", major: 5, minor: 1), DeviceRule(allow: true, type: "c", major: 5, minor: 2),
        DeviceRule(allow: true, type: "c", major: 136),
    ]

    /// The line v1's devices.allow and devices.deny take.
    var v1Line: String {
        type == "a" ? "a *:* \(access)" : "\(type) \(major.map(String.init) ?? "*"):\(minor.map(String.init) ?? "*") \(access)"
    }

    var c: berth_device_rule {
        var bits: UInt32 = 0
        if access.contains("m") { bits |= 1 }
        if access.contains("r") { bits |= 2 }
        if access.contains("w") { bits |= 4 }
        return berth_device_rule(allow: allow ? 1 : 0, type: CChar(type.utf8.first ?? UInt8(ascii: "a")),
                                 major: major ?? -1, minor: minor ?? -1, access: bits)
    }
}

/// A container's cgroup: on cgroup v2 one directory under the unified hierarchy when it has the
/// controllers; otherwise (as on hybrid hosts) one directory per v1 controller.
public struct Cgroup: Sendable {
    public enum Version: Sendable { case v1, v2 }
    public let version: Version
    /// The directories the container's processes are added to.
    public let paths: [String]

    /// In this order in `paths` (v1). cpuacct holds the CPU usage; where it is mounted with cpu (one
    /// `cpu,cpuacct` hierarchy) the cpu directory serves for both.
    static let v1Controllers = ["memory", "cpu", "pids", "cpuacct", "devices", "freezer", "blkio", "hugetlb", "net_cls", "net_prio"]

    /// The v1 directory of a controller (paths are /sys/fs/cgroup/<controller>/...).
    func v1(_ controller: String) -> String? {
        paths.first { $0.split(separator: "/").dropFirst(3).first.map(String.init) == controller }
    }

    /// Every container starts from deny-all; then its own rules, then the defaults. A rule the same as the
    /// one before it (a config's own deny-all after berth's) is left out.
    static func deviceRules(_ limits: CgroupLimits) -> [DeviceRule] {
        var rules: [DeviceRule] = []
        for rule in [DeviceRule(allow: false, type: "a")] + limits.devices + DeviceRule.defaults where rule != rules.last {
            rules.append(rule)
        }
        return rules
    }

    /// cgroup v2's device controller: a BPF program on the cgroup directory that lets through what
    /// `deviceRules` allow.
    public static func attachDeviceProgram(_ dir: String, _ limits: CgroupLimits) throws(LinuxError) {
        let rules = deviceRules(limits).map(\.c)
        guard rules.withUnsafeBufferPointer({ berth_device_filter_attach(dir, $0.baseAddress, $0.count) }) == 0 else {
            throw LinuxError(stage: "cgroup", syscall: "bpf (device program)", path: dir, errno: errno)
        }
    }

    /// Detects the layout: v2 only when the unified root delegates memory, cpu and pids.
    public static func detectVersion(root: String = "/sys/fs/cgroup") -> Version {
        if let controllers = Files.readText(root + "/cgroup.controllers") {
            let set = Set(controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            if set.isSuperset(of: ["memory", "cpu", "pids"]) { return .v2 }
        }
        return .v1
    }

    /// The directories of a new cgroup, none made yet (`make` makes them): `run` makes them while the
    /// container's namespaces are made. `relative` is the cgroupsPath (e.g. `berth/web-1`), without a
    /// leading slash. Refused when a controller the limits need is missing.
    public static func plan(relative: String, limits: CgroupLimits, root: String = "/sys/fs/cgroup") throws(LinuxError) -> Cgroup {
        let clean = relative.split(separator: "/").filter { $0 != "." && $0 != ".." && !$0.isEmpty }.joined(separator: "/")
        guard !clean.isEmpty else { throw LinuxError(stage: "cgroup", syscall: "path", path: relative, errno: EINVAL) }
        switch detectVersion(root: root) {
        case .v2:
            return Cgroup(version: .v2, paths: [root + "/" + clean], relative: clean)
        case .v1:
            for c in CgroupLimits.optionalV1Controllers.sorted() where limits.wants(c) && !Files.exists("\(root)/\(c)") {
                throw LinuxError(stage: "cgroup", syscall: "\(c) (the kernel has no \(c) controller mounted)", path: "\(root)/\(c)", errno: ENOENT)
            }
            var paths: [String] = []
            for c in v1Controllers {
                if c == "cpuacct", !Files.exists("\(root)/cpuacct") || Cgroup.sameDirectory("\(root)/cpuacct", "\(root)/cpu") { continue }
                // The freezer (pause and resume) where the kernel has one.
                if c == "freezer", !Files.exists("\(root)/freezer") { continue }
                if CgroupLimits.optionalV1Controllers.contains(c) && !limits.wants(c) { continue }
                paths.append("\(root)/\(c)/\(clean)")
            }
            // cpuset too, as runc joins it (last in `paths`).
            if Files.exists("\(root)/cpuset") {
                paths.append("\(root)/cpuset/\(clean)")
            } else if limits.cpusetCpus != nil || limits.cpusetMems != nil {
                throw LinuxError(stage: "cgroup", syscall: "cpuset (the kernel has no cpuset controller mounted)", path: "\(root)/cpuset", errno: ENOENT)
            }
            return Cgroup(version: .v1, paths: paths, relative: clean)
        }
    }

    /// Makes the planned directories and writes the limits and device rules; what it made goes again when a
    /// step fails.
    public func make(_ limits: CgroupLimits) throws(LinuxError) {
        guard !relative.isEmpty else { throw LinuxError(stage: "cgroup", syscall: "path", path: paths.first ?? "", errno: EINVAL) }
        // The hierarchy's root of a directory: its path less the cgroupsPath.
        func base(_ dir: String) -> String { String(dir.dropLast(relative.utf8.count + 1)) }
        do throws(LinuxError) {
            for dir in paths {
                let hierarchy = base(dir)
                try Cgroup.makeDirs(dir, below: hierarchy)
                if version == .v1 && hierarchy.hasSuffix("/cpuset") { try Cgroup.giveCpuset(dir, base: hierarchy, relative: relative) }
            }
            switch version {
            case .v2:
                // Enable the controllers in the parents so the leaf can use them (cpuset only when asked for).
                let controllers = "+memory +cpu +pids" + (limits.cpusetCpus != nil || limits.cpusetMems != nil ? " +cpuset" : "")
                    + (limits.wantsBlkio ? " +io" : "") + (limits.hugepageLimits.isEmpty ? "" : " +hugetlb")
                var parent = base(paths[0])
                for component in relative.split(separator: "/").dropLast() {
                    try? Cgroup.write(controllers, to: parent + "/cgroup.subtree_control")
                    parent += "/" + component
                }
                try? Cgroup.write(controllers, to: parent + "/cgroup.subtree_control")
                try apply(limits)
                try Cgroup.attachDeviceProgram(paths[0], limits)
            case .v1:
                try apply(limits)
                // One rule a write; each run of rules for the same file goes through one open.
                let devices = v1("devices")!
                var rules = Cgroup.deviceRules(limits)[...]
                while let first = rules.first {
                    let run = rules.prefix { $0.allow == first.allow }
                    try Cgroup.write(lines: run.map(\.v1Line), to: devices + (first.allow ? "/devices.allow" : "/devices.deny"))
                    rules = rules.dropFirst(run.count)
                }
            }
        } catch {
            remove()
            throw error
        }
    }

    /// A new v1 cpuset directory has no CPUs and no memory nodes, and takes no process, until it is given
    /// its parent's. Parents given theirs once pass them on at mkdir (clone_children): the leaf has them then.
    static func giveCpuset(_ dir: String, base: String, relative: String) throws(LinuxError) {
        func given(_ path: String) -> Bool { Files.read(path, limit: 65536)?.contains { $0 >= 48 && $0 <= 57 } ?? false }
        if given(dir + "/cpuset.cpus") && given(dir + "/cpuset.mems") { return }
        var parent = base
        for component in relative.split(separator: "/") {
            let child = parent + "/" + component
            for file in ["/cpuset.cpus", "/cpuset.mems"] where !given(child + file) {
                try write(Files.readText(parent + file) ?? "", to: child + file)
            }
            // Failing only costs the next leaf the copy above.
            if child != dir { try? write("1", to: child + "/cgroup.clone_children") }
            parent = child
        }
    }

    /// Writes the limits that are set (nil fields are left as they are): at creation, and for `update`.
    /// Devices are not here: their rules are made once, at creation.
    public func apply(_ limits: CgroupLimits) throws(LinuxError) {
        switch version {
        case .v2:
            let dir = paths[0]
            if limits.cpuRealtimePeriod != nil || limits.cpuRealtimeRuntime != nil {
                throw LinuxError(stage: "cgroup", syscall: "cpu.rt_runtime_us (real-time budgets exist only in cgroup v1)", path: dir, errno: ENOTSUP)
            }
            if let cpus = limits.cpusetCpus { try Cgroup.write(cpus, to: dir + "/cpuset.cpus") }
            if let mems = limits.cpusetMems { try Cgroup.write(mems, to: dir + "/cpuset.mems") }
            if let m = limits.memoryBytes { try Cgroup.write(String(m), to: dir + "/memory.max") }
            if let q = limits.cpuQuota { try Cgroup.write("\(q > 0 ? String(q) : "max") \(limits.cpuPeriod ?? 100_000)", to: dir + "/cpu.max") }
            if let shares = limits.cpuShares {
                let weight = 1 + ((max(2, min(shares, 262_144)) - 2) * 9999) / 262_142
                try Cgroup.write(String(weight), to: dir + "/cpu.weight")
            }
            if let p = limits.pidsMax { try Cgroup.write(p > 0 ? String(p) : "max", to: dir + "/pids.max") }
            try Cgroup.applyV2Extras(dir, limits)
        case .v1:
            guard let mem = v1("memory"), let cpu = v1("cpu"), let pids = v1("pids") else {
                throw LinuxError(stage: "cgroup", syscall: "memory, cpu and pids directories", path: paths.first ?? "", errno: ENOENT)
            }
            if let cpuset = v1("cpuset") {
                if let cpus = limits.cpusetCpus { try Cgroup.write(cpus, to: cpuset + "/cpuset.cpus") }
                if let mems = limits.cpusetMems { try Cgroup.write(mems, to: cpuset + "/cpuset.mems") }
            }
            if let m = limits.memoryBytes {
                do { try Cgroup.write(String(m), to: mem + "/memory.limit_in_bytes") } catch {
                    // Raising the limit past the current memory+swap one: that one first (`update`).
                    guard let swap = limits.memorySwap else { throw error }
                    try Cgroup.write(String(swap), to: mem + "/memory.memsw.limit_in_bytes")
                    try Cgroup.write(String(m), to: mem + "/memory.limit_in_bytes")
                }
            }
            if let period = limits.cpuRealtimePeriod { try Cgroup.write(String(period), to: cpu + "/cpu.rt_period_us") }
            if let runtime = limits.cpuRealtimeRuntime { try Cgroup.write(String(runtime), to: cpu + "/cpu.rt_runtime_us") }
            if let period = limits.cpuPeriod { try Cgroup.write(String(period), to: cpu + "/cpu.cfs_period_us") }
            if let q = limits.cpuQuota { try Cgroup.write(String(q), to: cpu + "/cpu.cfs_quota_us") }
            if let s = limits.cpuShares { try Cgroup.write(String(s), to: cpu + "/cpu.shares") }
            if let p = limits.pidsMax { try Cgroup.write(p > 0 ? String(p) : "max", to: pids + "/pids.max") }
            try applyV1Extras(limits, memory: mem)
        }
    }

    /// Memory beyond the limit, blkio, hugetlb and network limits on v1; each file named when it fails.
    func applyV1Extras(_ limits: CgroupLimits, memory mem: String) throws(LinuxError) {
        if let r = limits.memoryReservation { try Cgroup.write(String(r), to: mem + "/memory.soft_limit_in_bytes") }
        if let swap = limits.memorySwap {
            guard Files.exists(mem + "/memory.memsw.limit_in_bytes") else {
                throw LinuxError(stage: "cgroup", syscall: "memory.memsw.limit_in_bytes (no swap accounting in this kernel)", path: mem, errno: ENOTSUP)
            }
            try Cgroup.write(String(swap), to: mem + "/memory.memsw.limit_in_bytes")
        }
        if let v = limits.memorySwappiness { try Cgroup.write(String(v), to: mem + "/memory.swappiness") }
        if limits.disableOOMKiller { try Cgroup.write("1", to: mem + "/memory.oom_control") }
        if let t = limits.kernelTCPBytes { try Cgroup.write(String(t), to: mem + "/memory.kmem.tcp.limit_in_bytes") }
        if let blkio = v1("blkio") {
            func weightFile(_ name: String) throws(LinuxError) -> String {
                // CFQ's blkio.weight, or BFQ's blkio.bfq.weight, whichever the kernel's scheduler gives.
                for f in ["/blkio.\(name)", "/blkio.bfq.\(name)"] where Files.exists(blkio + f) { return blkio + f }
                throw LinuxError(stage: "cgroup", syscall: "blkio.\(name) (no CFQ or BFQ I/O scheduler gives weights here)", path: blkio, errno: ENOTSUP)
            }
            if let w = limits.blkioWeight { try Cgroup.write(String(w), to: try weightFile("weight")) }
            if let w = limits.blkioLeafWeight { try Cgroup.write(String(w), to: try weightFile("leaf_weight")) }
            for d in limits.blkioDevices {
                let file = d.kind == "weight" ? try weightFile("weight_device") : blkio + "/blkio.throttle.\(d.kind)_device"
                try Cgroup.write("\(d.major):\(d.minor) \(d.value)", to: file)
            }
        }
        if let hugetlb = v1("hugetlb") {
            for (size, bytes) in limits.hugepageLimits { try Cgroup.write(String(bytes), to: hugetlb + "/hugetlb.\(size).limit_in_bytes") }
        }
        if let id = limits.netClassID, let netCls = v1("net_cls") { try Cgroup.write(String(id), to: netCls + "/net_cls.classid") }
        if let netPrio = v1("net_prio") {
            for (interface, priority) in limits.netPriorities { try Cgroup.write("\(interface) \(priority)", to: netPrio + "/net_prio.ifpriomap") }
        }
    }

    /// The same on v2: memory.low and memory.swap.max, io.weight and io.max, hugetlb.<size>.max; what v2
    /// lacks (swappiness, the OOM killer switch, TCP kmem, net_cls/net_prio, leaf weights) is refused.
    static func applyV2Extras(_ dir: String, _ limits: CgroupLimits) throws(LinuxError) {
        func refuse(_ what: String) -> LinuxError {
            LinuxError(stage: "cgroup", syscall: "\(what) (cgroup v2 has no such setting)", path: dir, errno: ENOTSUP)
        }
        if limits.memorySwappiness != nil { throw refuse("memory.swappiness") }
        if limits.disableOOMKiller { throw refuse("memory.oom_control") }
        if limits.kernelTCPBytes != nil { throw refuse("memory.kmem.tcp.limit_in_bytes") }
        if limits.blkioLeafWeight != nil { throw refuse("blkio.leaf_weight") }
        if limits.wantsNetwork { throw refuse("net_cls/net_prio") }
        if let r = limits.memoryReservation { try write(String(r), to: dir + "/memory.low") }
        if let swap = limits.memorySwap {
            // v1 counts memory and swap together; v2's swap.max is swap alone.
            let value = swap < 0 ? "max" : String(max(0, swap - (limits.memoryBytes ?? 0)))
            try write(value, to: dir + "/memory.swap.max")
        }
        if let w = limits.blkioWeight { try write("default \(w)", to: dir + "/io.weight") }
        let keys = ["read_bps": "rbps", "write_bps": "wbps", "read_iops": "riops", "write_iops": "wiops"]
        for d in limits.blkioDevices {
            if d.kind == "weight" { try write("\(d.major):\(d.minor) \(d.value)", to: dir + "/io.weight") }
            else { try write("\(d.major):\(d.minor) \(keys[d.kind] ?? d.kind)=\(d.value)", to: dir + "/io.max") }
        }
        for (size, bytes) in limits.hugepageLimits { try write(String(bytes), to: dir + "/hugetlb.\(size).max") }
    }

    static func sameDirectory(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    /// The cgroupsPath below each hierarchy's root; empty for a cgroup read back from a container's state.
    let relative: String

    public init(version: Version, paths: [String]) {
        self.init(version: version, paths: paths, relative: "")
    }

    init(version: Version, paths: [String], relative: String) {
        self.version = version
        self.paths = paths
        self.relative = relative
    }

    static func makeDirs(_ dir: String, below base: String) throws(LinuxError) {
        guard Files.exists(base) else {
            throw LinuxError(stage: "cgroup", syscall: "stat", path: base, errno: ENOENT)
        }
        // Another container's removal may take an empty parent (berth/) away between our mkdirs: retry.
        var attempt = 0
        while true {
            do {
                try Files.makeDirectories(dir)
                return
            } catch {
                attempt += 1
                if error.errno != ENOENT || attempt >= 5 {
                    throw LinuxError(stage: "cgroup", syscall: "mkdir", path: error.path, errno: error.errno)
                }
            }
        }
    }

    static func write(_ text: String, to path: String) throws(LinuxError) {
        try write(lines: [text], to: path)
    }

    /// Each line its own write, through one open: files such as v1's devices.allow take one entry a write.
    static func write(lines: [String], to path: String) throws(LinuxError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LinuxError(stage: "cgroup", syscall: "open", path: path, errno: errno) }
        defer { close(fd) }
        for line in lines where line.withCString({ Glibc.write(fd, $0, strlen($0)) }) < 0 {
            throw LinuxError(stage: "cgroup", syscall: "write", path: path, errno: errno)
        }
    }

    /// The processes in the cgroup (its first directory: every controller holds the same ones).
    public var processes: [Int32] {
        let text = Files.readText(paths[0] + "/cgroup.procs", limit: 16 << 20) ?? ""
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Freezes or thaws every process of the cgroup, and waits until the kernel says it is done (v1 passes
    /// through FREEZING while tasks are being stopped).
    public func freeze(_ on: Bool) throws(LinuxError) {
        let file: String
        if version == .v2 {
            file = paths[0] + "/cgroup.freeze"
            try Cgroup.write(on ? "1" : "0", to: file)
        } else {
            guard let freezer = v1("freezer") else {
                throw LinuxError(stage: "cgroup", syscall: "freezer (the kernel has no freezer controller mounted)", path: paths[0], errno: ENOENT)
            }
            file = freezer + "/freezer.state"
            try Cgroup.write(on ? "FROZEN" : "THAWED", to: file)
        }
        for _ in 0..<1000 {
            if version == .v2 {
                if Cgroup.keyed(paths[0] + "/cgroup.events")["frozen"] == (on ? 1 : 0) { return }
            } else if Files.readText(file)?.hasPrefix(on ? "FROZEN" : "THAWED") == true {
                return
            } else if on {
                try Cgroup.write("FROZEN", to: file)
            }
            usleep(1000)
        }
        throw LinuxError(stage: "cgroup", syscall: on ? "freeze (still freezing after 1 s)" : "thaw (still frozen after 1 s)", path: file, errno: EBUSY)
    }

    /// Processes killed by the OOM killer in this cgroup (v2 memory.events, v1 memory.oom_control).
    public var oomKills: Int {
        let file = version == .v2 ? paths[0] + "/memory.events" : paths[0] + "/memory.oom_control"
        return Int(Cgroup.keyed(file)["oom_kill"] ?? 0)
    }

    /// What the cgroup's processes use now (and at most, for memory), for the node agent and `events`.
    public var stats: CgroupStats {
        var st = CgroupStats()
        st.oomKills = oomKills
        switch version {
        case .v2:
            let dir = paths[0]
            let cpu = Cgroup.keyed(dir + "/cpu.stat")
            st.cpuUsageNanos = cpu["usage_usec"].map { $0 * 1000 }
            st.cpuUserNanos = cpu["user_usec"].map { $0 * 1000 }
            st.cpuSystemNanos = cpu["system_usec"].map { $0 * 1000 }
            st.memoryBytes = Cgroup.number(dir + "/memory.current")
            st.memoryPeakBytes = Cgroup.number(dir + "/memory.peak")
            st.memoryLimitBytes = Cgroup.number(dir + "/memory.max")
            st.inactiveFileBytes = Cgroup.keyed(dir + "/memory.stat")["inactive_file"]
            st.pids = Cgroup.number(dir + "/pids.current")
            st.pidsLimit = Cgroup.number(dir + "/pids.max")
        case .v1:
            let memory = paths[0], pids = paths[2]
            let cpuacct = v1("cpuacct") ?? paths[1]
            st.cpuUsageNanos = Cgroup.number(cpuacct + "/cpuacct.usage")
            st.cpuUserNanos = Cgroup.number(cpuacct + "/cpuacct.usage_user")
            st.cpuSystemNanos = Cgroup.number(cpuacct + "/cpuacct.usage_sys")
            st.memoryBytes = Cgroup.number(memory + "/memory.usage_in_bytes")
            st.memoryPeakBytes = Cgroup.number(memory + "/memory.max_usage_in_bytes")
            // v1 says "no limit" with the largest page-aligned value.
            st.memoryLimitBytes = Cgroup.number(memory + "/memory.limit_in_bytes").flatMap { $0 >= 1 << 62 ? nil : $0 }
            st.inactiveFileBytes = Cgroup.keyed(memory + "/memory.stat")["total_inactive_file"]
            st.pids = Cgroup.number(pids + "/pids.current")
            st.pidsLimit = Cgroup.number(pids + "/pids.max")
        }
        return st
    }

    /// The mounts that show a container its own cgroup at `destination` without a cgroup namespace, as
    /// runc does: v2 binds the cgroup's directory; v1 puts a tmpfs there with each controller's directory
    /// bound under the controller's name; the tmpfs is made read-only last (the binds need it writable).
    public func mounts(at destination: String, readonly: Bool) -> [MountSpec] {
        let rdonly: UInt = 1, nosuid: UInt = 2, nodev: UInt = 4, noexec: UInt = 8, remount: UInt = 32, bind: UInt = 4096
        let flags = nosuid | nodev | noexec
        if version == .v2 {
            return [MountSpec(source: paths[0], target: destination, type: nil, flags: bind | flags, bindReadonly: readonly)]
        }
        var out = [MountSpec(source: "tmpfs", target: destination, type: "tmpfs", flags: flags, data: "mode=755,size=64k")]
        for path in paths {
            guard let name = path.split(separator: "/").dropFirst(3).first else { continue }
            out.append(MountSpec(source: path, target: destination + "/" + String(name), type: nil, flags: bind | flags, bindReadonly: readonly))
        }
        if readonly {
            // The tmpfs itself (it is the container's alone): a bind of the tree onto itself would copy
            // every controller's mount, and the namespace would hold them twice.
            out.append(MountSpec(source: "tmpfs", target: destination, type: "tmpfs", flags: remount | rdonly | flags, data: "mode=755,size=64k"))
        }
        return out
    }

    /// A descriptor that becomes readable when the OOM killer acts in this cgroup (read it to rearm);
    /// the caller closes it.
    public func oomNotifier() -> Int32 {
        berth_oom_notifier(paths[0], version == .v2 ? 1 : 0)
    }

    /// A file holding one number; nil when it is missing or says "max".
    static func number(_ path: String) -> UInt64? {
        Files.readText(path, limit: 4096).flatMap { $0.split(separator: "\n").first.flatMap { UInt64($0) } }
    }

    /// A file of "key value" lines.
    static func keyed(_ path: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in (Files.readText(path, limit: 1 << 20) ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = UInt64(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }

    /// Removes the runtime's own parent (berth/, which `remove` keeps) wherever it is empty: a node that
    /// stops every workload leaves no cgroup behind. A parent still in use stays (rmdir refuses it).
    public static func removeRuntimeParent(root: String = "/sys/fs/cgroup") {
        for dir in [root + "/berth"] + Files.list(root).map({ "\(root)/\($0)/berth" }) { rmdir(dir) }
    }

    /// Removes the directories; they must hold no process (the container has stopped).
    public func remove() {
        // Parents made for it (berth/pod-x/, a slice) go too once empty, below the hierarchy's root
        // (/sys/fs/cgroup/<controller> on v1), except the runtime's own parent berth/, which stays for the next
        // container: making and removing it cost each start a mkdir and an rmdir per v1 controller and the
        // cpuset parents' set-up.
        let rootDepth = version == .v1 ? 4 : 3
        for p in paths {
            rmdir(p)
            var parent = Files.parentPath(p)
            while parent.hasPrefix("/sys/fs/cgroup/"), case let depth = parent.split(separator: "/").count, depth > rootDepth,
                  !(depth == rootDepth + 1 && parent.hasSuffix("/berth")), rmdir(parent) == 0 {
                parent = Files.parentPath(parent)
            }
        }
    }
}

/// A cgroup's usage; nil where the kernel does not report it (memory.peak before Linux 5.19).
public struct CgroupStats: Sendable, Equatable {
    public var cpuUsageNanos: UInt64?
    public var cpuUserNanos: UInt64?
    public var cpuSystemNanos: UInt64?
    public var memoryBytes: UInt64?
    public var memoryPeakBytes: UInt64?
    /// nil: no limit.
    public var memoryLimitBytes: UInt64?
    public var inactiveFileBytes: UInt64?
    public var pids: UInt64?
    /// nil: no limit.
    public var pidsLimit: UInt64?
    public var oomKills = 0
    public init() {}

    /// Usage less the page cache the kernel can drop at once, as the kubelet counts a pod's memory.
    public var workingSetBytes: UInt64? {
        memoryBytes.map { $0 - min($0, inactiveFileBytes ?? 0) }
    }
}
