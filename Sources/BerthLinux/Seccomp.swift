import CBerthLinux
import CSeccomp
#if canImport(Glibc)
import Glibc
#endif

/// A seccomp filter compiled by libseccomp into BPF instructions, ready to load in the child.
public struct SeccompProgram: Sendable {
    /// `struct sock_filter` instructions (8 bytes each).
    public let instructions: [UInt8]
    public var count: Int { instructions.count / 8 }
}

/// A seccomp profile in the OCI runtime-spec's form.
public struct SeccompProfile: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        case allow, kill, killProcess, trap, log
        case errno(Int32)
        case trace(Int32)
    }

    public struct Rule: Sendable, Hashable {
        public var names: [String]
        public var action: Action
        /// (index, value, valueTwo, op) with op one of SCMP_CMP_* names.
        public var args: [Arg]
        public init(names: [String], action: Action, args: [Arg] = []) {
            self.names = names
            self.action = action
            self.args = args
        }
    }

    public struct Arg: Sendable, Hashable {
        public var index: UInt32
        public var value: UInt64
        public var valueTwo: UInt64
        public var op: String
        public init(index: UInt32, value: UInt64, valueTwo: UInt64 = 0, op: String) {
            self.index = index
            self.value = value
            self.valueTwo = valueTwo
            self.op = op
        }
    }

    public var defaultAction: Action
    public var rules: [Rule]

    public init(defaultAction: Action, rules: [Rule]) {
        self.defaultAction = defaultAction
        self.rules = rules
    }

    static func raw(_ a: Action) -> UInt32 {
        switch a {
        case .allow: return 0x7fff_0000
        case .kill: return 0x0000_0000
        case .killProcess: return 0x8000_0000
        case .trap: return 0x0003_0000
        case .log: return 0x7ffc_0000
        case .errno(let e): return 0x0005_0000 | (UInt32(e) & 0xffff)
        case .trace(let t): return 0x7ff0_0000 | (UInt32(t) & 0xffff)
        }
    }

    /// The comparison operators of a rule's arguments, by their names in profiles.
    static let operatorsByName: [String: scmp_compare] = [
        "SCMP_CMP_NE": SCMP_CMP_NE, "SCMP_CMP_LT": SCMP_CMP_LT, "SCMP_CMP_LE": SCMP_CMP_LE, "SCMP_CMP_EQ": SCMP_CMP_EQ,
        "SCMP_CMP_GE": SCMP_CMP_GE, "SCMP_CMP_GT": SCMP_CMP_GT, "SCMP_CMP_MASKED_EQ": SCMP_CMP_MASKED_EQ,
    ]

    /// The operators `op` takes (the runtime's `features` lists them).
    public static var operators: [String] { operatorsByName.keys.sorted() }

    static func op(_ name: String) -> scmp_compare? { operatorsByName[name] }

    /// A stable key for the compiled form: FNV-1a over a canonical text of the profile.
    public var cacheKey: String {
        // Hashed as it goes (no text built: a start reads Docker's profile of some 400 names).
        var h: UInt64 = 0xcbf29ce484222325
        func add(_ text: String) {
            var text = text
            text.withUTF8 { for b in $0 { h = (h ^ UInt64(b)) &* 0x100000001b3 } }
        }
        func add<N: BinaryInteger>(_ n: N) { add(String(n)) }
        add(SeccompProfile.raw(defaultAction))
        add("|")
        for r in rules {
            add(SeccompProfile.raw(r.action))
            add(":")
            for (i, name) in r.names.enumerated() {
                if i > 0 { add(",") }
                add(name)
            }
            add(":")
            for (i, a) in r.args.enumerated() {
                if i > 0 { add(",") }
                add(a.index); add("/"); add(a.value); add("/"); add(a.valueTwo); add("/"); add(a.op)
            }
            add(";")
        }
        return String(h, radix: 16)
    }

    /// Compiles once per profile: the BPF is kept under `cacheDirectory` by `cacheKey` and read back next time.
    public func compile(cacheDirectory: String) throws(LinuxError) -> SeccompProgram {
        let path = cacheDirectory + "/" + cacheKey + ".bpf"
        if let data = Files.read(path, limit: 1 << 20), !data.isEmpty, data.count % 8 == 0 {
            return SeccompProgram(instructions: data)
        }
        let program = try compile()
        try? Files.makeDirectories(cacheDirectory, mode: 0o700)
        try? Files.write(program.instructions, to: path, mode: 0o600)
        return program
    }

    /// Compiles for the native architecture. Unknown syscall names are skipped (as runc does: a profile
    /// lists syscalls of many kernels); an unknown comparison is an error.
    public func compile() throws(LinuxError) -> SeccompProgram {
        guard let ctx = seccomp_init(SeccompProfile.raw(defaultAction)) else {
            throw LinuxError(stage: "seccomp", syscall: "seccomp_init", errno: EINVAL)
        }
        defer { seccomp_release(ctx) }
        for rule in rules where rule.action != defaultAction {
            for name in rule.names {
                let nr = seccomp_syscall_resolve_name(name)
                if nr == __NR_SCMP_ERROR { continue }
                var conditions: [scmp_arg_cmp] = []
                for a in rule.args {
                    guard let op = SeccompProfile.op(a.op) else {
                        throw LinuxError(stage: "seccomp", syscall: "rule", path: "\(name): unknown comparison \(a.op)", errno: EINVAL)
                    }
                    conditions.append(scmp_arg_cmp(arg: a.index, op: op, datum_a: a.value, datum_b: a.valueTwo))
                }
                let rc = conditions.withUnsafeBufferPointer {
                    seccomp_rule_add_array(ctx, SeccompProfile.raw(rule.action), nr, UInt32($0.count), $0.baseAddress)
                }
                if rc < 0 { throw LinuxError(stage: "seccomp", syscall: "seccomp_rule_add", path: name, errno: -rc) }
            }
        }
        // libseccomp 2.5 exports to a file descriptor only: a memfd keeps it in memory.
        let fd = berth_memfd("berth-seccomp")
        guard fd >= 0 else { throw LinuxError(stage: "seccomp", syscall: "memfd_create", errno: errno) }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        if rc < 0 { throw LinuxError(stage: "seccomp", syscall: "seccomp_export_bpf", errno: -rc) }
        let size = Int(lseek(fd, 0, SEEK_END))
        lseek(fd, 0, SEEK_SET)
        var bytes = [UInt8](repeating: 0, count: size)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        guard n == size else { throw LinuxError(stage: "seccomp", syscall: "pread", errno: errno) }
        return SeccompProgram(instructions: bytes)
    }
}
