import CSeccomp
#if canImport(Glibc)
import Glibc
#endif

extension SeccompProfile {
    /// Syscalls Docker's default profile refuses (as its documentation lists them), with the few Linux
    /// added since that are as dangerous; kept as berth's own list.
    public static let blockedByDefault: Set<String> = [
        "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module", "finit_module",
        "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load",
        "keyctl", "lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at",
        "nfsservctl", "open_by_handle_at", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "perf_event_open",
        "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl", "quotactl_fd",
        "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapon", "swapoff", "sysfs",
        "_sysctl", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
        "clone", "clone3", "io_uring_setup", "io_uring_enter", "io_uring_register", "personality",
    ]

    /// personality(2) values Docker's profile lets through: Linux, UNAME26, READ_IMPLIES_EXEC combinations
    /// and the query (0xffffffff); the rest (ADDR_NO_RANDOMIZE, ...) weaken the process.
    static let allowedPersonalities: [UInt64] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff]

    /// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
    static let namespaceCloneFlags: UInt64 = 0x7E02_0000

    /// berth's default profile, equivalent to Docker's: every syscall this kernel's architecture has is
    /// allowed except the blocked ones; anything unknown gets EPERM; clone only without namespace flags;
    /// clone3 gets ENOSYS so that libcs fall back to clone, where the flags can be checked; io_uring is
    /// refused (its operations bypass the filter) and personality takes only Docker's values.
    public static func berthDefault() -> SeccompProfile {
        var allowed: [String] = []
        for nr in Int32(0)..<1024 {
            guard let name = seccomp_syscall_resolve_num_arch(UInt32(SCMP_ARCH_NATIVE), nr) else { continue }
            defer { free(name) }
            let n = String(cString: name)
            if !blockedByDefault.contains(n) { allowed.append(n) }
        }
        return SeccompProfile(defaultAction: .errno(EPERM), rules: [
            Rule(names: allowed.sorted(), action: .allow),
            Rule(names: ["clone"], action: .allow,
                 args: [Arg(index: 0, value: namespaceCloneFlags, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ")]),
            Rule(names: ["clone3"], action: .errno(ENOSYS)),
        ] + allowedPersonalities.map { Rule(names: ["personality"], action: .allow, args: [Arg(index: 0, value: $0, op: "SCMP_CMP_EQ")]) })
    }

    /// The profile in config.json's form (`linux.seccomp`).
    public var ociJSON: [String: Any] {
        func action(_ a: Action) -> (String, Int32?) {
            switch a {
            case .allow: return ("SCMP_ACT_ALLOW", nil)
            case .kill: return ("SCMP_ACT_KILL", nil)
            case .killProcess: return ("SCMP_ACT_KILL_PROCESS", nil)
            case .trap: return ("SCMP_ACT_TRAP", nil)
            case .log: return ("SCMP_ACT_LOG", nil)
            case .errno(let e): return ("SCMP_ACT_ERRNO", e)
            case .trace(let t): return ("SCMP_ACT_TRACE", t)
            }
        }
        let (defaultName, defaultErrno) = action(defaultAction)
        var out: [String: Any] = ["defaultAction": defaultName]
        if let defaultErrno { out["defaultErrnoRet"] = Int(defaultErrno) }
        out["syscalls"] = rules.map { r -> [String: Any] in
            let (name, errno) = action(r.action)
            var d: [String: Any] = ["names": r.names, "action": name]
            if let errno { d["errnoRet"] = Int(errno) }
            if !r.args.isEmpty {
                d["args"] = r.args.map { ["index": Int($0.index), "value": $0.value, "valueTwo": $0.valueTwo, "op": $0.op] as [String: Any] }
            }
            return d
        }
        return out
    }
}
