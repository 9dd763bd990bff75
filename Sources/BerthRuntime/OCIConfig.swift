import BerthLinux
import BerthYAMLCore
#if canImport(Glibc)
import Glibc
#endif

/// Why a bundle cannot run: the field path and what is wrong with it.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Reads an OCI runtime-spec `config.json` into a `ContainerSpec`. Every field is either honoured or an
/// error naming it: a setting berth would silently ignore could weaken the container.
public struct OCIConfig {
    public var spec: ContainerSpec
    public let bundle: String
    public let limits: CgroupLimits
    /// linux.cgroupsPath, relative to the cgroup root; nil: berth/<id>.
    public let cgroupsPath: String?
    /// A `cgroup` mount: where, and whether read-only. It shows the container its own cgroup, which exists
    /// only once the container does (`Cgroup.mounts`), so it is not in `spec.mounts`.
    public var cgroupMount: (index: Int, destination: String, readonly: Bool)?
    /// The config's hooks by kind (`hookKinds`); startContainer's are also in `spec.startHooks`.
    public var hooks: [String: [Hook]] = [:]
    /// The hooks `hooks` holds, in the order of the container's life.
    public static let hookKinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]

    /// config.json is read with the manifest parser's limits, but bigger: seccomp profiles are long.
    static let inputLimits: InputLimits = {
        var l = InputLimits()
        l.maxFileBytes = 4 << 20
        l.maxDocuments = 1
        return l
    }()

    /// Compiled seccomp filters, by profile (cleared with the machine's /run).
    public static let seccompCache = "/run/berth/seccomp"

    static let mountFlags: [String: (set: UInt, clear: UInt)] = [
        "ro": (1, 0), "rw": (0, 1), "nosuid": (2, 0), "suid": (0, 2), "nodev": (4, 0), "dev": (0, 4),
        "noexec": (8, 0), "exec": (0, 8), "sync": (16, 0), "async": (0, 16), "noatime": (1024, 0), "atime": (0, 1024),
        "nodiratime": (2048, 0), "diratime": (0, 2048), "bind": (4096, 0), "rbind": (4096 | 16384, 0),
        "relatime": (1 << 21, 0), "norelatime": (0, 1 << 21), "strictatime": (1 << 24, 0), "nostrictatime": (0, 1 << 24),
    ]
    /// Propagation: MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE, each with MS_REC for the r- forms. As a
    /// mount option it is taken and left: every mount in the container is private already (its root is
    /// made rprivate); as linux.rootfsPropagation it is applied to the container's root.
    static let propagationFlags: [String: UInt] = [
        "private": 1 << 18, "rprivate": 1 << 18 | 16384, "slave": 1 << 19, "rslave": 1 << 19 | 16384,
        "shared": 1 << 20, "rshared": 1 << 20 | 16384, "unbindable": 1 << 17, "runbindable": 1 << 17 | 16384,
    ]

    static let rlimits: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
        "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
        "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]

    public init(bundle: String) throws {
        self.bundle = bundle
        let path = bundle + "/config.json"
        var r = try OCIConfig.object(file: path, at: "", limit: 4 << 20)
        var spec = ContainerSpec()
        _ = try r.string("ociVersion", required: true)
        r.skip("annotations")
        var process = try r.object("process", required: true)!
        try OCIConfig.readProcess(&process, into: &spec)

        var rootfs = try r.object("root", required: true)!
        let rootPath = try rootfs.string("path", required: true)!
        spec.rootfs = Files.absolute(rootPath, relativeTo: bundle)
        spec.readonlyRoot = try rootfs.bool("readonly") ?? false
        guard Files.isDirectory(spec.rootfs) else { throw rootfs.fail("path", "\(spec.rootfs) is not a directory") }
        try rootfs.finish()
        spec.hostname = try r.string("hostname")
        if var h = try r.object("hooks") {
            hooks = try OCIConfig.readHooks(&h)
            spec.startHooks = hooks["startContainer"] ?? []
        }

        for var m in try r.objects("mounts") {
            let destination = try m.string("destination", required: true)!
            guard destination.hasPrefix("/"), !destination.split(separator: "/").contains("..") else {
                throw m.fail("destination", "must be an absolute path without '..'")
            }
            let type = try m.string("type")
            var source = try m.string("source") ?? type ?? ""
            var flags: UInt = 0
            var data: [String] = []
            for option in try m.strings("options") {
                if let f = OCIConfig.mountFlags[option] {
                    flags = (flags | f.set) & ~f.clear
                } else if OCIConfig.propagationFlags[option] == nil {
                    data.append(option)
                }
            }
            if type == "cgroup" || type == "cgroup2" {
                guard cgroupMount == nil else { throw m.fail("type", "only one cgroup mount is supported") }
                cgroupMount = (spec.mounts.count, destination, flags & 1 != 0)
                try m.finish()
                continue
            }
            let bind = type == "bind" || type == nil || flags & 4096 != 0
            if bind && !source.hasPrefix("/") {
                source = Files.absolute(source, relativeTo: bundle)
            }
            spec.mounts.append(MountSpec(source: source, target: destination, type: bind ? nil : type,
                                         flags: bind ? (flags & ~1) | 4096 : flags, data: data.isEmpty ? nil : data.joined(separator: ","),
                                         bindReadonly: bind && flags & 1 != 0))
            try m.finish()
        }
        // berth makes /dev's device nodes itself on the tmpfs the bundle mounts there.
        spec.makeDev = spec.mounts.contains { $0.target == "/dev" && $0.type == "tmpfs" }

        var linux = try r.object("linux") ?? Reader(YAMLNode.emptyMapping, path: "linux", file: path)
        spec.namespaces = []
        for var n in try linux.objects("namespaces") {
            let type = try n.string("type", required: true)!
            guard let ns = Namespace(rawValue: type) else { throw n.fail("type", "unknown namespace type \(type)") }
            guard !spec.namespaces.contains(ns), !spec.joinNamespaces.contains(where: { $0.type == ns }) else {
                throw n.fail("type", "\(type) is listed twice")
            }
            if let path = try n.string("path") {
                guard ns != .user else { throw n.fail("path", "joining an existing user namespace is not supported") }
                guard path.hasPrefix("/") else { throw n.fail("path", "must be an absolute path") }
                spec.joinNamespaces.append((ns, path))
            } else {
                spec.namespaces.insert(ns)
            }
            try n.finish()
        }
        for key in ["uidMappings", "gidMappings"] {
            var mappings: [IDMapping] = []
            for var m in try linux.objects(key) {
                let inside = try m.uint32("containerID"), outside = try m.uint32("hostID"), size = try m.uint32("size")
                guard size > 0, UInt64(inside) + UInt64(size) <= 1 << 32, UInt64(outside) + UInt64(size) <= 1 << 32 else {
                    throw m.fail("size", "must be positive, and the range must fit in 32 bits")
                }
                try m.finish()
                mappings.append(IDMapping(containerID: inside, hostID: outside, size: size))
            }
            // The kernel's limit on lines of a map.
            if mappings.count > 340 { throw linux.fail(key, "at most 340 mappings") }
            if key == "uidMappings" { spec.uidMappings = mappings } else { spec.gidMappings = mappings }
        }
        if spec.namespaces.contains(.user) {
            // As runc: the container's root must be someone outside, who then owns what it creates.
            guard IDMapping.host(0, in: spec.uidMappings) != nil else { throw linux.fail("uidMappings", "a user namespace needs a mapping of uid 0") }
            guard IDMapping.host(0, in: spec.gidMappings) != nil else { throw linux.fail("gidMappings", "a user namespace needs a mapping of gid 0") }
            guard IDMapping.host(spec.uid, in: spec.uidMappings) != nil else { throw r.fail("process.user.uid", "\(spec.uid) is not mapped by linux.uidMappings") }
            for gid in [spec.gid] + spec.additionalGids where IDMapping.host(gid, in: spec.gidMappings) == nil {
                throw r.fail("process.user", "gid \(gid) is not mapped by linux.gidMappings")
            }
            // Entering another namespace needs privilege over it, which the new user namespace lacks.
            if let join = spec.joinNamespaces.first {
                throw linux.fail("namespaces", "joining the \(join.type.rawValue) namespace of another container together with a new user namespace is not supported")
            }
        } else if !spec.uidMappings.isEmpty || !spec.gidMappings.isEmpty {
            throw linux.fail(spec.uidMappings.isEmpty ? "gidMappings" : "uidMappings", "needs a user namespace in linux.namespaces")
        }
        for (key, value) in try linux.stringMap("sysctl") {
            // Only what the container's own namespaces hold: anything else would change the host.
            let ipc = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                       "kernel.shmmni", "kernel.shm_rmid_forced"].contains(key) || key.hasPrefix("fs.mqueue.")
            let needs: Namespace? = ipc ? .ipc : key.hasPrefix("net.") ? .network : ["kernel.hostname", "kernel.domainname"].contains(key) ? .uts : nil
            guard let needs else { throw linux.fail("sysctl", "\(key) is not namespaced: setting it would change the host") }
            guard spec.namespaces.contains(needs) else { throw linux.fail("sysctl", "\(key) needs a new \(needs.rawValue) namespace") }
            guard !key.contains("/"), !key.split(separator: ".").contains(".."), !value.contains("\n") else { throw linux.fail("sysctl", "\(key): malformed") }
            spec.sysctls.append((key, value))
        }
        for var d in try linux.objects("devices") {
            let path = try d.string("path", required: true)!
            guard path.hasPrefix("/dev/"), !path.split(separator: "/").contains("..") else { throw d.fail("path", "must be an absolute path under /dev without '..'") }
            let type = try d.string("type", required: true)!
            let kinds: [String: UInt32] = ["c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000]
            guard let kind = kinds[type] else { throw d.fail("type", "must be c, u, b or p") }
            var major: UInt32 = 0, minor: UInt32 = 0
            if type == "p" {
                // A FIFO has no device number; writers give one anyway (0, 0).
                _ = try d.int("major")
                _ = try d.int("minor")
            } else {
                major = try d.uint32("major")
                minor = try d.uint32("minor")
            }
            let mode = UInt32(try d.int("fileMode") ?? 0o666) & 0o7777
            spec.devices.append(DeviceNode(path: path, mode: kind | mode, major: major, minor: minor,
                                           uid: UInt32(try d.int("uid") ?? 0), gid: UInt32(try d.int("gid") ?? 0)))
            try d.finish()
        }
        // A node the config makes is one the container may use (after the resources' own rules).
        let nodeRules = spec.devices.compactMap { d -> DeviceRule? in
            let kind = d.mode & 0o170000
            guard kind == 0o020000 || kind == 0o060000 else { return nil }
            return DeviceRule(allow: true, type: kind == 0o060000 ? "b" : "c", major: Int64(d.major), minor: Int64(d.minor))
        }
        if let propagation = try linux.string("rootfsPropagation") {
            guard let flags = OCIConfig.propagationFlags[propagation] else {
                throw linux.fail("rootfsPropagation", "must be one of \(OCIConfig.propagationFlags.keys.sorted().joined(separator: ", "))")
            }
            spec.rootPropagation = flags
        }
        spec.maskedPaths = try linux.strings("maskedPaths")
        spec.readonlyPaths = try linux.strings("readonlyPaths")
        var limits = CgroupLimits()
        let cgroupsPath = try linux.string("cgroupsPath")
        if var resources = try linux.object("resources") {
            try OCIConfig.readResources(&resources, into: &limits)
        }
        limits.devices += nodeRules
        if let seccomp = try linux.object("seccomp") {
            spec.seccomp = try OCIConfig.seccomp(seccomp).compile(cacheDirectory: OCIConfig.seccompCache)
        }
        try linux.finish()
        // Without a mount namespace of its own the container chroots in the host's or the joined one, where
        // its root's propagation is not its own to set.
        if !spec.namespaces.contains(.mount) && spec.rootPropagation != 0 {
            throw linux.fail("rootfsPropagation", "needs a new mount namespace (linux.namespaces without a path)")
        }
        // As runc: the hostname belongs to a UTS namespace, the container's own or one it joins.
        if spec.hostname != nil && !spec.namespaces.contains(.uts) && !spec.joinNamespaces.contains(where: { $0.type == .uts }) {
            throw r.fail("hostname", "needs a uts namespace in linux.namespaces")
        }
        try r.finish()
        self.spec = spec
        self.limits = limits
        self.cgroupsPath = cgroupsPath
    }

    /// A `process` object: the container's (config.json), or one that `exec` starts (its --process file).
    static func readProcess(_ process: inout Reader, into spec: inout ContainerSpec) throws {
        spec.terminal = try process.bool("terminal") ?? false
        // The size of the terminal is for whoever holds its master (the console socket's owner).
        process.skip("consoleSize")
        if var user = try process.object("user") {
            spec.uid = UInt32(try user.int("uid") ?? 0)
            spec.gid = UInt32(try user.int("gid") ?? 0)
            spec.additionalGids = try user.ints("additionalGids").map { UInt32($0) }
            if let umask = try user.int("umask") {
                guard (0...0o777).contains(umask) else { throw user.fail("umask", "must be between 0 and 0777") }
                spec.umask = UInt32(umask)
            }
            try user.finish()
        }
        spec.args = try process.strings("args", required: true)
        if spec.args.isEmpty { throw process.fail("args", "must not be empty") }
        spec.env = try process.strings("env")
        spec.cwd = try process.string("cwd") ?? "/"
        if !spec.cwd.hasPrefix("/") { throw process.fail("cwd", "must be an absolute path") }
        if var caps = try process.object("capabilities") {
            func set(_ name: String) throws -> UInt64 {
                let names = try caps.strings(name)
                let (mask, unknown) = CapabilityNames.mask(names)
                if let unknown { throw caps.fail(name, "unknown capability \(unknown)") }
                return mask
            }
            spec.capabilities.bounding = try set("bounding")
            spec.capabilities.effective = try set("effective")
            spec.capabilities.permitted = try set("permitted")
            spec.capabilities.inheritable = try set("inheritable")
            spec.capabilities.ambient = try set("ambient")
            try caps.finish()
        }
        for var l in try process.objects("rlimits") {
            let type = try l.string("type", required: true)!
            guard let resource = OCIConfig.rlimits[type] else { throw l.fail("type", "unknown limit \(type)") }
            spec.rlimits.append((resource, try l.uint64("soft", required: true)!, try l.uint64("hard", required: true)!))
            try l.finish()
        }
        spec.noNewPrivileges = try process.bool("noNewPrivileges") ?? false
        if let adj = try process.int("oomScoreAdj") {
            guard (-1000...1000).contains(adj) else { throw process.fail("oomScoreAdj", "must be between -1000 and 1000") }
            spec.oomScoreAdj = Int32(adj)
        }
        try process.finish()
    }

    /// A `linux.resources` object (of a config, or of `update`'s --resources file).
    static func readResources(_ resources: inout Reader, into limits: inout CgroupLimits) throws {
        if var memory = try resources.object("memory") {
            if let l = try memory.int("limit") { limits.memoryBytes = Int64(l) }
            if let r = try memory.int("reservation") { limits.memoryReservation = Int64(r) }
            if let swap = try memory.int("swap") {
                if swap >= 0, let limit = limits.memoryBytes, limit >= 0, swap < limit {
                    throw memory.fail("swap", "is memory and swap together: it must be at least limit (\(limit))")
                }
                limits.memorySwap = Int64(swap)
            }
            if let v = try memory.int("swappiness") {
                guard (0...100).contains(v) else { throw memory.fail("swappiness", "must be between 0 and 100") }
                limits.memorySwappiness = UInt64(v)
            }
            limits.disableOOMKiller = try memory.bool("disableOOMKiller") ?? false
            if let t = try memory.int("kernelTCP") { limits.kernelTCPBytes = Int64(t) }
            if try memory.int("kernel") != nil {
                throw memory.fail("kernel", "kernel memory limits are gone from Linux (5.16 on); remove the field")
            }
            if try memory.bool("useHierarchy") == false { throw memory.fail("useHierarchy", "false is not supported (the kernel always uses the hierarchy)") }
            // Only `update` checks before lowering; creating has nothing to check.
            _ = try memory.bool("checkBeforeUpdate")
            try memory.finish()
        }
        if var io = try resources.object("blockIO") {
            func weight(_ r: inout Reader, _ key: String) throws -> UInt16? {
                guard let w = try r.int(key) else { return nil }
                guard (10...1000).contains(w) else { throw r.fail(key, "must be between 10 and 1000") }
                return UInt16(w)
            }
            limits.blkioWeight = try weight(&io, "weight")
            limits.blkioLeafWeight = try weight(&io, "leafWeight")
            for var d in try io.objects("weightDevice") {
                let major = try d.int("major", required: true)!, minor = try d.int("minor", required: true)!
                if let w = try weight(&d, "weight") { limits.blkioDevices.append(BlkioDeviceLimit(kind: "weight", major: Int64(major), minor: Int64(minor), value: UInt64(w))) }
                if try weight(&d, "leafWeight") != nil { throw d.fail("leafWeight", "per-device leaf weights are not supported") }
                try d.finish()
            }
            for (key, kind) in [("throttleReadBpsDevice", "read_bps"), ("throttleWriteBpsDevice", "write_bps"),
                                ("throttleReadIOPSDevice", "read_iops"), ("throttleWriteIOPSDevice", "write_iops")] {
                for var d in try io.objects(key) {
                    let major = try d.int("major", required: true)!, minor = try d.int("minor", required: true)!
                    let rate = try d.uint64("rate", required: true)!
                    limits.blkioDevices.append(BlkioDeviceLimit(kind: kind, major: Int64(major), minor: Int64(minor), value: rate))
                    try d.finish()
                }
            }
            try io.finish()
        }
        for var h in try resources.objects("hugepageLimits") {
            let size = try h.string("pageSize", required: true)!
            // "2MB", "1GB": the kernel's file names.
            guard size.count <= 8, size.hasSuffix("B"), size.dropLast(2).allSatisfy(\.isNumber), ["KB", "MB", "GB"].contains(String(size.suffix(2))) else {
                throw h.fail("pageSize", "must be a size such as 2MB or 1GB")
            }
            limits.hugepageLimits[size] = try h.uint64("limit", required: true)!
            try h.finish()
        }
        if var net = try resources.object("network") {
            if let id = try net.int("classID") { limits.netClassID = UInt32(truncatingIfNeeded: id) }
            for var p in try net.objects("priorities") {
                let name = try p.string("name", required: true)!
                guard !name.isEmpty, name.count < 16, !name.contains(where: { $0 == " " || $0 == "\n" || $0 == "/" }) else {
                    throw p.fail("name", "must be a network interface name")
                }
                limits.netPriorities[name] = try p.uint32("priority")
                try p.finish()
            }
            try net.finish()
        }
        if var cpu = try resources.object("cpu") {
            if let v = try cpu.int("shares") { limits.cpuShares = UInt64(v) }
            if let v = try cpu.int("quota") { limits.cpuQuota = Int64(v) }
            if let v = try cpu.int("period") { limits.cpuPeriod = UInt64(v) }
            for (key, value) in [("cpus", try cpu.string("cpus")), ("mems", try cpu.string("mems"))] {
                guard let value else { continue }
                // "0-3,6": anything else would be written into the cgroup file as it is.
                guard !value.isEmpty, value.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-" || $0 == ",") }) else {
                    throw cpu.fail(key, "must be a list of numbers and ranges such as 0-3,6")
                }
                if key == "cpus" { limits.cpusetCpus = value } else { limits.cpusetMems = value }
            }
            if let v = try cpu.uint64("realtimePeriod") { limits.cpuRealtimePeriod = v }
            if let v = try cpu.int("realtimeRuntime") { limits.cpuRealtimeRuntime = Int64(v) }
            try cpu.finish()
        }
        if var pids = try resources.object("pids") {
            if let v = try pids.int("limit", required: true) { limits.pidsMax = Int64(v) }
            try pids.finish()
        }
        // In order after the deny-all every container starts from; the last matching rule decides.
        for var d in try resources.objects("devices") {
            let type = try d.string("type") ?? "a"
            guard ["a", "c", "b"].contains(type) else { throw d.fail("type", "must be a, c or b") }
            let access = try d.string("access") ?? "rwm"
            guard !access.isEmpty, access.allSatisfy({ "rwm".contains($0) }) else { throw d.fail("access", "must be letters of rwm") }
            let major = try d.int("major"), minor = try d.int("minor")
            // -1 is "any" in some writers' configs, as it is in runc's.
            guard let allow = try d.bool("allow") else { throw d.fail("allow", "is required") }
            limits.devices.append(DeviceRule(allow: allow, type: type,
                                             major: major.flatMap { $0 < 0 ? nil : Int64($0) },
                                             minor: minor.flatMap { $0 < 0 ? nil : Int64($0) }, access: access))
            try d.finish()
        }
        try resources.finish()
    }

    /// `update --resources FILE` ("-": stdin): a linux.resources object.
    public static func resources(file: String) throws -> CgroupLimits {
        var r = try object(file: file == "-" ? "/dev/stdin" : file, at: "linux.resources", limit: 1 << 20)
        var limits = CgroupLimits()
        try readResources(&r, into: &limits)
        return limits
    }

    /// A `hooks` object: each kind a list of {path, args, env, timeout}.
    static func readHooks(_ r: inout Reader) throws -> [String: [Hook]] {
        var hooks: [String: [Hook]] = [:]
        for kind in hookKinds {
            for var h in try r.objects(kind) {
                let path = try h.string("path", required: true)!
                guard path.hasPrefix("/") else { throw h.fail("path", "must be an absolute path") }
                let timeout = try h.int("timeout")
                if let timeout, timeout <= 0 { throw h.fail("timeout", "must be a positive number of seconds") }
                hooks[kind, default: []].append(Hook(path: path, args: try h.strings("args"), env: try h.strings("env"), timeout: timeout))
                try h.finish()
            }
        }
        try r.finish()
        return hooks
    }

    /// Hooks saved by `ContainerManager.hooksJSON`, or none when the file is missing.
    public static func readHooks(file path: String) throws -> [String: [Hook]] {
        guard Files.exists(path) else { return [:] }
        var r = try object(file: path, at: "hooks", limit: 4 << 20)
        return try readHooks(&r)
    }

    /// The one JSON object of a file (JSON is YAML: the manifest parser gives line and column for every
    /// error), read as the object at `path` of a config.
    static func object(file: String, at path: String, limit: Int) throws -> Reader {
        guard let data = Files.read(file, limit: limit) else { throw RuntimeError("cannot read \(file) (or it is over \(limit >> 20) MiB)") }
        let documents: [YAMLNode]
        do {
            documents = try YAMLParser.parse(data, limits: OCIConfig.inputLimits)
        } catch {
            throw RuntimeError("\(file):\(error.mark.line):\(error.mark.column): \(error.message)")
        }
        guard documents.count == 1 else { throw RuntimeError("\(file): expected one JSON object") }
        return try Reader(documents[0], path: path, file: file)
    }

    /// The process of an `exec` --process file (the runtime spec's process object; as runc, nothing of the
    /// container's own process is taken into it).
    public static func process(file path: String) throws -> ContainerSpec {
        var r = try object(file: path, at: "process", limit: 1 << 20)
        var spec = ContainerSpec()
        try readProcess(&r, into: &spec)
        return spec
    }

    /// Seccomp actions by their names in profiles, given the rule's errno (EPERM when it names none). A list
    /// searched in order, not a dictionary: that one hashed every name at every start with a seccomp profile.
    static let seccompActionsByName: [(name: String, action: @Sendable (Int32) -> SeccompProfile.Action)] = [
        ("SCMP_ACT_ALLOW", { _ in .allow }), ("SCMP_ACT_ERRNO", { .errno($0) }), ("SCMP_ACT_KILL", { _ in .kill }),
        ("SCMP_ACT_KILL_PROCESS", { _ in .killProcess }), ("SCMP_ACT_KILL_THREAD", { _ in .kill }), ("SCMP_ACT_LOG", { _ in .log }),
        ("SCMP_ACT_TRACE", { .trace($0) }), ("SCMP_ACT_TRAP", { _ in .trap }),
    ]

    /// The seccomp actions `action` takes (the runtime's `features` lists them).
    static var seccompActions: [String] { seccompActionsByName.map(\.name).sorted() }

    static func action(_ r: inout Reader, _ key: String, errnoKey: String) throws -> SeccompProfile.Action {
        let name = try r.string(key, required: true)!
        let errno = try r.int(errnoKey)
        guard let action = seccompActionsByName.first(where: { $0.name == name })?.action else { throw r.fail(key, "unknown seccomp action \(name)") }
        return action(Int32(errno ?? Int(EPERM)))
    }

    static func seccomp(_ r: Reader) throws -> SeccompProfile {
        var r = r
        let defaultAction = try action(&r, "defaultAction", errnoKey: "defaultErrnoRet")
        _ = try r.strings("architectures")
        _ = try r.strings("flags")
        var rules: [SeccompProfile.Rule] = []
        for var s in try r.objects("syscalls") {
            let names = try s.strings("names", required: true)
            let a = try action(&s, "action", errnoKey: "errnoRet")
            var args: [SeccompProfile.Arg] = []
            for var ar in try s.objects("args") {
                args.append(SeccompProfile.Arg(index: UInt32(try ar.int("index", required: true)!), value: try ar.uint64("value", required: true)!,
                                               valueTwo: try ar.uint64("valueTwo") ?? 0, op: try ar.string("op", required: true)!))
                try ar.finish()
            }
            rules.append(SeccompProfile.Rule(names: names, action: a, args: args))
            try s.finish()
        }
        try r.finish()
        return SeccompProfile(defaultAction: defaultAction, rules: rules)
    }
}

