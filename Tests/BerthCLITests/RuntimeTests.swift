import BerthLinux
import BerthTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A busybox bundle in a temporary directory, with a config in runc's default shape.
struct BusyboxBundle {
    let dir: String

    static func with<T>(_ body: (BusyboxBundle) throws -> T) throws -> T {
        try Shell.withTempDir { dir in
            let bin = dir + "/rootfs/bin"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: bin + "/busybox")
            for tool in ["sh", "cat", "echo", "hostname", "grep", "ls", "mount", "unshare", "mkdir", "touch", "wc", "true", "sleep", "tail", "seq"] {
                try FileManager.default.createSymbolicLink(atPath: bin + "/" + tool, withDestinationPath: "busybox")
            }
            return try body(BusyboxBundle(dir: dir))
        }
    }

    func config(_ script: String, edit: (inout [String: Any]) -> Void = { _ in }) throws {
        var c: [String: Any] = [
            "ociVersion": "1.0.2",
            "process": [
                "terminal": false, "user": ["uid": 0, "gid": 0], "args": ["sh", "-c", script],
                "env": ["PATH=/bin"], "cwd": "/",
                "capabilities": [
                    "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                ],
                "rlimits": [["type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024]],
                "noNewPrivileges": true,
            ] as [String: Any],
            "root": ["path": "rootfs", "readonly": true],
            "hostname": "berth-test",
            "mounts": [
                ["destination": "/proc", "type": "proc", "source": "proc"],
                ["destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
                ["destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]],
                ["destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]],
                ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]],
            ],
            "linux": [
                "namespaces": [["type": "pid"], ["type": "network"], ["type": "ipc"], ["type": "uts"], ["type": "mount"]],
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            ] as [String: Any],
        ]
        edit(&c)
        let data = try JSONSerialization.data(withJSONObject: c, options: [.prettyPrinted])
        try data.write(to: URL(fileURLWithPath: dir + "/config.json"))
    }

    /// The config with these fields set in `linux`.
    func config(_ script: String, linux fields: [String: Any]) throws {
        try config(script) { c in
            var l = c["linux"] as! [String: Any]
            l.merge(fields) { $1 }
            c["linux"] = l
        }
    }

    /// A container of this bundle created (its output to its log) and started: its state root and id.
    func started(_ name: String) throws -> (root: String, id: String) {
        let root = dir + "/state", id = "\(name)-\(getpid())"
        let created = try berth(root, ["create", "--container-log", "--bundle", dir, id])
        guard created.status == 0, try berth(root, ["start", id]).status == 0 else { throw TestFailure("\(id) did not start: \(created.stderr)") }
        return (root, id)
    }

    /// `berth runtime run` of this bundle, with its state under the bundle.
    func run(_ id: String) throws -> Shell.Result {
        try Shell.run(Shell.berth, ["runtime", "run", "--root", dir + "/state", "--bundle", dir, "\(id)-\(getpid())"])
    }
}

@Suite(.serialized, .enabled(if: getuid() == 0, "namespaces need root")) struct RuntimeTests {
    static let probe = """
    echo pid=$$; hostname; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/1/status; \
    echo processes-above-pid-99=$(ls /proc | grep -c '^[0-9][0-9][0-9]'); \
    mount -t tmpfs x /tmp 2>/dev/null && echo mount=yes || echo mount=no; \
    unshare -n true 2>/dev/null && echo unshare=yes || echo unshare=no; \
    touch /newfile 2>/dev/null && echo rootfs=rw || echo rootfs=ro; \
    echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo procsys=rw || echo procsys=ro; \
    ls /dev/null /dev/zero /dev/urandom >/dev/null && echo dev=ok; exit 3
    """

    @Test func isolatesTheProcessAndPassesTheExitCode() throws {
        try BusyboxBundle.with { b in
            try b.config(RuntimeTests.probe)
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "probe-\(getpid())"])
            #expect(r.status == 3, "\(r.stderr)")
            #expect(r.stdout == """
            pid=1
            berth-test
            CapEff:\t0000000020000420
            NoNewPrivs:\t1
            Seccomp:\t0
            processes-above-pid-99=0
            mount=no
            unshare=no
            rootfs=ro
            procsys=ro
            dev=ok

            """)
        }
    }

    @Test func givesTheSameOutputAsRunc() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc") || FileManager.default.isExecutableFile(atPath: "/usr/bin/runc") else {
            Issue.record("runc is not installed (scripts/setup installs it)")
            return
        }
        try BusyboxBundle.with { b in
            try b.config(RuntimeTests.probe)
            let ours = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "same-\(getpid())"])
            let runc = try Shell.run("runc", ["--root", b.dir + "/runc-state", "run", "--bundle", b.dir, "same-\(getpid())"])
            #expect(ours.status == runc.status)
            #expect(ours.stdout == runc.stdout)
        }
    }

    /// linux.sysctl, linux.devices and process.oomScoreAdj: set in the container as runc sets them, the
    /// host's values untouched; a sysctl that is not namespaced is refused.
    @Test func sysctlDevicesAndOOMScoreAdjLikeRunc() throws {
        try BusyboxBundle.with { b in
            let hostShmmax = try String(contentsOfFile: "/proc/sys/kernel/shmmax", encoding: .utf8)
            func configure(_ sysctl: [String: String]) throws {
                try b.config("ls -ln /dev/fuse /dev/fifo | cut -c1-10; cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj") { c in
                    var process = c["process"] as! [String: Any]
                    process["oomScoreAdj"] = 500
                    c["process"] = process
                    var linux = c["linux"] as! [String: Any]
                    linux["sysctl"] = sysctl
                    linux["devices"] = [["path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 0, "gid": 0],
                                        ["path": "/dev/fifo", "type": "p", "fileMode": 0o644]]
                    c["linux"] = linux
                }
            }
            try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/bin/cut", withDestinationPath: "busybox")
            try configure(["kernel.shmmax": "12345678", "net.ipv4.ip_forward": "1"])
            let ours = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "sysctl-\(getpid())"])
            #expect(ours.status == 0, "\(ours.stderr)")
            #expect(ours.stdout == "prw-r--r--\ncrw-------\n12345678\n1\n500\n")
            if FileManager.default.isExecutableFile(atPath: "/usr/sbin/runc") || FileManager.default.isExecutableFile(atPath: "/usr/bin/runc") {
                let runc = try Shell.run("runc", ["--root", b.dir + "/runc-state", "run", "--bundle", b.dir, "sysctl-\(getpid())"])
                #expect(runc.stdout == ours.stdout, "\(runc.stderr)")
            }
            #expect(try String(contentsOfFile: "/proc/sys/kernel/shmmax", encoding: .utf8) == hostShmmax)

            try configure(["vm.swappiness": "1"])
            let host = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "host-sysctl-\(getpid())"])
            #expect(host.status == 1)
            #expect(host.stderr.contains("linux.sysctl: vm.swappiness is not namespaced: setting it would change the host"), "\(host.stderr)")
        }
    }

    @Test func seccompFromTheConfigIsEnforced() throws {
        try BusyboxBundle.with { b in
            try b.config("grep Seccomp: /proc/self/status; mkdir /dev/shm/x 2>&1; echo done") { c in
                var linux = c["linux"] as! [String: Any]
                linux["seccomp"] = ["defaultAction": "SCMP_ACT_ALLOW",
                                    "syscalls": [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1]]]
                c["linux"] = linux
            }
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "seccomp-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "Seccomp:\t2\nmkdir: can't create directory '/dev/shm/x': Operation not permitted\ndone\n")
        }
    }

    @Test func setupErrorsNameTheStageAndUnknownFieldsAreRefused() throws {
        try BusyboxBundle.with { b in
            try b.config("true") { c in
                var p = c["process"] as! [String: Any]
                p["cwd"] = "/does/not/exist"
                c["process"] = p
            }
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "cwd-\(getpid())"])
            #expect(r.status == 1)
            #expect(r.stderr == "berth runtime: container cwd-\(getpid()): cwd: chdir /does/not/exist: No such file or directory\n")
            #expect(try Shell.run(Shell.berth, ["runtime", "list", "--root", "/run/berth/runtime"]).stdout.contains("cwd-\(getpid())") == false)

            try b.config("true") { c in
                var linux = c["linux"] as! [String: Any]
                linux["intelRdt"] = ["closID": "x"]
                c["linux"] = linux
            }
            let unknown = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "field-\(getpid())"])
            #expect(unknown.status == 1)
            #expect(unknown.stderr.hasPrefix("berth runtime: \(b.dir)/config.json:"))
            #expect(unknown.stderr.hasSuffix(": linux.intelRdt is not supported by berth\n"))

            // Errors name the line and column of the field.
            let text = """
                {"ociVersion": "1.0.2",
                 "process": {"args": ["true"], "cwd": "relative",
                             "user": {"uid": "root"}},
                 "root": {"path": "rootfs"}}
                """
            try text.write(toFile: b.dir + "/config.json", atomically: true, encoding: .utf8)
            let placed = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "line-\(getpid())"])
            #expect(placed.stderr == "berth runtime: \(b.dir)/config.json:3:30: process.user.uid must be an integer\n")
            try text.replacingOccurrences(of: "\"root\"}}", with: "0}}").write(toFile: b.dir + "/config.json", atomically: true, encoding: .utf8)
            let cwd = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "line-\(getpid())"])
            #expect(cwd.stderr == "berth runtime: \(b.dir)/config.json:2:39: process.cwd: must be an absolute path\n")

            try b.config("nosuchcommand")
            let missing = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "exec-\(getpid())"])
            #expect(missing.status == 127)
        }
    }
}

/// `berth runtime COMMAND --root ROOT ARGS...`
func berth(_ root: String, _ args: [String]) throws -> Shell.Result {
    try Shell.run(Shell.berth, ["runtime"] + [args[0], "--root", root] + args.dropFirst())
}

/// The container's state once it has stopped, polled every 20 ms up to `tries` times (the last one read).
func stateWhenStopped(_ root: String, _ id: String, tries: Int = 100) throws -> [String: Any]? {
    var s: [String: Any]?
    for _ in 0..<tries {
        s = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
        if s?["status"] as? String == "stopped" { break }
        usleep(20_000)
    }
    return s
}

@Suite(.serialized, .enabled(if: getuid() == 0, "namespaces need root")) struct RuntimeLifecycleTests {
    /// berth-shims outlive the berth that started them: the test process adopts and reaps them.
    init() { Orphans.adopt() }

    /// Not the node agent's tests' shims: their pods stop when those tests end, not when these do.
    static func reapShims() { Orphans.reap(named: ["berth-shim"], waiting: true, excluding: "/berth-node-") }

    /// `run` has the exit code from its supervisor; a `run` killed while its container runs leaves the code
    /// in the state directory for `state`, and `delete` removes the container. A cgroup the kernel refuses
    /// (made while the container's namespaces are, on v1) fails `run` with the reason and leaves nothing.
    @Test func aKilledRunLeavesTheExitCodeAndARefusedCgroupLeavesNothing() throws {
        try BusyboxBundle.with { b in
            let root = b.dir + "/state", id = "orphan-\(getpid())"
            try b.config("sleep 1; exit 7")
            let run = Process()
            run.executableURL = URL(fileURLWithPath: Shell.berthRuntime)
            run.arguments = ["run", "--root", root, "--bundle", b.dir, id]
            try run.run()
            for _ in 0..<250 where !FileManager.default.fileExists(atPath: "\(root)/\(id)/pid") { usleep(20_000) }
            #expect(FileManager.default.fileExists(atPath: "\(root)/\(id)/pid"))
            kill(run.processIdentifier, SIGKILL)
            run.waitUntilExit()
            let state = try stateWhenStopped(root, id, tries: 250)
            #expect(state?["status"] as? String == "stopped", "\(String(describing: state))")
            #expect((state?["annotations"] as? [String: String])?["berth.exitCode"] == "7", "\(String(describing: state))")
            let deleted = try berth(root, ["delete", id])
            #expect(deleted.status == 0, "\(deleted.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(root)/\(id)"))
            RuntimeLifecycleTests.reapShims()

            try b.config("true", linux: ["resources": ["cpu": ["cpus": "99"]]])
            let refused = try b.run("refused")
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("cpuset.cpus"), "\(refused.stderr)")
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("refused-") }.isEmpty)
            let v2 = Cgroup.detectVersion() == .v2
            for controller in v2 ? [""] : ["memory/", "cpuset/", "pids/"] {
                #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(controller)berth/refused-\(getpid())"))
            }
        }
    }

    /// A pod's containers share its sandbox's namespaces: the second container enters the first one's
    /// network, ipc, uts and pid namespaces by path.
    @Test func aContainerJoinsAnotherOnesNamespacesByPath() throws {
        try BusyboxBundle.with { b in
            try b.config("while true; do sleep 0.1; done")
            let root = b.dir + "/state"
            let sandbox = "sandbox-\(getpid())"
            #expect(try berth(root, ["create", "--container-log", "--bundle", b.dir, sandbox]).status == 0)
            #expect(try berth(root, ["start", sandbox]).status == 0)
            defer {
                _ = try? berth(root, ["delete", "--force", sandbox])
                RuntimeLifecycleTests.reapShims()
            }
            let state = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", sandbox]).stdout.utf8)) as? [String: Any]
            let pid = state?["pid"] as? Int ?? 0
            #expect(pid > 0)
            let inodes = try ["net", "ipc", "uts"].map { try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\($0)") }

            try BusyboxBundle.with { joiner in
                try joiner.config("for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname; cat /proc/1/cmdline; echo") { c in
                    var linux = c["linux"] as! [String: Any]
                    linux["namespaces"] = [["type": "mount"], ["type": "network", "path": "/proc/\(pid)/ns/net"],
                                           ["type": "ipc", "path": "/proc/\(pid)/ns/ipc"], ["type": "uts", "path": "/proc/\(pid)/ns/uts"],
                                           ["type": "pid", "path": "/proc/\(pid)/ns/pid"]]
                    c["linux"] = linux
                    c.removeValue(forKey: "hostname")
                }
                for tool in ["readlink"] {
                    try FileManager.default.createSymbolicLink(atPath: joiner.dir + "/rootfs/bin/" + tool, withDestinationPath: "busybox")
                }
                let r = try Shell.run(Shell.berth, ["runtime", "run", "--root", root, "--bundle", joiner.dir, "joiner-\(getpid())"])
                #expect(r.status == 0, "\(r.stderr)")
                let lines = r.stdout.split(separator: "\n").map(String.init)
                #expect(Array(lines.prefix(3)) == inodes)
                #expect(lines.dropFirst(3).first == "berth-test")
                // PID 1 of the joined pid namespace is the sandbox's shell.
                #expect(lines.dropFirst(4).first?.hasPrefix("sh\0-c\0while true") == true)

                // A hostname set in a joined uts namespace is that namespace's (as runc).
                try joiner.config("hostname") { c in
                    var linux = c["linux"] as! [String: Any]
                    linux["namespaces"] = [["type": "mount"], ["type": "uts", "path": "/proc/\(pid)/ns/uts"]]
                    c["linux"] = linux
                    c["hostname"] = "renamed"
                }
                let named = try Shell.run(Shell.berth, ["runtime", "run", "--root", root, "--bundle", joiner.dir, "named-\(getpid())"])
                #expect(named.status == 0, "\(named.stderr)")
                #expect(named.stdout == "renamed\n")
                #expect(try Shell.run("/usr/bin/nsenter", ["-t", "\(pid)", "-u", "hostname"]).stdout == "renamed\n")
                // No uts namespace at all: no hostname.
                try joiner.config("true") { c in
                    var linux = c["linux"] as! [String: Any]
                    linux["namespaces"] = [["type": "mount"]]
                    c["linux"] = linux
                }
                let unnamed = try Shell.run(Shell.berth, ["runtime", "run", "--root", root, "--bundle", joiner.dir, "unnamed-\(getpid())"])
                #expect(unnamed.status == 1)
                #expect(unnamed.stderr.contains("hostname: needs a uts namespace in linux.namespaces"))
                let gone = try Shell.run(Shell.berth, ["runtime", "list", "--root", root]).stdout
                #expect(!gone.contains("joiner-") && !gone.contains("named-"))
            }
        }
    }

    /// Without a mount namespace of its own (runc's behaviour, which the OCI suite checks) a container
    /// chroots: in the host's namespace its mounts are made under its root and undone when it is removed;
    /// in a joined one they stay there, and the host's mount table never changes.
    @Test func aContainerWithoutItsOwnMountNamespaceChroots() throws {
        try BusyboxBundle.with { b in
            for tool in ["readlink"] {
                try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/bin/" + tool, withDestinationPath: "busybox")
            }
            let root = b.dir + "/state"
            let rootfs = MountTable.canonical(b.dir + "/rootfs")
            let hostMnt = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")
            let script = "readlink /proc/self/ns/mnt; ls /; grep -c ' /proc ' /proc/self/mountinfo"

            // The host's mount namespace.
            try b.config(script + "; sleep 30") { c in
                var linux = c["linux"] as! [String: Any]
                linux["namespaces"] = [["type": "pid"], ["type": "uts"]]
                c["linux"] = linux
            }
            let id = "hostmnt-\(getpid())"
            defer {
                _ = try? berth(root, ["delete", "--force", id])
                MountTable.detach(under: rootfs, keeping: [])
                RuntimeLifecycleTests.reapShims()
            }
            #expect(try berth(root, ["create", "--container-log", "--bundle", b.dir, id]).status == 0)
            #expect(try berth(root, ["start", id]).status == 0)
            #expect(!MountTable.mounts(under: rootfs).isEmpty)
            // exec enters the container's root, not the namespace's.
            let exec = try berth(root, ["exec", id, "ls", "/"])
            #expect(exec.status == 0, "\(exec.stderr)")
            #expect(exec.stdout.split(separator: "\n") == ["bin", "dev", "proc", "sys"])
            #expect(try berth(root, ["delete", "--force", id]).status == 0)
            #expect(MountTable.mounts(under: rootfs).isEmpty)

            try b.config(script) { c in
                var linux = c["linux"] as! [String: Any]
                linux["namespaces"] = [["type": "pid"], ["type": "uts"]]
                c["linux"] = linux
            }
            let r = try b.run("hostmnt-run")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.split(separator: "\n") == [Substring(hostMnt), "bin", "dev", "proc", "sys", "1"])
            #expect(MountTable.mounts(under: rootfs).isEmpty)

            // A mount namespace joined by path: the one `unshare --mount` made.
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            holder.arguments = ["--mount", "--propagation", "private", "sleep", "60"]
            try holder.run()
            defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
            var joined = hostMnt
            for _ in 0..<100 where joined == hostMnt {
                usleep(20_000)
                joined = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(holder.processIdentifier)/ns/mnt")) ?? hostMnt
            }
            #expect(joined != hostMnt)
            try b.config(script) { c in
                var linux = c["linux"] as! [String: Any]
                linux["namespaces"] = [["type": "pid"], ["type": "uts"], ["type": "mount", "path": "/proc/\(holder.processIdentifier)/ns/mnt"]]
                c["linux"] = linux
            }
            let j = try b.run("joinmnt")
            #expect(j.status == 0, "\(j.stderr)")
            #expect(j.stdout.split(separator: "\n") == [Substring(joined), "bin", "dev", "proc", "sys", "1"])
            #expect(MountTable.mounts(under: rootfs).isEmpty)
            let inside = try Shell.run("/usr/bin/nsenter", ["-t", "\(holder.processIdentifier)", "-m", "grep", "-c", rootfs, "/proc/self/mountinfo"])
            #expect(Int(inside.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0)

            // An image root, and the root's propagation, need a mount namespace of the container's own.
            try b.config("true") { c in
                var linux = c["linux"] as! [String: Any]
                linux["namespaces"] = [["type": "pid"], ["type": "uts"]]
                linux["rootfsPropagation"] = "shared"
                c["linux"] = linux
            }
            let refused = try b.run("propagation")
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("linux.rootfsPropagation: needs a new mount namespace"))
        }
    }

    /// Under `spec --init`, PID 1 is berth-init: SIGTERM reaches a program that has no handler, orphans are
    /// reaped, the program's exit code comes through. Without it, PID 1 `sleep` ignores SIGTERM.
    @Test func initForwardsSignalsAndReapsOrphans() throws {
        try BusyboxBundle.with { b in
            let spec = try Shell.run(Shell.berth, ["runtime", "spec", "--init", "--bundle", b.dir])
            #expect(spec.status == 0, "\(spec.stderr)")
            func args(_ program: [String], underInit: Bool = true) throws {
                let url = URL(fileURLWithPath: b.dir + "/config.json")
                var c = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                var process = c["process"] as! [String: Any]
                process["args"] = (underInit ? ["/dev/init", "--"] : []) + program
                c["process"] = process
                try JSONSerialization.data(withJSONObject: c).write(to: url)
            }
            let root = b.dir + "/state"
            defer { RuntimeLifecycleTests.reapShims() }

            // An orphan (the inner shell exits before its sleep does) becomes PID 1's child and is reaped.
            try args(["sh", "-c", "sh -c 'sleep 0.1 &'; sleep 0.5; echo $$; cat /proc/1/cmdline; echo; grep -l zombie /proc/[0-9]*/status; exit 3"])
            let run = try berth(root, ["run", "--bundle", b.dir, "init-\(getpid())"])
            #expect(run.status == 3, "\(run.stderr)")
            #expect(run.stdout == "2\n/dev/init\0--\0sh\0-c\0sh -c 'sleep 0.1 &'; sleep 0.5; echo $$; cat /proc/1/cmdline; echo; grep -l zombie /proc/[0-9]*/status; exit 3\0\n")

            func stopsOnTerm(_ id: String) throws -> String? {
                #expect(try berth(root, ["create", "--container-log", "--bundle", b.dir, id]).status == 0)
                defer { _ = try? berth(root, ["delete", "--force", id]) }
                #expect(try berth(root, ["start", id]).status == 0)
                usleep(100_000)
                #expect(try berth(root, ["kill", id, "TERM"]).status == 0)
                for _ in 0..<25 {
                    let s = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
                    if s?["status"] as? String == "stopped" { return (s?["annotations"] as? [String: String])?["berth.exitCode"] }
                    usleep(20_000)
                }
                return nil
            }
            try args(["sleep", "30"])
            #expect(try stopsOnTerm("term-\(getpid())") == "143")
            try args(["sleep", "30"], underInit: false)
            #expect(try stopsOnTerm("deaf-\(getpid())") == nil)
        }
    }

    /// With a user namespace, the container's root is an unprivileged user outside: what it writes belongs
    /// to the mapped host uid, and a file only the host's root may read stays closed to it.
    @Test func userNamespaceMapsRootToAnUnprivilegedHostUser() throws {
        try BusyboxBundle.with { b in
            try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/bin/id", withDestinationPath: "busybox")
            let data = b.dir + "/data", secret = b.dir + "/secret"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            try "host only\n".write(toFile: secret, atomically: false, encoding: .utf8)
            chmod(secret, 0o600)
            // As with runc, the root filesystem belongs to the container's root (here host uid 100000).
            #expect(try Shell.run("/bin/chown", ["-R", "100000:100000", b.dir + "/rootfs", data]).status == 0)
            func userns(_ script: String, mappings: Bool = true, namespace: Bool = true) throws {
                try b.config(script) { c in
                    var linux = c["linux"] as! [String: Any]
                    var namespaces = linux["namespaces"] as! [[String: Any]]
                    if namespace { namespaces.append(["type": "user"]) }
                    linux["namespaces"] = namespaces
                    if mappings {
                        linux["uidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
                        linux["gidMappings"] = [["containerID": 0, "hostID": 100000, "size": 65536]]
                    }
                    c["linux"] = linux
                    var mounts = c["mounts"] as! [[String: Any]]
                    mounts.append(["destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]])
                    mounts.append(["destination": "/secret", "type": "bind", "source": secret, "options": ["bind", "ro"]])
                    c["mounts"] = mounts
                }
            }
            let root = b.dir + "/state"
            defer { RuntimeLifecycleTests.reapShims() }
            try userns("id; cat /proc/self/uid_map; hostname; touch /data/made; cat /secret 2>/dev/null || echo secret=refused")
            let r = try berth(root, ["run", "--bundle", b.dir, "userns-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
            #expect(lines == ["uid=0 gid=0", "0 100000 65536", "berth-test", "secret=refused"])
            let made = try FileManager.default.attributesOfItem(atPath: data + "/made")
            #expect(made[.ownerAccountID] as? Int == 100000)
            #expect(made[.groupOwnerAccountID] as? Int == 100000)

            try userns("true", mappings: false)
            let unmapped = try berth(root, ["run", "--bundle", b.dir, "unmapped-\(getpid())"])
            #expect(unmapped.status == 1)
            #expect(unmapped.stderr.contains("linux.uidMappings: a user namespace needs a mapping of uid 0"), "\(unmapped.stderr)")
            try userns("true", namespace: false)
            let stray = try berth(root, ["run", "--bundle", b.dir, "stray-\(getpid())"])
            #expect(stray.stderr.contains("linux.uidMappings: needs a user namespace in linux.namespaces"), "\(stray.stderr)")
            #expect(!FileManager.default.fileExists(atPath: root + "/unmapped-\(getpid())"))
        }
    }

    @Test func createStartStateKillDelete() throws {
        try BusyboxBundle.with { b in
            try b.config("trap 'exit 42' TERM; echo started > /dev/shm/x; while true; do sleep 0.1; done")
            let root = b.dir + "/state"
            let id = "life-\(getpid())"
            let created = try berth(root, ["create", "--container-log", "--bundle", b.dir, id])
            #expect(created.status == 0, "\(created.stderr)")
            var s = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
            #expect(s?["status"] as? String == "created")
            #expect((s?["pid"] as? Int ?? 0) > 0)
            #expect(try berth(root, ["start", id]).status == 0)
            s = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
            #expect(s?["status"] as? String == "running")
            #expect(try berth(root, ["delete", id]).status == 1)
            usleep(200_000)
            #expect(try berth(root, ["kill", id, "TERM"]).status == 0)
            s = try stateWhenStopped(root, id)
            #expect(s?["status"] as? String == "stopped")
            #expect((s?["annotations"] as? [String: String])?["berth.exitCode"] == "42")
            #expect(try berth(root, ["delete", id]).status == 0)
            #expect(try berth(root, ["state", id]).stderr == "berth runtime: container \(id) does not exist\n")
            RuntimeLifecycleTests.reapShims()
        }
    }

    @Test func aContainerOutlivesTheBerthThatStartedIt() throws {
        try BusyboxBundle.with { b in
            try b.config("trap 'exit 9' TERM; while true; do sleep 0.1; done")
            let root = b.dir + "/state"
            let id = "orphan-\(getpid())"
            // `run` in the background, then SIGKILL it: the shim and the container go on.
            var pid: pid_t = 0
            let args = [Shell.berth, "runtime", "run", "--root", root, "--bundle", b.dir, id]
            let argv = args.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            #expect(posix_spawn(&pid, Shell.berth, nil, nil, argv, environ) == 0)
            var running = false
            for _ in 0..<200 {
                if let s = try? JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any],
                   s["status"] as? String == "running" { running = true; break }
                usleep(10_000)
            }
            #expect(running)
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            let s1 = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
            #expect(s1?["status"] as? String == "running")
            #expect(try berth(root, ["kill", id, "TERM"]).status == 0)
            let s2 = try stateWhenStopped(root, id)
            #expect(s2?["status"] as? String == "stopped")
            #expect((s2?["annotations"] as? [String: String])?["berth.exitCode"] == "9")
            _ = try berth(root, ["delete", "--force", id])
            RuntimeLifecycleTests.reapShims()
        }
    }

    @Test func memoryLimitOOMKillAndPidsLimit() throws {
        try BusyboxBundle.with { b in
            try b.config("sleep 0.5; tail /dev/zero") { c in
                var linux = c["linux"] as! [String: Any]
                linux["resources"] = ["memory": ["limit": 32 << 20]]
                c["linux"] = linux
            }
            let root = b.dir + "/state"
            let id = "oom-\(getpid())"
            #expect(try berth(root, ["create", "--container-log", "--bundle", b.dir, id]).status == 0)
            #expect(try berth(root, ["start", id]).status == 0)
            // Usage while it sleeps: the shell and its sleep, under the configured limit.
            let once = try berth(root, ["events", "--stats", id])
            let event = try JSONSerialization.jsonObject(with: Data(once.stdout.utf8)) as? [String: Any]
            let whole = event?["data"] as? [String: Any]
            let data = whole?.compactMapValues { $0 as? [String: Any] }
            let usage = data?["memory"]?["usage"] as? [String: Int]
            #expect(event?["type"] as? String == "stats", "\(once.stderr)")
            #expect(usage?["limit"] == 32 << 20)
            #expect((usage?["usage"] ?? 0) > 0 && (usage?["usage"] ?? 0) <= (usage?["max"] ?? 0))
            #expect(data?["pids"]?["current"] as? Int == 2)
            #expect(((data?["cpu"]?["usage"] as? [String: Any])?["total"] as? Int ?? 0) > 0)
            // runc's whole shape: every section, memory's counters and raw memory.stat, CPU time per CPU.
            #expect(Set(whole?.keys.map { $0 } ?? []) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"], "\(once.stdout)")
            #expect(whole?["network_interfaces"] is NSNull)
            let memoryKeys = Set(data?["memory"]?.keys.map { $0 } ?? [])
            #expect(memoryKeys.isSuperset(of: ["usage", "swap", "kernel", "kernelTCP", "raw"]), "\(memoryKeys)")
            #expect((data?["memory"]?["raw"] as? [String: Int])?["total_rss"] != nil || Cgroup.detectVersion() == .v2)
            #expect(data?["cpu"]?["throttling"] is [String: Any])
            if Cgroup.detectVersion() == .v1 {
                let percpu = (data?["cpu"]?["usage"] as? [String: Any])?["percpu"] as? [Int] ?? []
                #expect(percpu.count == sysconf(Int32(_SC_NPROCESSORS_CONF)), "\(percpu)")
                #expect((data?["cpuset"]?["cpus"] as? [Int])?.isEmpty == false)
            }
            // Streaming events: the OOM kill is reported as it happens, and the stream ends with the container.
            let stream = try berth(root, ["events", "--interval", "60s", id])
            #expect(stream.status == 0, "\(stream.stderr)")
            #expect(stream.stdout == "{\"id\": \"\(id)\", \"type\": \"oom\"}\n")
            var s: [String: Any]?
            for _ in 0..<300 {
                s = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
                if s?["status"] as? String == "stopped" { break }
                usleep(20_000)
            }
            let annotations = s?["annotations"] as? [String: String]
            #expect(annotations?["berth.exitCode"] == "137")
            #expect(annotations?["berth.oomKilled"] == "true")
            #expect(try berth(root, ["delete", id]).status == 0)
            #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/berth/\(id)"))
            RuntimeLifecycleTests.reapShims()

            // A fork bomb stops at pids.max (the shell dies when it cannot fork); the kernel counts the refusals.
            try b.config("while true; do sleep 5 & done") { c in
                var linux = c["linux"] as! [String: Any]
                linux["resources"] = ["pids": ["limit": 10]]
                c["linux"] = linux
            }
            let bomb = "pids-\(getpid())"
            #expect(try berth(root, ["create", "--container-log", "--bundle", b.dir, bomb]).status == 0)
            #expect(try String(contentsOfFile: "/sys/fs/cgroup/pids/berth/\(bomb)/pids.max", encoding: .utf8) == "10\n")
            #expect(try berth(root, ["start", bomb]).status == 0)
            var stopped: [String: Any]?
            for _ in 0..<300 {
                stopped = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", bomb]).stdout.utf8)) as? [String: Any]
                if stopped?["status"] as? String == "stopped" { break }
                usleep(20_000)
            }
            #expect(stopped?["status"] as? String == "stopped")
            let events = try String(contentsOfFile: "/sys/fs/cgroup/pids/berth/\(bomb)/pids.events", encoding: .utf8)
            #expect(Int(events.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0") ?? 0 > 0, "\(events)")
            // Its sleeps are still in the cgroup: a forced delete kills what is left.
            _ = try berth(root, ["delete", "--force", bomb])
            RuntimeLifecycleTests.reapShims()
        }
    }

    @Test func defaultSpecIsolatesLikeDocker() throws {
        try BusyboxBundle.with { b in
            #expect(try Shell.run(Shell.berth, ["runtime", "spec", "--bundle", b.dir]).status == 0)
            #expect(try Shell.run(Shell.berth, ["runtime", "spec", "--bundle", b.dir]).status == 1)
            let path = b.dir + "/config.json"
            var c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
            var p = c["process"] as! [String: Any]
            p["args"] = ["sh", "-c", """
                grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; unshare -n true 2>/dev/null || echo unshare=refused; \
                mkdir /dev/shm/d && echo mkdir=ok; echo fork=$(echo ok); cat /proc/kcore 2>/dev/null | wc -c
                """]
            c["process"] = p
            try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: path))
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--root", b.dir + "/state", "--bundle", b.dir, "default-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            // Docker's 14 capabilities are a80425fb.
            #expect(r.stdout == "CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\nunshare=refused\nmkdir=ok\nfork=ok\n0\n")
            RuntimeLifecycleTests.reapShims()
        }
    }

    /// What the runtime spec allows: properties it does not define are ignored, one it defines that berth
    /// cannot honour is an error naming it; process.user.umask, linux.rootfsPropagation and a cgroup
    /// namespace (whose root is the container's own cgroup) are honoured.
    @Test func specFieldsUmaskPropagationAndCgroupNamespace() throws {
        try BusyboxBundle.with { b in
            let script = "umask; grep -c -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / [^ ]+ shared:' /proc/self/mountinfo; grep -v -c ':/$' /proc/self/cgroup; exit 0"
            try b.config(script) { c in
                c["vendorExtension"] = ["anything": true]
                var p = c["process"] as! [String: Any]
                p["user"] = ["uid": 0, "gid": 0, "umask": 0o27, "futureField": 1]
                c["process"] = p
                var l = c["linux"] as! [String: Any]
                l["namespaces"] = (l["namespaces"] as! [[String: String]]) + [["type": "cgroup"]]
                l["rootfsPropagation"] = "rshared"
                c["linux"] = l
            }
            let r = try b.run("spec")
            #expect(r.status == 0, "\(r.stderr)")
            // 0027; the root is a shared mount; every cgroup line is "/": the container's own.
            #expect(r.stdout == "0027\n1\n0\n", "\(r.stdout)")

            try b.config("true", linux: ["intelRdt": ["closID": "guaranteed"]])
            let rdt = try b.run("rdt")
            #expect(rdt.status == 1)
            #expect(rdt.stderr.contains("/config.json:") && rdt.stderr.contains(": linux.intelRdt is not supported by berth"), "\(rdt.stderr)")
            try b.config("true", linux: ["rootfsPropagation": "sideways"])
            let bad = try b.run("bad")
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("linux.rootfsPropagation: must be one of private, rprivate, rshared"), "\(bad.stderr)")
            RuntimeLifecycleTests.reapShims()
        }
    }

    /// linux.resources.cpu.cpus and mems: the container runs on the CPUs given (a v1 cpuset directory is
    /// given its parent's CPUs and nodes first, or it could take no process), and the directory goes with it.
    /// memory reservation, swap, swappiness and the OOM killer switch, and a blkio throttle reach the
    /// container's cgroup files; a controller the kernel lacks and kernel memory are refused by name.
    @Test func memoryBlockIOAndHugepageLimits() throws {
        try BusyboxBundle.with { b in
            let path = "berth-test/limits-\(getpid())"
            // The machine's first block device, for a throttle.
            let partitions = try String(contentsOfFile: "/proc/partitions", encoding: .utf8).split(separator: "\n").dropFirst()
            let disk = partitions.first.map { $0.split(separator: " ").map(String.init) } ?? []
            try #require(disk.count >= 2, "no block device in /proc/partitions")
            let (major, minor) = (Int(disk[0])!, Int(disk[1])!)
            let v2 = Cgroup.detectVersion() == .v2
            try b.config("sleep 30", linux: ["cgroupsPath": path, "resources": [
                "memory": ["limit": 100 << 20, "reservation": 50 << 20, "swap": 200 << 20]
                    .merging(v2 ? [:] : ["swappiness": 30, "disableOOMKiller": true]) { $1 },
                "blockIO": ["throttleReadBpsDevice": [["major": major, "minor": minor, "rate": 1 << 20]]],
            ] as [String: Any]])
            let root = b.dir + "/state", id = "limits-\(getpid())"
            let created = try berth(root, ["create", "--container-log", "--bundle", b.dir, id])
            try #require(created.status == 0, "\(created.stderr)")
            func read(_ controller: String, _ file: String) -> String {
                let dir = v2 ? "/sys/fs/cgroup/\(path)" : "/sys/fs/cgroup/\(controller)/\(path)"
                return ((try? String(contentsOfFile: dir + "/" + file, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if v2 {
                #expect(read("memory", "memory.low") == "\(50 << 20)")
                #expect(read("memory", "memory.swap.max") == "\(100 << 20)")
                #expect(read("io", "io.max").contains("\(major):\(minor) rbps=\(1 << 20)"))
            } else {
                #expect(read("memory", "memory.soft_limit_in_bytes") == "\(50 << 20)")
                #expect(read("memory", "memory.memsw.limit_in_bytes") == "\(200 << 20)")
                #expect(read("memory", "memory.swappiness") == "30")
                #expect(read("memory", "memory.oom_control").contains("oom_kill_disable 1"))
                #expect(read("blkio", "blkio.throttle.read_bps_device") == "\(major):\(minor) \(1 << 20)")
            }
            // update: past the old memory+swap limit (so that one is raised first), and from a file on stdin.
            let updated = try berth(root, ["update", "--memory", "300m", "--memory-swap", "400m", "--pids-limit", "50", id])
            #expect(updated.status == 0, "\(updated.stderr)")
            #expect(read("memory", v2 ? "memory.max" : "memory.limit_in_bytes") == "\(300 << 20)")
            #expect(read("pids", "pids.max") == "50")
            let fromStdin = try Shell.run(Shell.berth, ["runtime", "update", "--root", root, "--resources", "-", id],
                                          stdin: #"{"cpu": {"shares": 512}, "pids": {"limit": 60}}"#)
            #expect(fromStdin.status == 0, "\(fromStdin.stderr)")
            #expect(read("pids", "pids.max") == "60")
            if !v2 { #expect(read("cpu", "cpu.shares") == "512") }
            let devices = try Shell.run(Shell.berth, ["runtime", "update", "--root", root, "-r", "-", id], stdin: #"{"devices": [{"allow": true}]}"#)
            #expect(devices.stderr == "berth runtime: update: linux.resources.devices are set when the container is created\n")
            #expect(try berth(root, ["delete", "--force", id]).status == 0)
            #expect(!FileManager.default.fileExists(atPath: v2 ? "/sys/fs/cgroup/\(path)" : "/sys/fs/cgroup/blkio/\(path)"))

            try b.config("true", linux: ["resources": ["memory": ["kernel": 1 << 20]]])
            #expect(try b.run("kernel").stderr.contains("linux.resources.memory.kernel: kernel memory limits are gone"))
            if !v2 && !FileManager.default.fileExists(atPath: "/sys/fs/cgroup/hugetlb") {
                try b.config("true", linux: ["resources": ["hugepageLimits": [["pageSize": "2MB", "limit": 1 << 21]]]])
                let hugetlb = try b.run("hugetlb")
                #expect(hugetlb.status == 1)
                #expect(hugetlb.stderr.contains("hugetlb (the kernel has no hugetlb controller mounted)"), "\(hugetlb.stderr)")
                // Nothing of the refused container is left in the controllers it did not get to.
                #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/berth/hugetlb-\(getpid())"))
            }
            RuntimeLifecycleTests.reapShims()
        }
    }

    @Test func cpusetLimitsTheContainersCPUs() throws {
        try BusyboxBundle.with { b in
            let path = "berth-test/cpuset-\(getpid())"
            try b.config("grep Cpus_allowed_list /proc/self/status", linux: ["cgroupsPath": path, "resources": ["cpu": ["cpus": "0", "mems": "0"]]])
            let r = try b.run("cpuset")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "Cpus_allowed_list:\t0\n")
            let dir = (Cgroup.detectVersion() == .v2 ? "/sys/fs/cgroup/" : "/sys/fs/cgroup/cpuset/") + path
            #expect(!FileManager.default.fileExists(atPath: dir))

            // runc's --systemd-cgroup: the path is where systemd would make the unit, and goes with it.
            try b.config("grep -m1 berthtest.slice /proc/self/cgroup", linux: ["cgroupsPath": "berthtest.slice:berth:\(getpid())"])
            let systemd = try Shell.run(Shell.berth, ["runtime", "--systemd-cgroup", "run", "--root", b.dir + "/state", "--bundle", b.dir, "systemd-\(getpid())"])
            #expect(systemd.status == 0, "\(systemd.stderr)")
            #expect(systemd.stdout.hasSuffix(":/berthtest.slice/berth-\(getpid()).scope\n"), "\(systemd.stdout)")
            let memory = Cgroup.detectVersion() == .v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory"
            #expect(!FileManager.default.fileExists(atPath: memory + "/berthtest.slice"))

            try b.config("true", linux: ["resources": ["cpu": ["cpus": "0; echo"]]])
            let bad = try b.run("badcpus")
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("linux.resources.cpu.cpus: must be a list of numbers and ranges"), "\(bad.stderr)")
            RuntimeLifecycleTests.reapShims()
        }
    }

    /// `run` moves its supervisor to another CPU while it makes the cgroups; the container still gets its
    /// caller's CPUs, and nothing of it stays once it has exited (the supervisor removes its cgroups while
    /// `run` removes its state). Signals the caller ignores are not ignored in the container.
    @Test func runKeepsItsCallersCPUsAndLeavesNothing() throws {
        try BusyboxBundle.with { b in
            try b.config("grep Cpus_allowed_list /proc/self/status")
            let own = try String(contentsOfFile: "/proc/self/status", encoding: .utf8).split(separator: "\n")
                .first { $0.hasPrefix("Cpus_allowed_list:") }.map { String($0) + "\n" }
            let id = "cpus-\(getpid())"
            func leftovers() -> [String] {
                let dirs = Cgroup.detectVersion() == .v2 ? ["/sys/fs/cgroup/berth/" + id]
                    : ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []).map { "/sys/fs/cgroup/\($0)/berth/" + id }
                return (dirs + [b.dir + "/state/" + id]).filter { FileManager.default.fileExists(atPath: $0) }
            }
            for _ in 0..<3 {
                let r = try b.run("cpus")
                #expect(r.status == 0, "\(r.stderr)")
                #expect(r.stdout == own, "\(r.stdout)")
                #expect(leftovers().isEmpty, "\(leftovers())")
            }
            // Signals its caller ignored or blocked are the container's default again.
            try b.config("") { c in
                // Not under sh, which ignores some signals of its own.
                var process = c["process"] as! [String: Any]
                process["args"] = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]
                c["process"] = process
            }
            let deaf = try Shell.run("/bin/sh", ["-c", "trap '' HUP INT QUIT TERM USR1; exec \"$0\" runtime run --root \"$1\" --bundle \"$2\" \"$3\"",
                                                 Shell.berth, b.dir + "/state", b.dir, id])
            #expect(deaf.stdout == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n", "\(deaf.stdout) \(deaf.stderr)")
            guard sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1 else { return }
            try b.config("grep Cpus_allowed_list /proc/self/status")
            let pinned = try Shell.run("/usr/bin/taskset", ["-c", "1", Shell.berth, "runtime", "run", "--root", b.dir + "/state", "--bundle", b.dir, id])
            #expect(pinned.status == 0, "\(pinned.stderr)")
            #expect(pinned.stdout == "Cpus_allowed_list:\t1\n")
            #expect(leftovers().isEmpty, "\(leftovers())")
        }
    }

    /// runc's `ps` (ps(1)'s lines for the container's processes, or their pids as JSON), `kill --all` (every
    /// process of the container's cgroup) and `features`.
    @Test func psKillAllAndFeatures() throws {
        try BusyboxBundle.with { b in
            try b.config("sleep 30 & sleep 31 & wait")
            let (root, id) = try b.started("ps")
            var pids: [Int] = []
            for _ in 0..<100 where pids.count < 3 {
                pids = (try JSONSerialization.jsonObject(with: Data(try berth(root, ["ps", "--format", "json", id]).stdout.utf8)) as? [Int]) ?? []
                if pids.count < 3 { usleep(20_000) }
            }
            #expect(pids.count == 3, "\(pids)")
            let table = try berth(root, ["ps", id, "--", "-o", "pid,comm"])
            #expect(table.status == 0, "\(table.stderr)")
            let lines = table.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(lines.first == ["PID", "COMMAND"])
            #expect(Set(lines.dropFirst().compactMap { Int($0[0]) }) == Set(pids))
            #expect(lines.dropFirst().map { $0.last ?? "" }.sorted() == ["sh", "sleep", "sleep"])

            #expect(try berth(root, ["kill", "--all", id, "KILL"]).status == 0)
            #expect(try stateWhenStopped(root, id)?["status"] as? String == "stopped")
            #expect(try berth(root, ["delete", id]).status == 0)

            let features = try JSONSerialization.jsonObject(with: Data(try berth(root, ["features"]).stdout.utf8)) as? [String: Any]
            #expect(features?["ociVersionMax"] as? String == "1.1.0")
            let linux = features?["linux"] as? [String: Any]
            #expect((linux?["namespaces"] as? [String])?.contains("cgroup") == true)
            #expect(((linux?["seccomp"] as? [String: Any])?["actions"] as? [String])?.contains("SCMP_ACT_ERRNO") == true)
            #expect((features?["mountOptions"] as? [String])?.contains("rbind") == true)
            RuntimeLifecycleTests.reapShims()
        }
    }

    /// pause freezes every process of the container (state "paused", no progress), resume thaws them, and a
    /// forced delete of a paused container thaws it to kill it.
    @Test func pauseResumeAndDeleteAPausedContainer() throws {
        try BusyboxBundle.with { b in
            try b.config("i=0; while true; do i=$((i+1)); echo $i; done")
            let (root, id) = try b.started("pause")
            func count() -> Int {
                let log = (try? String(contentsOfFile: root + "/" + id + "/container.log", encoding: .utf8)) ?? ""
                return Int(log.split(separator: "\n").last ?? "0") ?? 0
            }
            func status() throws -> String? {
                (try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any])?["status"] as? String
            }
            usleep(200_000)
            #expect(try berth(root, ["pause", id]).status == 0)
            #expect(try status() == "paused")
            let frozen = count()
            usleep(300_000)
            #expect(count() == frozen)
            #expect(try berth(root, ["pause", id]).stderr == "berth runtime: container \(id) is paused, not running\n")
            #expect(try berth(root, ["resume", id]).status == 0)
            #expect(try status() == "running")
            usleep(300_000)
            #expect(count() > frozen)
            #expect(try berth(root, ["pause", id]).status == 0)
            #expect(try berth(root, ["delete", "--force", id]).status == 0)
            #expect(try berth(root, ["state", id]).status == 1)
            RuntimeLifecycleTests.reapShims()
        }
    }

    /// `exec` as runc's: a command with the container's own process settings plus what the options change,
    /// or a --process file taken whole (user, capabilities, env); the exit code comes back; --detach
    /// returns once the process runs, its pid in --pid-file; a missing program is refused with its name;
    /// the container's seccomp filter applies to what is exec'd.
    @Test func execRunsProcessesAsTheContainersOwn() throws {
        try BusyboxBundle.with { b in
            try b.config("echo $$ > /dev/shm/init; sleep 30") { c in
                var l = c["linux"] as! [String: Any]
                l["seccomp"] = ["defaultAction": "SCMP_ACT_ALLOW", "syscalls": [["names": ["sethostname"], "action": "SCMP_ACT_ERRNO"]]]
                c["linux"] = l
            }
            try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/bin/id", withDestinationPath: "busybox")
            let (root, id) = try b.started("exec")
            let plain = try berth(root, ["exec", "-e", "EXTRA=1", "--cwd", "/bin", id, "sh", "-c",
                                         "echo $PATH $EXTRA $(pwd) $(cat /dev/shm/init); grep -E '^CapEff' /proc/self/status; exit 4"])
            #expect(plain.status == 4, "\(plain.stderr)")
            // The container's PATH and capabilities (3 of them), pid 1's namespace.
            #expect(plain.stdout == "/bin 1 /bin 1\nCapEff:\t0000000020000420\n", "\(plain.stdout)")
            let seccomp = try berth(root, ["exec", id, "hostname", "other"])
            #expect(seccomp.status != 0, "sethostname was not filtered: \(seccomp.stdout)")

            let process = b.dir + "/process.json"
            try JSONSerialization.data(withJSONObject: [
                "args": ["sh", "-c", "id -u; id -g; echo $ONLY; grep -E '^CapEff' /proc/self/status"], "env": ["ONLY=this", "PATH=/bin"], "cwd": "/",
                "user": ["uid": 1000, "gid": 1001], "terminal": false,
            ]).write(to: URL(fileURLWithPath: process))
            let asUser = try berth(root, ["exec", "--process", process, id])
            #expect(asUser.status == 0, "\(asUser.stderr)")
            #expect(asUser.stdout == "1000\n1001\nthis\nCapEff:\t0000000000000000\n", "\(asUser.stdout)")

            let pidFile = b.dir + "/exec.pid"
            // The process keeps the caller's stdio, so not the pipes of this test.
            let detached = try Shell.run("/bin/sh", ["-c", "exec \"$0\" runtime exec --root \"$1\" --detach --pid-file \"$2\" \"$3\" sleep 20 >/dev/null 2>&1",
                                                     Shell.berth, root, pidFile, id])
            #expect(detached.status == 0, "\(detached.stderr)")
            let pid = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "") ?? 0
            #expect(pid > 0 && kill(pid, 0) == 0, "no running process \(pid)")
            #expect(try berth(root, ["ps", "--format", "json", id]).stdout.contains("\(pid)"))
            if pid > 0 { kill(pid, SIGKILL); _ = waitpid(pid, nil, 0) }

            let missing = try berth(root, ["exec", id, "no-such-program"])
            #expect(missing.status == 1)
            #expect(missing.stderr == "berth runtime: container \(id): exec: no-such-program: No such file or directory\n", "\(missing.stderr)")
            let terminal = try berth(root, ["exec", "-t", id, "true"])
            #expect(terminal.stderr == "berth runtime: process.terminal is true: a terminal needs --console-socket\n", "\(terminal.stderr)")
            #expect(try berth(root, ["delete", "--force", id]).status == 0)
            #expect(try berth(root, ["exec", id, "true"]).stderr == "berth runtime: container \(id) does not exist\n")
            RuntimeLifecycleTests.reapShims()
        }
    }

    /// The six kinds of hook run at their points of the container's life with its state on stdin:
    /// startContainer inside the container before its process; a failing createRuntime hook fails create
    /// and leaves nothing; a hook past its timeout is killed; poststop's failure is only a warning.
    @Test func hooksRunInOrderWithTheState() throws {
        try BusyboxBundle.with { b in
            let log = b.dir + "/hooks.log"
            try "#!/bin/sh\nprintf '%s %s\\n' \"$1\" \"$(tr -d ' \\n' | grep -o '\"status\":\"[a-z]*\"')\" >> \(log)\n"
                .write(toFile: b.dir + "/hook", atomically: true, encoding: .utf8)
            try "#!/bin/sh\necho \"$1 $(cat | grep -c created)\" > /dev/shm/inside\n".write(toFile: b.dir + "/rootfs/bin/inside", atomically: true, encoding: .utf8)
            chmod(b.dir + "/hook", 0o755)
            chmod(b.dir + "/rootfs/bin/inside", 0o755)
            func hook(_ kind: String, path: String? = nil, timeout: Int? = nil) -> [[String: Any]] {
                var h: [String: Any] = ["path": path ?? b.dir + "/hook", "args": ["hook", kind]]
                if let timeout { h["timeout"] = timeout }
                return [h]
            }
            try b.config("cat /dev/shm/inside") { c in
                var hooks: [String: Any] = [:]
                for kind in ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] { hooks[kind] = hook(kind) }
                hooks["startContainer"] = [["path": "/bin/inside", "args": ["inside", "startContainer"]]]
                c["hooks"] = hooks
            }
            let (root, id) = try b.started("hooks")
            _ = try stateWhenStopped(root, id)
            #expect(try String(contentsOfFile: "\(root)/\(id)/container.log", encoding: .utf8) == "startContainer 1\n")
            #expect(try berth(root, ["delete", id]).status == 0)
            #expect(try String(contentsOfFile: log, encoding: .utf8) == """
                prestart "status":"creating"
                createRuntime "status":"creating"
                createContainer "status":"creating"
                poststart "status":"running"
                poststop "status":"stopped"

                """)

            try b.config("true") { c in
                c["hooks"] = ["createRuntime": hook("createRuntime", path: "/bin/false")]
            }
            let failed = try berth(root, ["create", "--container-log", "--bundle", b.dir, id])
            #expect(failed.status == 1)
            #expect(failed.stderr == "berth runtime: createRuntime hook /bin/false failed with status 1\n", "\(failed.stderr)")
            #expect(try berth(root, ["state", id]).status == 1)
            #expect(!FileManager.default.fileExists(atPath: "\(root)/\(id)"))

            try "#!/bin/sh\nsleep 10\n".write(toFile: b.dir + "/slow", atomically: true, encoding: .utf8)
            chmod(b.dir + "/slow", 0o755)
            try b.config("true") { c in
                c["hooks"] = ["prestart": hook("prestart", path: b.dir + "/slow", timeout: 1), "poststop": hook("poststop", path: "/bin/false")]
            }
            let start = monotonicSeconds()
            let slow = try berth(root, ["create", "--container-log", "--bundle", b.dir, id])
            #expect(slow.stderr == "berth runtime: prestart hook \(b.dir)/slow timed out after 1 s\n", "\(slow.stderr)")
            #expect(monotonicSeconds() - start < 5)
            try b.config("true") { c in c["hooks"] = ["poststop": hook("poststop", path: "/bin/false")] }
            let (_, second) = try b.started("hooks-warn")
            _ = try stateWhenStopped(root, second)
            let deleted = try berth(root, ["delete", second])
            #expect(deleted.status == 0)
            #expect(deleted.stderr == "berth runtime: warning: poststop hook /bin/false failed with status 1\n", "\(deleted.stderr)")
            RuntimeLifecycleTests.reapShims()
        }
    }

    /// As runc's: `create` gives the container its caller's stdin, stdout and stderr (a client reads the
    /// output until the container ends) and leaves no supervisor, writes the container's pid to
    /// --pid-file, and with --log and --log-format json puts a failure's reason in that file as a JSON line.
    @Test func createPassesStdioThroughAndWritesThePidFile() throws {
        try BusyboxBundle.with { b in
            try b.config("read line; echo \"out:$line\"; echo err >&2; exit 3")
            let root = b.dir + "/state"
            let id = "stdio-\(getpid())"
            let pidFile = b.dir + "/container.pid"
            // The container reads and writes the files create was given.
            #expect(FileManager.default.createFile(atPath: b.dir + "/in", contents: Data("hello\n".utf8)))
            let created = try Shell.run("/bin/sh", ["-c", "\"$0\" runtime create --root \"$1\" --bundle \"$2\" --pid-file \"$3\" \"$4\" > \"$2/out\" 2> \"$2/err\" < \"$2/in\"",
                                                    Shell.berth, root, b.dir, pidFile, id])
            #expect(created.status == 0, "\(created.stderr)")
            let state = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
            #expect(state?["status"] as? String == "created")
            #expect(try String(contentsOfFile: pidFile, encoding: .utf8) == "\(state?["pid"] as? Int ?? -1)")
            #expect(try berth(root, ["start", id]).status == 0)
            // No supervisor stays (the caller's subreaper, here init, reaps it), so no exit code is recorded.
            let stopped = try stateWhenStopped(root, id)
            #expect(stopped?["status"] as? String == "stopped")
            #expect(stopped?["annotations"] == nil)
            // This process may be a subreaper (the shims' tests adopt orphans): then the container is its to reap.
            _ = waitpid(Int32(state?["pid"] as? Int ?? 0), nil, 0)
            #expect(try String(contentsOfFile: b.dir + "/out", encoding: .utf8) == "out:hello\n")
            #expect(try String(contentsOfFile: b.dir + "/err", encoding: .utf8) == "err\n")
            #expect(!FileManager.default.fileExists(atPath: root + "/" + id + "/container.log"))

            // A second create of the same id fails; its reason is in the log, as JSON.
            let log = b.dir + "/runtime.log"
            let again = try Shell.run(Shell.berth, ["runtime", "--log", log, "--log-format", "json", "create", "--root", root, "--container-log",
                                                    "--bundle", b.dir, id])
            #expect(again.status == 1)
            #expect(again.stderr.isEmpty)
            let line = try JSONSerialization.jsonObject(with: Data(try String(contentsOfFile: log, encoding: .utf8).utf8)) as? [String: String]
            #expect(line?["level"] == "error")
            #expect(line?["msg"] == "container \(id) already exists")
            #expect(line?["time"]?.hasSuffix("Z") == true)
            _ = try berth(root, ["delete", id])
            RuntimeLifecycleTests.reapShims()
        }
    }

    @Test func detachedOutputGoesToRotatedLogs() throws {
        try BusyboxBundle.with { b in
            // 400 lines of 100 bytes: 40 kB through logs of 10 kB, 3 files kept.
            try b.config("i=0; while [ $i -lt 400 ]; do echo \"line $i $(printf '%090d' 0)\"; i=$((i+1)); done; echo last >&2")
            let root = b.dir + "/state"
            let id = "logs-\(getpid())"
            let created = try Shell.run(Shell.berth, ["runtime", "create", "--root", root, "--log-max-bytes", "10000", "--log-files", "3",
                                                      "--bundle", b.dir, id])
            #expect(created.status == 0, "\(created.stderr)")
            #expect(try berth(root, ["start", id]).status == 0)
            for _ in 0..<300 {
                let s = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
                if s?["status"] as? String == "stopped" { break }
                usleep(20_000)
            }
            let d = root + "/" + id
            let files = try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.hasPrefix("container.log") }.sorted()
            #expect(files == ["container.log", "container.log.1", "container.log.2"])
            for f in files {
                let size = (try FileManager.default.attributesOfItem(atPath: d + "/" + f)[.size] as? Int) ?? 0
                #expect(size <= 10_000, "\(f): \(size) bytes")
            }
            // Oldest to newest, the files end with the last lines written (where a rotation falls depends on
            // how the pipe's reads split the output).
            let joined = try ["container.log.2", "container.log.1", "container.log"]
                .map { try String(contentsOfFile: d + "/" + $0, encoding: .utf8) }.joined()
            #expect(joined.hasSuffix("line 399 \(String(repeating: "0", count: 90))\nlast\n"))
            #expect(try String(contentsOfFile: d + "/container.log", encoding: .utf8).hasSuffix("last\n"))
            _ = try berth(root, ["delete", id])
            RuntimeLifecycleTests.reapShims()
        }
    }
}
