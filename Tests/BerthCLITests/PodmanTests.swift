import BerthLinux
import BerthTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// podman 4.3 (through conmon) drives berth-runtime as it drives runc (`--runtime`): a container of an
/// image pulled from a loopback registry runs attached and detached, is exec'd into (with a terminal
/// too), logs, stops and is removed, with the same results from both runtimes.
@Suite(.serialized, .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/podman")
                                 && FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry"), "podman needs root"))
struct PodmanTests {
    @Test func podmanRunsExecsLogsStopsAndRemovesWithBerthRuntimeAsWithRunc() throws {
        Orphans.adopt()
        try Shell.withTempDir { dir in
            let registry = try TestRegistry(dir: dir + "/registry")
            defer { registry.stop() }
            try TestImages.make(dir + "/layout", tag: "1")
            try registry.push(dir + "/layout:1", to: "berth/busybox:1")
            let image = "\(registry.host)/berth/busybox:1"
            // Its own storage, state and temporary files; cgroupfs (no systemd here); events to a file. The run
            // root must be under 50 characters.
            let runRoot = "/tmp/berth-podman-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: runRoot) }
            let global = ["--root", dir + "/storage", "--runroot", runRoot, "--tmpdir", dir + "/tmp",
                          "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
            try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
            let cgroupsBefore = Set(PodmanTests.libpodCgroups())
            /// podman's stdout, and its stderr through a file: conmon keeps podman's stdio open after a detached
            /// run, and a test process that is a subreaper loses Foundation's wait on podman to conmon's exits.
            func podman(_ args: [String], terminal: Bool = false) throws -> Shell.Result {
                func quote(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
                var command = (["/usr/bin/podman"] + global + args).map(quote).joined(separator: " ")
                // `script` gives podman the terminal that -t needs.
                if terminal { command = "/usr/bin/script -qec \(quote(command)) /dev/null" }
                let r = try Subprocess.run(["/bin/sh", "-c", "exec \(command) 2>\"$0\" </dev/null", dir + "/podman.err"], timeout: 120)
                return Shell.Result(status: r.status, stdout: r.output, stderr: (try? String(contentsOfFile: dir + "/podman.err", encoding: .utf8)) ?? "")
            }
            defer {
                _ = try? podman(["rm", "-a", "-f", "-t", "0"])
                Orphans.reap(named: ["conmon", "podman"], waiting: true, matching: runRoot)
                for under in [dir, runRoot] {
                    _ = try? Shell.run("/bin/sh", ["-c", "grep -o ' \(under)[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"])
                }
                // podman leaves libpod_parent/conmon (cgroupfs) behind; what this test made goes.
                for path in PodmanTests.libpodCgroups() where !cgroupsBefore.contains(path) {
                    _ = try? Shell.run("/bin/sh", ["-c", "find \"$0\" -depth -type d -exec rmdir {} \\;", path])
                }
            }
            let pulled = try podman(["pull", "-q", "--tls-verify=false", image])
            try #require(pulled.status == 0, "\(pulled.stderr)")
            // Root here lacks CAP_SYS_RESOURCE: podman's default nofile and nproc are above its hard limits.
            let limits = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]

            for (name, binary, root) in [("runc", "/usr/sbin/runc", "/run/runc"), ("berth", Shell.berthRuntime, "/run/berth/runtime")] {
                let runtime = ["--runtime", binary]
                let once = try podman(runtime + ["run", "--rm"] + limits + [image, "sh", "-c", "echo hello; echo oops >&2; exit 3"])
                #expect(once.status == 3, "\(name): \(once.stderr)")
                #expect(once.stdout == "hello\n", "\(name): \(once.stdout)")
                #expect(once.stderr.contains("oops"), "\(name): \(once.stderr)")

                // A moment before exiting: conmon relays the terminal's output after the process ends, and under
                // load a process gone at once can end the session before its output is read (runc as berth).
                let onTerminal = try podman(runtime + ["run", "--rm", "-it"] + limits + [image, "sh", "-c", "tty; echo run-it ok; sleep 0.3; exit 6"], terminal: true)
                #expect(onTerminal.status == 6, "\(name): \(onTerminal.stdout) \(onTerminal.stderr)")
                #expect(onTerminal.stdout.contains("/dev/pts/0") && onTerminal.stdout.contains("run-it ok"), "\(name): \(onTerminal.stdout)")

                let started = try podman(runtime + ["run", "-d"] + limits + [image, "sh", "-c",
                                                                               "echo started; trap 'echo term; exit 5' TERM; while true; do sleep 0.1; done"])
                try #require(started.status == 0, "\(name): \(started.stderr)")
                let id = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(FileManager.default.fileExists(atPath: "\(root)/\(id)"), "\(name): no state in \(root)")

                let exec = try podman(runtime + ["exec", id, "sh", "-c", "echo in exec; exit 4"])
                #expect(exec.status == 4, "\(name): \(exec.stderr)")
                #expect(exec.stdout == "in exec\n", "\(name): \(exec.stdout)")
                let missing = try podman(runtime + ["exec", id, "no-such-program"])
                #expect(missing.status == 127, "\(name): \(missing.stderr)")
                let execOnTerminal = try podman(runtime + ["exec", "-it", id, "sh", "-c", "tty; echo exec-it ok; sleep 0.3"], terminal: true)
                #expect(execOnTerminal.status == 0, "\(name): \(execOnTerminal.stdout)")
                #expect(execOnTerminal.stdout.contains("/dev/pts/") && execOnTerminal.stdout.contains("exec-it ok"), "\(name): \(execOnTerminal.stdout)")

                let top = try podman(runtime + ["top", id, "pid", "args"])
                #expect(top.stdout.contains("while true"), "\(name): \(top.stdout) \(top.stderr)")
                #expect(try podman(runtime + ["pause", id]).status == 0)
                #expect(try podman(["inspect", "-f", "{{.State.Status}}", id]).stdout == "paused\n", "\(name)")
                #expect(try podman(runtime + ["unpause", id]).status == 0)

                let stopped = try podman(runtime + ["stop", "-t", "10", id])
                #expect(stopped.status == 0, "\(name): \(stopped.stderr)")
                let state = try podman(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id])
                #expect(state.stdout == "exited 5\n", "\(name): \(state.stdout) \(state.stderr)")
                let logs = try podman(runtime + ["logs", id])
                #expect(logs.stdout == "started\nterm\n", "\(name): \(logs.stdout) \(logs.stderr)")
                let removed = try podman(runtime + ["rm", id])
                #expect(removed.status == 0, "\(name): \(removed.stderr)")
                #expect(!FileManager.default.fileExists(atPath: "\(root)/\(id)"), "\(name): state left in \(root)")
                #expect(!PodmanTests.libpodCgroups().contains { $0.hasSuffix("libpod-" + id) }, "\(name): cgroup left")
            }
        }
    }

    /// The cgroup directories podman's cgroupfs manager makes (libpod_parent and what is under it).
    static func libpodCgroups() -> [String] {
        let base = "/sys/fs/cgroup"
        var found: [String] = []
        for controller in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            let parent = "\(base)/\(controller)/libpod_parent"
            guard FileManager.default.fileExists(atPath: parent) else { continue }
            found.append(parent)
            for child in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: parent + "/" + child, isDirectory: &isDirectory), isDirectory.boolValue {
                    found.append(parent + "/" + child)
                }
            }
        }
        return found
    }
}
