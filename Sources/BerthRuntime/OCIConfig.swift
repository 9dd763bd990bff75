import BerthLinux
import Foundation

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

    /// Compiled seccomp filters, by profile (cleared with the machine's /run).
    public static let seccompCache = "/run/berth/seccomp"

    static let mountFlags: [String: (set: UInt, clear: UInt)] = [
        "ro": (1, 0), "rw": (0, 1), "nosuid": (2, 0), "suid": (0, 2), "nodev": (4, 0), "dev": (0, 4),
        "noexec": (8, 0), "exec": (0, 8), "sync": (16, 0), "async": (0, 16), "noatime": (1024, 0), "atime": (0, 1024),
        "nodiratime": (2048, 0), "diratime": (0, 2048), "bind": (4096, 0), "rbind": (4096 | 16384, 0),
        "relatime": (1 << 21, 0), "norelatime": (0, 1 << 21), "strictatime": (1 << 24, 0), "nostrictatime": (0, 1 << 24),
    ]
    /// Propagation options: every mount in the container is private already (its root is made rprivate).
    static let propagation: Set<String> = ["private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"]

    static let rlimits: [String: Int32] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
        "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
        "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]

    public init(bundle: String) throws {
        self.bundle = bundle
        let path = bundle + "/config.json"
        guard let data = FileManager.default.contents(atPath: path) else { throw RuntimeError("cannot read \(path)") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RuntimeError("\(path) is not a JSON object")
        }
        var r = Reader(root, path: "")
        var spec = ContainerSpec()
        _ = try r.string("ociVersion", required: true)
        r.skip("annotations")
        var process = try r.object("process", required: true)!
        if try process.bool("terminal") == true {
            throw RuntimeError("process.terminal: true is not supported; set it to false (stdio is passed through)")
        }
        if var user = try process.object("user") {
            spec.uid = UInt32(try user.int("uid") ?? 0)
            spec.gid = UInt32(try user.int("gid") ?? 0)
            spec.additionalGids = try (user.array("additionalGids") ?? []).map { UInt32(try Reader.intValue($0, "process.user.additionalGids")) }
            try user.finish()
        }
        spec.args = try process.strings("args", required: true)
        if spec.args.isEmpty { throw RuntimeError("process.args must not be empty") }
        spec.env = try process.strings("env")
        spec.cwd = try process.string("cwd") ?? "/"
        if !spec.cwd.hasPrefix("/") { throw RuntimeError("process.cwd must be an absolute path") }
        if var caps = try process.object("capabilities") {
            func set(_ name: String) throws -> UInt64 {
                let names = try caps.strings(name)
                let (mask, unknown) = CapabilityNames.mask(names)
                if let unknown { throw RuntimeError("process.capabilities.\(name): unknown capability \(unknown)") }
                return mask
            }
            spec.capabilities.bounding = try set("bounding")
            spec.capabilities.effective = try set("effective")
            spec.capabilities.permitted = try set("permitted")
            spec.capabilities.inheritable = try set("inheritable")
            spec.capabilities.ambient = try set("ambient")
            try caps.finish()
        }
        for (i, item) in try (process.array("rlimits") ?? []).enumerated() {
            guard let dict = item as? [String: Any] else { throw RuntimeError("process.rlimits[\(i)] must be an object") }
            var l = Reader(dict, path: "process.rlimits[\(i)]")
            let type = try l.string("type", required: true)!
            guard let resource = OCIConfig.rlimits[type] else { throw RuntimeError("process.rlimits[\(i)].type: unknown limit \(type)") }
            spec.rlimits.append((resource, UInt64(try l.int("soft", required: true)!), UInt64(try l.int("hard", required: true)!)))
            try l.finish()
        }
        spec.noNewPrivileges = try process.bool("noNewPrivileges") ?? false
        try process.finish()

        var rootfs = try r.object("root", required: true)!
        let rootPath = try rootfs.string("path", required: true)!
        spec.rootfs = rootPath.hasPrefix("/") ? rootPath : URL(fileURLWithPath: bundle).appendingPathComponent(rootPath).standardizedFileURL.path
        spec.readonlyRoot = try rootfs.bool("readonly") ?? false
        try rootfs.finish()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: spec.rootfs, isDirectory: &isDir), isDir.boolValue else {
            throw RuntimeError("root.path: \(spec.rootfs) is not a directory")
        }
        spec.hostname = try r.string("hostname")

        for (i, item) in try (r.array("mounts") ?? []).enumerated() {
            guard let dict = item as? [String: Any] else { throw RuntimeError("mounts[\(i)] must be an object") }
            var m = Reader(dict, path: "mounts[\(i)]")
            let destination = try m.string("destination", required: true)!
            guard destination.hasPrefix("/"), !destination.split(separator: "/").contains("..") else {
                throw RuntimeError("mounts[\(i)].destination must be an absolute path without '..'")
            }
            var type = try m.string("type")
            var source = try m.string("source") ?? type ?? ""
            var flags: UInt = 0
            var data: [String] = []
            for option in try m.strings("options") {
                if let f = OCIConfig.mountFlags[option] {
                    flags = (flags | f.set) & ~f.clear
                } else if !OCIConfig.propagation.contains(option) {
                    data.append(option)
                }
            }
            if type == "cgroup" || type == "cgroup2" {
                // berth does not delegate cgroups to containers yet: the path exists but shows nothing.
                type = "tmpfs"
                source = "cgroup"
                flags |= 1
                data = ["mode=755", "size=4k"]
            }
            let bind = type == "bind" || type == nil || flags & 4096 != 0
            if bind && !source.hasPrefix("/") {
                source = URL(fileURLWithPath: bundle).appendingPathComponent(source).standardizedFileURL.path
            }
            spec.mounts.append(MountSpec(source: source, target: destination, type: bind ? nil : type,
                                         flags: bind ? (flags & ~1) | 4096 : flags, data: data.isEmpty ? nil : data.joined(separator: ","),
                                         bindReadonly: bind && flags & 1 != 0))
            try m.finish()
        }
        // berth makes /dev's device nodes itself on the tmpfs the bundle mounts there.
        spec.makeDev = spec.mounts.contains { $0.target == "/dev" && $0.type == "tmpfs" }

        var linux = try r.object("linux") ?? Reader([:], path: "linux")
        spec.namespaces = []
        for (i, item) in try (linux.array("namespaces") ?? []).enumerated() {
            guard let dict = item as? [String: Any] else { throw RuntimeError("linux.namespaces[\(i)] must be an object") }
            var n = Reader(dict, path: "linux.namespaces[\(i)]")
            let type = try n.string("type", required: true)!
            if try n.string("path") != nil {
                throw RuntimeError("linux.namespaces[\(i)].path: joining an existing namespace is not supported yet")
            }
            guard let ns = Namespace(rawValue: type), ns != .user, ns != .cgroup else {
                throw RuntimeError("linux.namespaces[\(i)].type: \(type) namespaces are not supported yet")
            }
            spec.namespaces.insert(ns)
            try n.finish()
        }
        spec.maskedPaths = try linux.strings("maskedPaths")
        spec.readonlyPaths = try linux.strings("readonlyPaths")
        var limits = CgroupLimits()
        let cgroupsPath = try linux.string("cgroupsPath")
        if var resources = try linux.object("resources") {
            if var memory = try resources.object("memory") {
                if let l = try memory.int("limit") { limits.memoryBytes = Int64(l) }
                try memory.finish()
            }
            if var cpu = try resources.object("cpu") {
                if let v = try cpu.int("shares") { limits.cpuShares = UInt64(v) }
                if let v = try cpu.int("quota") { limits.cpuQuota = Int64(v) }
                if let v = try cpu.int("period") { limits.cpuPeriod = UInt64(v) }
                try cpu.finish()
            }
            if var pids = try resources.object("pids") {
                if let v = try pids.int("limit", required: true) { limits.pidsMax = Int64(v) }
                try pids.finish()
            }
            // Only the deny-all device rule runc writes by default: berth's /dev holds only safe devices anyway.
            for (i, item) in try (resources.array("devices") ?? []).enumerated() {
                let d = item as? [String: Any] ?? [:]
                guard d["allow"] as? Bool == false, (d["access"] as? String) == "rwm", d["type"] == nil || d["type"] as? String == "a",
                      d["major"] == nil, d["minor"] == nil else {
                    throw RuntimeError("linux.resources.devices[\(i)]: device cgroup rules other than deny-all are not supported yet")
                }
            }
            try resources.finish()
        }
        if let seccomp = try linux.object("seccomp") {
            spec.seccomp = try OCIConfig.seccomp(seccomp).compile(cacheDirectory: OCIConfig.seccompCache)
        }
        try linux.finish()
        if !spec.namespaces.contains(.mount) { throw RuntimeError("linux.namespaces: a mount namespace is required") }
        try r.finish()
        self.spec = spec
        self.limits = limits
        self.cgroupsPath = cgroupsPath
    }

    static func action(_ name: String, errno: Int?, path: String) throws -> SeccompProfile.Action {
        switch name {
        case "SCMP_ACT_ALLOW": return .allow
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return .kill
        case "SCMP_ACT_KILL_PROCESS": return .killProcess
        case "SCMP_ACT_TRAP": return .trap
        case "SCMP_ACT_LOG": return .log
        case "SCMP_ACT_ERRNO": return .errno(Int32(errno ?? Int(EPERM)))
        case "SCMP_ACT_TRACE": return .trace(Int32(errno ?? Int(EPERM)))
        default: throw RuntimeError("\(path): unknown seccomp action \(name)")
        }
    }

    static func seccomp(_ r: Reader) throws -> SeccompProfile {
        var r = r
        let defaultAction = try action(try r.string("defaultAction", required: true)!, errno: try r.int("defaultErrnoRet"),
                                       path: "linux.seccomp.defaultAction")
        _ = try r.array("architectures")
        _ = try r.array("flags")
        var rules: [SeccompProfile.Rule] = []
        for (i, item) in try (r.array("syscalls") ?? []).enumerated() {
            guard let dict = item as? [String: Any] else { throw RuntimeError("linux.seccomp.syscalls[\(i)] must be an object") }
            var s = Reader(dict, path: "linux.seccomp.syscalls[\(i)]")
            let names = try s.strings("names", required: true)
            let a = try action(try s.string("action", required: true)!, errno: try s.int("errnoRet"), path: "linux.seccomp.syscalls[\(i)].action")
            var args: [SeccompProfile.Arg] = []
            for (j, arg) in try (s.array("args") ?? []).enumerated() {
                guard let ad = arg as? [String: Any] else { throw RuntimeError("linux.seccomp.syscalls[\(i)].args[\(j)] must be an object") }
                var ar = Reader(ad, path: "linux.seccomp.syscalls[\(i)].args[\(j)]")
                args.append(SeccompProfile.Arg(index: UInt32(try ar.int("index", required: true)!), value: UInt64(try ar.int("value", required: true)!),
                                               valueTwo: UInt64(try ar.int("valueTwo") ?? 0), op: try ar.string("op", required: true)!))
                try ar.finish()
            }
            s.skip("comment")
            s.skip("includes")
            s.skip("excludes")
            rules.append(SeccompProfile.Rule(names: names, action: a, args: args))
            try s.finish()
        }
        try r.finish()
        return SeccompProfile(defaultAction: defaultAction, rules: rules)
    }
}

