import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: getuid() == 0, "device nodes and ownership need root")) struct ImageTests {
    static let maker = Shell.packageRoot.appendingPathComponent("Tests/Fixtures/make-oci-layout.py").path

    func layout(_ kind: String, in dir: String, env: [String: String] = [:]) throws -> String {
        let out = dir + "/layout-" + kind
        let r = try Shell.run("python3", [ImageTests.maker, kind, out], env: env)
        #expect(r.status == 0, "\(r.stderr)")
        return out
    }

    @Test func importAppliesLayersWithWhiteouts() throws {
        try Shell.withTempDir { dir in
            let state = dir + "/state"
            let imported = try Shell.run(Shell.berth, ["image", "import", "--state-dir", state, try layout("good", in: dir)])
            #expect(imported.status == 0, "\(imported.stderr)")
            // Names are stored as references normalise them: `v1` is what a pod writing `image: v1` finds.
            #expect(imported.stdout.hasPrefix("docker.io/library/v1:latest sha256:"))
            let digest = String(imported.stdout.split(separator: " ")[1].dropFirst(7)).trimmingCharacters(in: .whitespacesAndNewlines)
            let rootfs = state + "/images/unpacked/\(digest)/rootfs"
            let fm = FileManager.default
            #expect(!fm.fileExists(atPath: rootfs + "/etc/hostname"))
            #expect(try fm.contentsOfDirectory(atPath: rootfs + "/data") == ["new.txt"])
            #expect(try fm.destinationOfSymbolicLink(atPath: rootfs + "/bin/sh") == "busybox")
            var a = stat(), b = stat()
            stat(rootfs + "/etc/motd", &a)
            stat(rootfs + "/etc/motd-link", &b)
            #expect(a.st_ino == b.st_ino)
            #expect(try Shell.run(Shell.berth, ["image", "ls", "--state-dir", state]).stdout.contains("docker.io/library/v1:latest\tsha256:\(digest)"))
            // Importing the same image again unpacks nothing new: the same digest, one tree.
            let again = try Shell.run(Shell.berth, ["image", "import", "--state-dir", state, try layout("good", in: dir) + ":v1"])
            #expect(again.stdout == imported.stdout)
            #expect(try fm.contentsOfDirectory(atPath: state + "/images/unpacked") == [digest])
            #expect(try Shell.run(Shell.berth, ["image", "rm", "--state-dir", state, "v1"]).status == 0)
            #expect(!fm.fileExists(atPath: rootfs))

            // The same layout as an oci-archive tar gives the same image.
            let archive = dir + "/image.tar"
            #expect(try Shell.run("tar", ["-C", try layout("good", in: dir), "-cf", archive, "."]).status == 0)
            let fromArchive = try Shell.run(Shell.berth, ["image", "import", "--state-dir", state, archive + ":v1"])
            #expect(fromArchive.stdout == imported.stdout, "\(fromArchive.stderr)")
        }
    }

    @Test func hostileLayersAreRefusedAndWriteNothingOutside() throws {
        try Shell.withTempDir { dir in
            let state = dir + "/state"
            let dotdot = try Shell.run(Shell.berth, ["image", "import", "--state-dir", state, try layout("dotdot", in: dir)])
            #expect(dotdot.status == 1)
            #expect(dotdot.stderr.contains("entry ../../escaped-by-dotdot: '..' is not allowed"))
            #expect(!FileManager.default.fileExists(atPath: state + "/escaped-by-dotdot"))
            #expect(!FileManager.default.fileExists(atPath: state + "/images/escaped-by-dotdot"))

            let outside = dir + "/outside"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            let escape = try Shell.run(Shell.berth, ["image", "import", "--state-dir", state,
                                                     try layout("symlink-escape", in: dir, env: ["ESCAPE_TARGET": outside])])
            #expect(escape.status == 1)
            #expect(escape.stderr.contains("entry link/evil: would write through the symlink or file link"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)

            let bad = try Shell.run(Shell.berth, ["image", "import", "--state-dir", state, try layout("bad-digest", in: dir)])
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("does not match its digest"))
            // Nothing half-unpacked is left behind.
            let unpacked = (try? FileManager.default.contentsOfDirectory(atPath: state + "/images/unpacked")) ?? []
            #expect(unpacked.isEmpty)
        }
    }

    @Test func containersRunOnAnOverlayOfTheImageOrOnTheHostRoot() throws {
        try Shell.withTempDir { dir in
            let state = dir + "/state"
            #expect(try Shell.run(Shell.berth, ["image", "import", "--state-dir", state, try layout("good", in: dir)]).status == 0)
            let bundle = dir + "/bundle"
            try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
            #expect(try Shell.run(Shell.berth, ["runtime", "spec", "--bundle", bundle]).status == 0)
            func script(_ s: String, mounts: [[String: Any]] = []) throws {
                var c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: bundle + "/config.json"))) as! [String: Any]
                c["mounts"] = (c["mounts"] as! [[String: Any]]) + mounts
                var p = c["process"] as! [String: Any]
                p["args"] = ["/bin/sh", "-c", s]
                c["process"] = p
                var root = c["root"] as! [String: Any]
                root["readonly"] = false
                c["root"] = root
                try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: bundle + "/config.json"))
            }
            try script("cat /etc/motd; echo x > /data/written; ls /data")
            let r = try Shell.run(Shell.berth, ["runtime", "run", "--root", dir + "/run", "--image", "v1", "--state-dir", state,
                                                "--bundle", bundle, "img-\(getpid())"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "hello\nnew.txt\nwritten\n")
            // The write went to the container's upper directory, never to the store.
            let unpacked = state + "/images/unpacked"
            let digest = try FileManager.default.contentsOfDirectory(atPath: unpacked)[0]
            #expect(try FileManager.default.contentsOfDirectory(atPath: "\(unpacked)/\(digest)/rootfs/data") == ["new.txt"])

            // A mount whose target the host lacks: made in the container's own layer, never on the host.
            let volume = dir + "/volume"
            try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
            try "in-volume\n".write(toFile: volume + "/v.txt", atomically: true, encoding: .utf8)
            let missing = "/etc/berth-missing-\(getpid())/data"
            try script("test -x /bin/busybox && echo host-root; touch /etc/berth-test 2>/dev/null || echo etc=ro; touch /tmp/x && echo tmp=rw; cat \(missing)/v.txt",
                       mounts: [["destination": missing, "type": "bind", "source": volume, "options": ["rbind", "ro"]]])
            let h = try Shell.run(Shell.berth, ["runtime", "run", "--root", dir + "/run", "--image", "host", "--bundle", bundle, "host-\(getpid())"])
            #expect(h.status == 0, "\(h.stderr)")
            #expect(h.stdout == "host-root\netc=ro\ntmp=rw\nin-volume\n")
            #expect(!FileManager.default.fileExists(atPath: "/etc/berth-test"))
            #expect(!FileManager.default.fileExists(atPath: "/etc/berth-missing-\(getpid())"))
        }
    }

    /// An image and a bundle made by umoci: the image imports with umoci's whiteouts applied, and umoci's
    /// bundle runs unchanged (but for `terminal`) with the same output as under runc, its cgroup mount
    /// showing the container's own cgroup, read-only.
    @Test func umociImageAndBundle() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/umoci") else {
            Issue.record("umoci is not installed (scripts/setup installs it)")
            return
        }
        try Shell.withTempDir { dir in
            func umoci(_ args: [String]) throws {
                let r = try Shell.run("umoci", args, cwd: dir)
                #expect(r.status == 0, "umoci \(args): \(r.stderr)")
            }
            try umoci(["init", "--layout", "layout"])
            try umoci(["new", "--image", "layout:bb"])
            try umoci(["unpack", "--image", "layout:bb", "bundle"])
            let rootfs = dir + "/bundle/rootfs"
            for sub in ["bin", "etc"] { try FileManager.default.createDirectory(atPath: rootfs + "/" + sub, withIntermediateDirectories: true) }
            try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
            for tool in ["sh", "ls", "cat", "touch", "hostname"] {
                try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + tool, withDestinationPath: "busybox")
            }
            try "old\n".write(toFile: rootfs + "/etc/old", atomically: false, encoding: .utf8)
            try umoci(["repack", "--image", "layout:bb", "bundle"])
            try FileManager.default.removeItem(atPath: rootfs + "/etc/old")
            try "new\n".write(toFile: rootfs + "/etc/new", atomically: false, encoding: .utf8)
            try umoci(["repack", "--image", "layout:bb", "bundle"])

            let state = dir + "/state"
            let imported = try Shell.run(Shell.berth, ["image", "import", "--state-dir", state, dir + "/layout:bb"])
            #expect(imported.status == 0, "\(imported.stderr)")

            // umoci's bundle, as it made it, but for a terminal berth does not give.
            let url = URL(fileURLWithPath: dir + "/bundle/config.json")
            var c = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            var process = c["process"] as! [String: Any]
            process["terminal"] = false
            process["args"] = ["sh", "-c", "ls /etc; echo $$; hostname; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; " +
                               "touch /sys/fs/cgroup/x 2>/dev/null || echo cgroup=ro"]
            c["process"] = process
            var linux = c["linux"] as! [String: Any]
            linux["resources"] = ["pids": ["limit": 77]]
            c["linux"] = linux
            try JSONSerialization.data(withJSONObject: c).write(to: url)
            let ours = try Shell.run(Shell.berth, ["runtime", "run", "--root", dir + "/run", "--bundle", dir + "/bundle", "umoci-\(getpid())"])
            #expect(ours.status == 0, "\(ours.stderr)")
            #expect(ours.stdout == "new\n1\numoci-default\n77\ncgroup=ro\n")
            let runc = try Shell.run("runc", ["--root", dir + "/runc", "run", "--bundle", dir + "/bundle", "umoci-runc-\(getpid())"])
            #expect(runc.stdout == ours.stdout, "\(runc.stderr)")

            // The imported image: layers applied in order, the second one's whiteout removing /etc/old.
            try FileManager.default.removeItem(atPath: rootfs)
            try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
            let image = try Shell.run(Shell.berth, ["runtime", "run", "--root", dir + "/run", "--image", "bb", "--state-dir", state,
                                                    "--bundle", dir + "/bundle", "umoci-image-\(getpid())"])
            #expect(image.status == 0, "\(image.stderr)")
            #expect(image.stdout == ours.stdout)
        }
    }
}
