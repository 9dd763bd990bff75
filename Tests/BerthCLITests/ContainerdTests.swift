import BerthTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// containerd 1.6's runc shim drives berth-runtime as it drives runc (`ctr run --runc-binary`): the same
/// commands give the same results with both.
@Suite(.serialized, .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/containerd"), "containerd needs root"))
struct ContainerdTests {
    @Test func ctrRunsContainersWithBerthRuntimeAsWithRunc() throws {
        Orphans.adopt()
        try Shell.withTempDir { dir in
            let namespace = "berth-test-\(getpid())"
            let socket = dir + "/containerd.sock"
            try """
                version = 2
                root = "\(dir)/root"
                state = "\(dir)/state"
                disabled_plugins = ["io.containerd.grpc.v1.cri"]
                [grpc]
                  address = "\(socket)"
                """.write(toFile: dir + "/config.toml", atomically: true, encoding: .utf8)
            let daemon = Process()
            daemon.executableURL = URL(fileURLWithPath: "/usr/bin/containerd")
            daemon.arguments = ["--config", dir + "/config.toml"]
            daemon.standardOutput = FileHandle.nullDevice
            daemon.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try daemon.run()
            func ctr(_ args: [String]) throws -> Shell.Result {
                try Shell.run("/usr/bin/ctr", ["--address", socket, "--namespace", namespace] + args)
            }
            defer {
                // Whatever a failed check left: tasks, containers, the daemon, its shims, their cgroups.
                if let tasks = try? ctr(["task", "ls", "-q"]).stdout.split(separator: "\n") {
                    for t in tasks { _ = try? ctr(["task", "kill", "-a", "-s", "KILL", String(t)]); _ = try? ctr(["task", "rm", "-f", String(t)]) }
                }
                if let containers = try? ctr(["container", "ls", "-q"]).stdout.split(separator: "\n") {
                    for c in containers { _ = try? ctr(["container", "rm", String(c)]) }
                }
                daemon.terminate()
                daemon.waitUntilExit()
                Orphans.reap(named: ["containerd-shim"], waiting: true, matching: socket)
                Orphans.reap(named: ["containerd-shim", "sh", "sleep"])
                _ = try? Shell.run("/bin/sh", ["-c", "grep -o ' \(dir)[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"])
                for controller in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? [] {
                    _ = try? Shell.run("/bin/sh", ["-c", "[ -d \"$0\" ] && find \"$0\" -depth -type d -exec rmdir {} \\;", "/sys/fs/cgroup/\(controller)/\(namespace)"])
                }
                try? FileManager.default.removeItem(atPath: "/run/containerd/runc/" + namespace)
            }
            var up = false
            for _ in 0..<100 where !up {
                up = (try? ctr(["version"]))?.status == 0
                if !up { usleep(50_000) }
            }
            try #require(up, "containerd did not answer on \(socket)")
            let image = try BusyboxImage.ociArchive(in: dir, name: "docker.io/library/berth-busybox:1")
            let imported = try ctr(["images", "import", image])
            try #require(imported.status == 0, "\(imported.stderr)")

            for (name, binary) in [("runc", "/usr/sbin/runc"), ("berth", Shell.berthRuntime)] {
                // Attached: the output and the exit code come back through the shim.
                let run = try ctr(["run", "--rm", "--runc-binary", binary, "docker.io/library/berth-busybox:1", "\(name)-once",
                                   "sh", "-c", "echo hello; echo oops >&2; exit 7"])
                #expect(run.status == 7, "\(name): \(run.stderr)")
                #expect(run.stdout == "hello\n", "\(name): \(run.stdout)")
                #expect(run.stderr.hasPrefix("oops\n"), "\(name): \(run.stderr)")

                // Detached: running, killed, stopped with 137, removed.
                let id = "\(name)-detached"
                let started = try ctr(["run", "-d", "--runc-binary", binary, "docker.io/library/berth-busybox:1", id, "sleep", "1000"])
                #expect(started.status == 0, "\(name): \(started.stderr)")
                #expect(try ctr(["task", "ls"]).stdout.contains("RUNNING"), "\(name)")
                #expect(try ctr(["task", "kill", "-s", "KILL", id]).status == 0)
                var stopped = false
                for _ in 0..<100 where !stopped {
                    stopped = try ctr(["task", "ls"]).stdout.split(separator: "\n").contains { $0.hasPrefix(id + " ") && $0.hasSuffix("STOPPED") }
                    if !stopped { usleep(50_000) }
                }
                let tasks = try ctr(["task", "ls"]).stdout
                #expect(stopped, "\(name): \(tasks)")
                let removed = try ctr(["task", "rm", id])
                #expect(removed.status == 0, "\(name): \(removed.stderr)")
                #expect(try ctr(["container", "rm", id]).status == 0)
                #expect(!FileManager.default.fileExists(atPath: "/run/containerd/runc/\(namespace)/\(id)"), "\(name)")
            }
        }
    }
}

/// A busybox image as an OCI image-layout archive (`ctr images import`, `podman load`).
enum BusyboxImage {
    static func ociArchive(in dir: String, name: String) throws -> String {
        let script = """
            import hashlib, io, json, sys, tarfile
            out, name = sys.argv[1], sys.argv[2]
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w") as t:
                d = tarfile.TarInfo("bin"); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
                data = open("/bin/busybox", "rb").read()
                f = tarfile.TarInfo("bin/busybox"); f.size = len(data); f.mode = 0o755; t.addfile(f, io.BytesIO(data))
                for tool in ["sh", "echo", "cat", "sleep", "tr", "true", "hostname"]:
                    l = tarfile.TarInfo("bin/" + tool); l.type = tarfile.SYMTYPE; l.linkname = "busybox"; t.addfile(l)
            layer = layer.getvalue()
            digest = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
            config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                                 "rootfs": {"type": "layers", "diff_ids": [digest(layer)]}}).encode()
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
                                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}]}).encode()
            index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest),
                                "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": name, "io.containerd.image.name": name}}]}).encode()
            with tarfile.open(out, "w") as t:
                for path, data in [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index)] + \\
                        [("blobs/sha256/" + digest(b)[7:], b) for b in (layer, config, manifest)]:
                    i = tarfile.TarInfo(path); i.size = len(data); t.addfile(i, io.BytesIO(data))
            """
        let out = dir + "/busybox-oci.tar"
        let r = try Shell.run("/usr/bin/python3", ["-c", script, out, name])
        guard r.status == 0 else { throw TestFailure("building the image archive: \(r.stderr)") }
        return out
    }
}