/// Walks a JSON object of config.json, remembering which keys were read so that unknown ones are
/// reported. Errors name the file, the line and column, and the field.
struct Reader {
    let node: YAMLNode
    let pairs: [YAMLNode.Pair]
    let path: String
    let file: String
    var seen: Set<String> = []

    init(_ node: YAMLNode, path: String, file: String) throws {
        guard case .mapping(let pairs) = node.value else {
            throw Reader.error(file, node, "\(path.isEmpty ? "config.json" : path) must be an object")
        }
        self.node = node
        self.pairs = pairs
        self.path = path
        self.file = file
    }

    static func error(_ file: String, _ node: YAMLNode, _ message: String) -> RuntimeError {
        RuntimeError("\(file):\(node.mark.line):\(node.mark.column): \(message)")
    }

    func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// An error about a field of this object (nil: the object itself), placed at the field's value.
    func fail(_ key: String?, _ message: String) -> RuntimeError {
        guard let key else { return Reader.error(file, node, "\(path): \(message)") }
        let at = pairs.last(where: { $0.key.scalarText == key })?.value ?? node
        return Reader.error(file, at, "\(name(key)): \(message)")
    }

    mutating func skip(_ key: String) { seen.insert(key) }

    mutating func value(_ key: String, required: Bool) throws -> YAMLNode? {
        seen.insert(key)
        guard let v = pairs.last(where: { $0.key.scalarText == key })?.value, v.resolved != .null else {
            if required { throw Reader.error(file, node, "\(name(key)) is required") }
            return nil
        }
        return v
    }