/// Walks a JSON object, remembering which keys were read so that unknown ones are reported.
struct Reader {
    let dict: [String: Any]
    let path: String
    var seen: Set<String> = []

    init(_ dict: [String: Any], path: String) {
        self.dict = dict
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    mutating func skip(_ key: String) { seen.insert(key) }

    mutating func value(_ key: String, required: Bool) throws -> Any? {
        seen.insert(key)
        guard let v = dict[key], !(v is NSNull) else {
            if required { throw RuntimeError("\(name(key)) is required") }
            return nil
        }
        return v
    }

    mutating func string(_ key: String, required: Bool = false) throws -> String? {
        guard let v = try value(key, required: required) else { return nil }
        guard let s = v as? String else { throw RuntimeError("\(name(key)) must be a string") }
        return s
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = try value(key, required: false) else { return nil }
        guard let b = v as? Bool else { throw RuntimeError("\(name(key)) must be true or false") }
        return b
    }

    static func intValue(_ v: Any, _ name: String) throws -> Int {
        guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) else { throw RuntimeError("\(name) must be an integer") }
        return i
    }

    mutating func int(_ key: String, required: Bool = false) throws -> Int? {
        guard let v = try value(key, required: required) else { return nil }
        return try Reader.intValue(v, name(key))
    }

    mutating func array(_ key: String) throws -> [Any]? {
        guard let v = try value(key, required: false) else { return nil }
        guard let a = v as? [Any] else { throw RuntimeError("\(name(key)) must be a list") }
        return a
    }

    mutating func strings(_ key: String, required: Bool = false) throws -> [String] {
        guard let v = try value(key, required: required) else { return [] }
        guard let a = v as? [String] else { throw RuntimeError("\(name(key)) must be a list of strings") }
        return a
    }

    mutating func object(_ key: String, required: Bool = false) throws -> Reader? {
        guard let v = try value(key, required: required) else { return nil }
        guard let d = v as? [String: Any] else { throw RuntimeError("\(name(key)) must be an object") }
        return Reader(d, path: name(key))
    }

    func finish() throws {
        if let unknown = dict.keys.filter({ !seen.contains($0) }).sorted().first {
            throw RuntimeError("\(name(unknown)) is not supported by berth")
        }
    }
}
