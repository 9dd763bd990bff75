import BerthLinux
import BerthTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Attacks on the runtime from a hostile bundle or from inside the container; each asserts that nothing
/// outside the container changed.
@Suite(.serialized, .enabled(if: getuid() == 0, "namespaces need root")) struct RuntimeContainmentTests {
    /// berth-shims outlive the berth that started them: the test process adopts and reaps them.
    init() { Orphans.adopt() }

    /// A host directory beside the bundle that no step may touch.
    func hostDirectory(_ b: BusyboxBundle) throws -> String {
        let host = b.dir + "/host-owned"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: false)
        return host
    }

    func entries(_ dir: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] }

    @Test func mountTargetsThroughLinksStayInsideTheRoot() throws {
        try BusyboxBundle.with { b in
            _ = try hostDirectory(b)
            try FileManager.default.createDirectory(atPath: b.dir + "/rootfs/data", withIntermediateDirectories: false)
            // A link climbing out of the root resolves inside it, as the container will see it.
            try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/climb", withDestinationPath: "../../../../../../../../data")
            try Shell.write("host file", to: b.dir + "/source.txt")
            try b.config("cat /data/file.txt; echo; grep -c ' /data/file.txt ' /proc/self/mountinfo") { c in
                var mounts = c["mounts"] as! [[String: Any]]
                mounts.append(["destination": "/climb/file.txt", "type": "bind", "source": b.dir + "/source.txt", "options": ["bind", "ro"]])
                c["mounts"] = mounts
            }
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "links-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "host file\n1\n")
            #expect(entries(b.dir).sorted() == ["config.json", "host-owned", "rootfs", "source.txt"])
        }
        try BusyboxBundle.with { b in
            let host = try hostDirectory(b)
            // An absolute link to a host directory: inside the root it leads nowhere, so nothing is made
            // through it and the container does not start.
            try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/escape", withDestinationPath: host)
            try b.config("echo ran") { c in
                var mounts = c["mounts"] as! [[String: Any]]
                mounts.append(["destination": "/escape/sub", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]])
                c["mounts"] = mounts
            }
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "escape-\(getpid())"])
            #expect(r.status != 0)
            #expect(r.stdout.isEmpty)
            #expect(r.stderr.contains("/escape/sub"), "\(r.stderr)")
            #expect(entries(host).isEmpty, "the host directory was written: \(entries(host))")
        }
    }

    @Test func aRootfsWhoseDevOrProcIsALinkIsRefused() throws {
        for name in ["dev", "proc"] {
            try BusyboxBundle.with { b in
                let host = try hostDirectory(b)
                try? FileManager.default.removeItem(atPath: b.dir + "/rootfs/" + name)
                try FileManager.default.createSymbolicLink(atPath: b.dir + "/rootfs/" + name, withDestinationPath: host)
                try b.config("echo ran") { c in
                    var linux = c["linux"] as! [String: Any]
                    linux["devices"] = [["path": "/dev/made", "type": "c", "major": 1, "minor": 3, "fileMode": 438]]
                    c["linux"] = linux
                }
                let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "\(name)-link-\(getpid())"])
                #expect(r.status != 0)
                #expect(r.stdout.isEmpty)
                #expect(r.stderr.contains("/\(name)") && r.stderr.contains("symbolic link"), "\(r.stderr)")
                #expect(entries(host).isEmpty, "the host directory was written: \(entries(host))")
            }
        }
    }

    @Test func theDeviceCgroupDeniesWhatTheConfigDoesNotAllow() throws {
        // /dev/loop-control (10:237) is harmless to open, and in no default allow list.
        let script = "mknod /dev/lc c 10 237 && echo mknod=ok; (: < /dev/lc) 2>/dev/null && echo lc=open || echo lc=denied; " +
            "(: < /dev/null) && echo null=open; mknod /dev/full2 c 1 7 && (: < /dev/full2) && echo full=open"
        func caps(_ c: inout [String: Any], rules: [[String: Any]]?) {
            var process = c["process"] as! [String: Any]
            let list = ["CAP_MKNOD", "CAP_KILL"]
            process["capabilities"] = ["bounding": list, "effective": list, "permitted": list]
            c["process"] = process
            if let rules {
                var linux = c["linux"] as! [String: Any]
                linux["resources"] = ["devices": rules]
                c["linux"] = linux
            }
        }
        try BusyboxBundle.with { b in
            try b.config(script) { caps(&$0, rules: nil) }
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "devices-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "mknod=ok\nlc=denied\nnull=open\nfull=open\n")
        }
        try BusyboxBundle.with { b in
            try b.config(script) {
                caps(&$0, rules: [["allow": false, "access": "rwm"], ["allow": true, "type": "c", "major": 10, "minor": 237, "access": "r"]])
            }
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "devices-allowed-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "mknod=ok\nlc=open\nnull=open\nfull=open\n")
        }
    }

    @Test func aContainerCannotSignalItsSupervisor() throws {
        try BusyboxBundle.with { b in
            // kill(0, SIGKILL) from a child of the container's PID 1: it reaches the container's own process
            // group only; PID 1 goes on and its exit code is recorded.
            try b.config("sleep 0.3; sh -c 'kill -KILL 0'; exit 7")
            let root = b.dir + "/state"
            let id = "signal-\(getpid())"
            #expect(try berth(root, ["create", "--container-log", "--bundle", b.dir, id]).status == 0)
            #expect(try berth(root, ["start", id]).status == 0)
            let s = try JSONSerialization.jsonObject(with: Data(try berth(root, ["state", id]).stdout.utf8)) as? [String: Any]
            let pid = s?["pid"] as? Int ?? 0
            // The container's process leads a session of its own.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat[(stat.lastIndex(of: ")").map { stat.index(after: $0) } ?? stat.startIndex)...].split(separator: " ")
            #expect(fields.count > 4 && fields[3] == "\(pid)", "session of \(pid): \(fields.prefix(5))")
            let last = try stateWhenStopped(root, id, tries: 200)
            #expect((last?["annotations"] as? [String: String])?["berth.exitCode"] == "7")
            _ = try berth(root, ["delete", "--force", id])
            RuntimeLifecycleTests.reapShims()
        }
    }

    @Test func privilegeEscalationWithSeccompStarts() throws {
        try BusyboxBundle.with { b in
            try b.config("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /dev/shm/x 2>/dev/null && echo mkdir=yes || echo mkdir=no") { c in
                var process = c["process"] as! [String: Any]
                process["noNewPrivileges"] = false
                c["process"] = process
                var linux = c["linux"] as! [String: Any]
                linux["seccomp"] = ["defaultAction": "SCMP_ACT_ALLOW",
                                    "syscalls": [["names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1]]]
                c["linux"] = linux
            }
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--bundle", b.dir, "escalation-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "NoNewPrivs:\t0\nSeccomp:\t2\nmkdir=no\n")
        }
    }

    /// cgroup v2's device controller (a BPF program), on this host's cgroup2 mount: a process in the
    /// cgroup opens what the rules allow and nothing else.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs") || Cgroup.detectVersion() == .v2))
    func theV2DeviceProgramDeniesWhatTheRulesDoNotAllow() throws {
        let root = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup"
        let dir = root + "/berth-devices-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { rmdir(dir) }
        var limits = CgroupLimits()
        limits.devices = [DeviceRule(allow: true, type: "c", major: 10, minor: 237, access: "r")]
        try Cgroup.attachDeviceProgram(dir, limits)
        // The shell moves itself in, then opens; it exits, so the cgroup is empty again for rmdir.
        let script = "echo $$ > \(dir)/cgroup.procs; (: < /dev/null) && echo null=open; (: < /dev/loop-control) 2>/dev/null && echo lc-read=open || echo lc-read=denied; " +
            "(: > /dev/loop-control) 2>/dev/null && echo lc-write=open || echo lc-write=denied; (: < /dev/kvm) 2>/dev/null && echo kvm=open || echo kvm=denied"
        let r = try Shell.run("/bin/sh", ["-c", script])
        #expect(r.stdout == "null=open\nlc-read=open\nlc-write=denied\nkvm=denied\n", "\(r.stderr)")
    }
}