    mutating func string(_ key: String, required: Bool = false) throws -> String? {
        guard let v = try value(key, required: required) else { return nil }
        guard case .string(let s)? = v.resolved else { throw Reader.error(file, v, "\(name(key)) must be a string") }
        return s
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = try value(key, required: false) else { return nil }
        guard case .bool(let b)? = v.resolved, v.scalarText == "true" || v.scalarText == "false" else {
            throw Reader.error(file, v, "\(name(key)) must be true or false")
        }
        return b
    }

    func intValue(_ v: YAMLNode, _ name: String) throws -> Int {
        guard case .int(let i)? = v.resolved else { throw Reader.error(file, v, "\(name) must be an integer") }
        return i
    }

    mutating func int(_ key: String, required: Bool = false) throws -> Int? {
        guard let v = try value(key, required: required) else { return nil }
        return try intValue(v, name(key))
    }

    /// A required id or count (0 ... 2^32-1).
    mutating func uint32(_ key: String) throws -> UInt32 {
        guard let v = try int(key, required: true), let u = UInt32(exactly: v) else { throw fail(key, "must be between 0 and 4294967295") }
        return u
    }

    /// Unsigned 64-bit values (rlimits, seccomp arguments) go past Int.max.
    mutating func uint64(_ key: String, required: Bool = false) throws -> UInt64? {
        guard let v = try value(key, required: required) else { return nil }
        guard case .scalar(let text, .plain) = v.value, let u = UInt64(text) else {
            throw Reader.error(file, v, "\(name(key)) must be an unsigned integer")
        }
        return u
    }

