import BerthLinux
#if canImport(Glibc)
import Glibc
#endif

/// berth's defaults for a new bundle (`berth runtime spec`), which the node agent uses too: Docker's 14
/// capabilities, no_new_privs, Docker's masked and read-only paths, the default seccomp profile,
/// pids.max 4096 and an explicit RLIMIT_NOFILE.
public enum DefaultSpec {
    public static let maskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    public static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// Soft 1024 (what select-based programs expect) and the hard limit this process may grant: raising
    /// it needs CAP_SYS_RESOURCE, which not every host gives even to root.
    static var nofile: (soft: UInt64, hard: UInt64) {
        var l = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        let hard = min(UInt64(l.rlim_max), 1_048_576)
        return (min(1024, hard), hard)
    }

    /// Where `init` is bind-mounted: /dev is the runtime's own tmpfs, so nothing is written to the rootfs.
    public static let initPath = "/dev/init"

    /// With `initBinary` (the host path of berth-init), the process runs under it: PID 1 then forwards signals
    /// and reaps orphans, which a program written for a normal process does not.
    public static func config(args: [String] = ["sh"], rootfs: String = "rootfs", initBinary: String? = nil) -> [String: Any] {
        let caps = CapabilityNames.dockerDefault
        let nofile = nofile
        var mounts: [[String: Any]] = [
            ["destination": "/proc", "type": "proc", "source": "proc"],
            ["destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
            ["destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]],
            ["destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]],
            ["destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]],
            ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]],
        ]
        var args = args
        if let initBinary {
            mounts.append(["destination": initPath, "type": "bind", "source": initBinary, "options": ["bind", "ro", "nosuid", "nodev"]])
            args = [initPath, "--"] + args
        }
        return [
            "ociVersion": "1.0.2",
            "process": [
                "terminal": false,
                "user": ["uid": 0, "gid": 0],
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": "/",
                "capabilities": ["bounding": caps, "effective": caps, "permitted": caps],
                "rlimits": [["type": "RLIMIT_NOFILE", "hard": nofile.hard, "soft": nofile.soft]],
                "noNewPrivileges": true,
            ] as [String: Any],
            "root": ["path": rootfs, "readonly": true],
            "hostname": "berth",
            "mounts": mounts,
            "linux": [
                "namespaces": [["type": "pid"], ["type": "network"], ["type": "ipc"], ["type": "uts"], ["type": "mount"]],
                "maskedPaths": maskedPaths,
                "readonlyPaths": readonlyPaths,
                "resources": ["pids": ["limit": 4096]],
                "seccomp": SeccompProfile.berthDefault().ociJSON,
            ] as [String: Any],
        ]
    }
}