    mutating func array(_ key: String, required: Bool = false) throws -> [YAMLNode] {
        guard let v = try value(key, required: required) else { return [] }
        guard case .sequence(let items) = v.value else { throw Reader.error(file, v, "\(name(key)) must be a list") }
        return items
    }

    mutating func strings(_ key: String, required: Bool = false) throws -> [String] {
        try array(key, required: required).enumerated().map { i, item in
            guard case .string(let s)? = item.resolved else { throw Reader.error(file, item, "\(name(key))[\(i)] must be a string") }
            return s
        }
    }

    mutating func ints(_ key: String) throws -> [Int] {
        try array(key).enumerated().map { i, item in try intValue(item, "\(name(key))[\(i)]") }
    }

    /// An object of strings (linux.sysctl), in file order.
    mutating func stringMap(_ key: String) throws -> [(String, String)] {
        guard let v = try value(key, required: false) else { return [] }
        guard case .mapping(let pairs) = v.value else { throw Reader.error(file, v, "\(name(key)) must be an object") }
        return try pairs.map { pair in
            guard let k = pair.key.scalarText, case .string(let s)? = pair.value.resolved else {
                throw Reader.error(file, pair.value, "\(name(key)).\(pair.key.scalarText ?? "?") must be a string")
            }
            return (k, s)
        }
    }

    mutating func objects(_ key: String) throws -> [Reader] {
        try array(key).enumerated().map { i, item in try Reader(item, path: "\(name(key))[\(i)]", file: file) }
    }

    mutating func object(_ key: String, required: Bool = false) throws -> Reader? {
        guard let v = try value(key, required: required) else { return nil }
        return try Reader(v, path: name(key), file: file)
    }

    /// A field the runtime spec defines and berth did not read is an error (berth would not honour it); one
    /// the spec does not define is ignored, as the spec requires. Objects not listed take no unknown field.
    func finish() throws {
        // Most objects have only fields berth reads: the spec's table is built only for one that has others.
        guard pairs.contains(where: { !seen.contains($0.key.scalarText ?? "") }) else { return }
        // "linux.devices[2]" → "linux.devices[]"
        var pattern: [UInt8] = [], inIndex = false
        for c in path.utf8 {
            if c == UInt8(ascii: "[") { inIndex = true; pattern.append(c) } else if c == UInt8(ascii: "]") { inIndex = false; pattern.append(c) } else if !inIndex { pattern.append(c) }
        }
        let known = Reader.specFields[String(decoding: pattern, as: UTF8.self)]
        for pair in pairs where !seen.contains(pair.key.scalarText ?? "") {
            if let known, !known.contains(pair.key.scalarText ?? "") { continue }
            throw Reader.error(file, pair.key, "\(name(pair.key.scalarText ?? "?")) is not supported by berth")
        }
    }

    static let hookFields: Set<String> = ["path", "args", "env", "timeout"]

    /// The fields of the runtime spec (1.1) in the objects berth reads, by path ("" is the top).
    static let specFields: [String: Set<String>] = [
        "": ["ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks", "annotations", "linux",
             "solaris", "windows", "vm", "zos"],
        "process": ["terminal", "consoleSize", "cwd", "env", "args", "commandLine", "rlimits", "apparmorProfile",
                    "capabilities", "noNewPrivileges", "oomScoreAdj", "selinuxLabel", "user", "scheduler", "ioPriority",
                    "execCPUAffinity"],
        "process.user": ["uid", "gid", "umask", "additionalGids", "username"],
        "process.capabilities": ["bounding", "effective", "permitted", "inheritable", "ambient"],
        "process.rlimits[]": ["type", "soft", "hard"],
        "root": ["path", "readonly"],
        "hooks": Set(OCIConfig.hookKinds),
        "hooks.prestart[]": hookFields, "hooks.createRuntime[]": hookFields, "hooks.createContainer[]": hookFields,
        "hooks.startContainer[]": hookFields, "hooks.poststart[]": hookFields, "hooks.poststop[]": hookFields,
        "mounts[]": ["destination", "source", "options", "type", "uidMappings", "gidMappings"],
        "linux": ["namespaces", "uidMappings", "gidMappings", "timeOffsets", "devices", "netDevices", "cgroupsPath",
                  "rootfsPropagation", "seccomp", "sysctl", "resources", "intelRdt", "personality", "unified",
                  "maskedPaths", "readonlyPaths", "mountLabel"],
        "linux.namespaces[]": ["type", "path"],
        "linux.uidMappings[]": ["containerID", "hostID", "size"],
        "linux.gidMappings[]": ["containerID", "hostID", "size"],
        "linux.devices[]": ["type", "path", "major", "minor", "fileMode", "uid", "gid"],
        "linux.resources": ["devices", "memory", "cpu", "blockIO", "hugepageLimits", "network", "pids", "rdma", "unified"],
        "linux.resources.memory": ["limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller",
                                   "useHierarchy", "checkBeforeUpdate"],
        "linux.resources.cpu": ["shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems", "idle"],
        "linux.resources.pids": ["limit"],
        "linux.resources.blockIO": ["weight", "leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                                    "throttleReadIOPSDevice", "throttleWriteIOPSDevice"],
        "linux.resources.blockIO.weightDevice[]": ["major", "minor", "weight", "leafWeight"],
        "linux.resources.blockIO.throttleReadBpsDevice[]": ["major", "minor", "rate"],
        "linux.resources.blockIO.throttleWriteBpsDevice[]": ["major", "minor", "rate"],
        "linux.resources.blockIO.throttleReadIOPSDevice[]": ["major", "minor", "rate"],
        "linux.resources.blockIO.throttleWriteIOPSDevice[]": ["major", "minor", "rate"],
        "linux.resources.hugepageLimits[]": ["pageSize", "limit"],
        "linux.resources.network": ["classID", "priorities"],
        "linux.resources.network.priorities[]": ["name", "priority"],
        "linux.resources.devices[]": ["allow", "type", "major", "minor", "access"],
        "linux.seccomp": ["defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath", "listenerMetadata", "syscalls"],
        "linux.seccomp.syscalls[]": ["names", "action", "errnoRet", "args"],
        "linux.seccomp.syscalls[].args[]": ["index", "value", "valueTwo", "op"],
    ]
}

/// What `features` reports (the runtime spec's features document): what a config may ask of this runtime.
public enum RuntimeFeatures {
    public static var json: [String: Any] {
        #if arch(x86_64)
        let archs = ["SCMP_ARCH_X86_64"]
        #elseif arch(arm64)
        let archs = ["SCMP_ARCH_AARCH64"]
        #else
        let archs: [String] = []
        #endif
        return [
            "ociVersionMin": "1.0.0",
            "ociVersionMax": "1.1.0",
            "hooks": OCIConfig.hookKinds,
            "mountOptions": (Array(OCIConfig.mountFlags.keys) + Array(OCIConfig.propagationFlags.keys)).sorted(),
            "linux": [
                "namespaces": Namespace.allCases.map(\.rawValue).sorted(),
                "capabilities": CapabilityNames.numbers.sorted { $0.value < $1.value }.map(\.key),
                "cgroup": ["v1": true, "v2": true, "systemd": false, "systemdUser": false],
                "seccomp": ["enabled": true, "actions": OCIConfig.seccompActions, "operators": SeccompProfile.operators, "archs": archs],
                "apparmor": ["enabled": false],
                "selinux": ["enabled": false],
            ] as [String: Any],
        ]
    }
}
