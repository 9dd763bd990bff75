import BerthLinux
import BerthModel
import BerthNode
import BerthTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Attacks on the node from inside pods: each asserts that nothing outside the pod changed.
extension NodeAgentTests {
    @Suite struct Containment {
        /// ConfigMap volumes are read-only with a `..data` swap, so a planted link cannot be written
        /// through; a subPath through a link planted in an emptyDir stays inside the volume; the shims of
        /// ended containers are collected.
        @Test func projectedVolumesAndSubPathsCannotReachTheHost() async throws {
            try await NodeHarness.with { h, agent in
                let host = h.dir + "/host-owned"
                try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: false)
                var cm = ConfigMap()
                cm.metadata = ObjectMeta(name: "conf", namespace: "default")
                cm.data = ["app.conf": "v1"]
                var keys = ProjectedKeys()
                keys.name = "conf"
                var item = ProjectedKeys.Item()
                item.key = "app.conf"
                item.path = "sub/app.conf"
                keys.items = [item]
                var conf = Volume(), work = Volume()
                conf.name = "conf"; conf.source = .configMap(keys)
                work.name = "work"; work.source = .emptyDir(medium: nil, sizeLimit: nil)
                let plant = container("plant", "ln -s \(host) /work/evil; ln -s ../../../../../../../.. /work/up")
                var main = container("main", "rm -rf /etc/app/sub 2>/dev/null; ln -s \(host) /etc/app/sub 2>&1; touch /etc/app/new 2>&1; exec sleep 1000")
                main.volumeMounts = [mount("conf", "/etc/app", readOnly: false), mount("work", "/climb", subPath: "up/etc")]
                var p = pod("victim", main)
                p.spec.initContainers = [{ var c = plant; c.volumeMounts = [mount("work", "/work")]; return c }()]
                p.spec.volumes = [conf, work]
                // A subPath through a link to a host directory leads nowhere inside the volume: refused,
                // with nothing made on the host.
                var linker = p
                linker.metadata.name = "linker"
                linker.spec.containers[0].volumeMounts = [mount("work", "/escape", subPath: "evil/inside")]
                var view = ClusterView(configMaps: [cm])
                await agent.update(pods: [p, linker], view: view)
                try await NodeHarness.eventually("the pod runs") { await agent.status(namespace: "default", name: "victim")?.ready == true }
                try await NodeHarness.eventually("the link is refused") {
                    guard case .waiting("CreateContainerConfigError", let message)? = await agent.status(namespace: "default", name: "linker")?.containerStatuses.first?.state else { return false }
                    return message?.contains("subPath evil/inside") == true
                }
                try await NodeHarness.eventually("the writes are refused", timeout: 5) {
                    await agent.log("victim", "main").components(separatedBy: "Read-only file system").count == 3
                }
                let listing = try await agent.exec(namespace: "default", name: "victim", container: "main", ["ls", "-a", "/etc/app"]).output
                #expect(listing.split(separator: "\n").contains("..data"), "\(listing)")
                // A link climbing out resolves inside the volume, as if the volume were the root.
                #expect(try await agent.exec(namespace: "default", name: "victim", container: "main", ["ls", "/climb"]).output == "")

                view.configMaps["default/conf"]!.data["app.conf"] = "v2"
                await agent.update(pods: [p], view: view)
                try await NodeHarness.eventually("the file changes", timeout: 5) {
                    (try? await agent.exec(namespace: "default", name: "victim", container: "main", ["cat", "/etc/app/sub/app.conf"]).output) == "v2"
                }
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: host)) ?? ["?"]).isEmpty, "the host directory was written")

                await agent.update(pods: [], view: view)
                try await NodeHarness.eventually("the pods are gone") { await agent.statuses().isEmpty }
                // Every shim the agent started has been waited for (no zombie left).
                try await NodeHarness.eventually("the shims are reaped", timeout: 5) {
                    await agent.tick()
                    return Reaper.count == 0
                }
                #expect((try? FileManager.default.contentsOfDirectory(atPath: h.config.runDir + "/pods")) ?? [] == [])
            }
        }

        /// An exec probe and `exec` run as the container does: its user, no capabilities beyond its own,
        /// its seccomp filter and no_new_privs; and `image: host` hides the host's secrets.
        @Test func execHasTheContainersIdentityAndTheHostViewIsCurated() async throws {
            try await NodeHarness.with { h, agent in
                var c = container("main", "exec sleep 1000")
                var sc = SecurityContext()
                sc.runAsUser = 1000
                sc.capabilities.drop = ["ALL"]
                c.securityContext = sc
                // The probe passes only as uid 1000 without capabilities.
                c.livenessProbe = execProbe("test $(id -u) = 1000 && grep -q '^CapEff:.0000000000000000' /proc/self/status")
                c.readinessProbe = execProbe("test $(id -u) = 1000")
                // runAsNonRoot with the image's root user: refused at start, as the kubelet does.
                var rooted = container("main", "exec sleep 1000")
                rooted.securityContext = { var s = SecurityContext(); s.runAsNonRoot = true; return s }()
                // The pod's runAsUser applies to a container that sets none.
                var podLevel = pod("podlevel", container("main", "exec sleep 1000"))
                podLevel.spec.securityContext = { var s = PodSecurityContext(); s.runAsUser = 2000; return s }()
                await agent.update(pods: [pod("who", c), pod("rooted", rooted), podLevel], view: ClusterView())
                try await NodeHarness.eventually("runAsNonRoot is refused") {
                    guard case .waiting("CreateContainerConfigError", let m)? = await agent.status(namespace: "default", name: "rooted")?.containerStatuses.first?.state else { return false }
                    return m?.contains("runAsNonRoot and image will run as root") == true
                }
                try await NodeHarness.eventually("the pod is ready") { await agent.status(namespace: "default", name: "who")?.ready == true }
                let out = try await agent.exec(namespace: "default", name: "who", container: "main",
                                               ["sh", "-c", "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; cat /etc/shadow 2>&1 | wc -c; ls -A /root | wc -l; grep ' /tmp ' /proc/self/mounts | grep -c size=65536k"]).output
                #expect(out == "1000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n0\n0\n1\n")
                // The default profile: personality only with Docker's values, io_uring refused (EPERM).
                let calls = try await agent.exec(namespace: "default", name: "who", container: "main", ["python3", "-c", """
                    import ctypes; l = ctypes.CDLL(None, use_errno=True)
                    print(l.personality(ctypes.c_ulong(0xffffffff)) >= 0, l.personality(ctypes.c_ulong(0x0040000)), ctypes.get_errno())
                    print(l.syscall(425, 1, ctypes.create_string_buffer(120)), ctypes.get_errno())
                    """]).output
                #expect(calls == "True -1 1\n-1 1\n")
                try await NodeHarness.eventually("the pod-level user applies") {
                    (try? await agent.exec(namespace: "default", name: "podlevel", container: "main", ["id", "-u"]).output) == "2000\n"
                }
                try await Task.sleep(nanoseconds: 2_500_000_000)
                #expect(await agent.status(namespace: "default", name: "who")?.containerStatuses.first?.restartCount == 0)
            }
        }
        /// An `image: host` pod sees neither berth's state (the API token, the store journal, the Git
        /// mirror, Secrets) nor its run directory, even where they sit on the host's root filesystem.
        @Test func hostImagePodsCannotReadBerthsState() async throws {
            let outside = "/var/tmp/berth-hygiene-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: outside) }
            try await NodeHarness.with(configure: { $0.stateDir = outside + "/state"; $0.runDir = outside + "/run" }) { _, agent in
                try "s3cret-token".write(toFile: outside + "/state/api-token", atomically: true, encoding: .utf8)
                try FileManager.default.createDirectory(atPath: outside + "/state/store", withIntermediateDirectories: true)
                try "journal".write(toFile: outside + "/state/store/journal", atomically: true, encoding: .utf8)
                let script = "cat \(outside)/state/api-token \(outside)/state/store/journal 2>&1; find \(outside)/state \(outside)/run -mindepth 1 | wc -l; echo done; exec sleep 1000"
                await agent.update(pods: [pod("snoop", container("main", script))], view: ClusterView())
                try await NodeHarness.eventually("the pod ran") { await agent.log("snoop", "main").hasSuffix("done\n") }
                let log = await agent.log("snoop", "main")
                #expect(!log.contains("s3cret") && !log.contains("journal\n"), "\(log)")
                #expect(log.hasSuffix("\n0\ndone\n"), "\(log)")
                var st = stat()
                #expect(stat(outside + "/state", &st) == 0 && st.st_mode & 0o777 == 0o700)
                #expect(stat(outside + "/run", &st) == 0 && st.st_mode & 0o777 == 0o700)
            }
        }
        /// Capabilities beyond baseline (a namespace at the privileged level) need a node that allows
        /// privileged pods; without it the container is not created.
        @Test func capabilitiesBeyondBaselineNeedANodeThatAllowsThem() async throws {
            var c = container("main", "grep CapEff /proc/self/status; exec sleep 1000")
            c.securityContext = { var s = SecurityContext(); s.capabilities.add = ["SYS_ADMIN"]; return s }()
            try await NodeHarness.with { _, agent in
                await agent.update(pods: [pod("admin", c)], view: ClusterView())
                try await NodeHarness.eventually("the container is refused") {
                    guard case .waiting("CreateContainerConfigError", let m)? = await agent.status(namespace: "default", name: "admin")?.containerStatuses.first?.state else { return false }
                    return m?.contains("capability SYS_ADMIN is beyond Pod Security's baseline") == true
                }
            }
            try await NodeHarness.with(configure: { $0.allowPrivileged = true }) { _, agent in
                await agent.update(pods: [pod("admin", c)], view: ClusterView())
                try await NodeHarness.eventually("the container runs with SYS_ADMIN") {
                    // Docker's 14 defaults (a80425fb) plus CAP_SYS_ADMIN (bit 21).
                    await agent.log("admin", "main") == "CapEff:\t00000000a82425fb\n"
                }
            }
        }

        /// A downwardAPI volume holds the pod's metadata as the kubelet writes it, read-only, via ..data.
        @Test func downwardAPIVolumesCarryThePodsMetadata() async throws {
            try await NodeHarness.with { _, agent in
                var files = DownwardAPIFiles()
                for (path, field) in [("name", "metadata.name"), ("labels", "metadata.labels"), ("tier", "metadata.labels['tier']")] {
                    var item = DownwardAPIFiles.Item()
                    item.path = path
                    item.fieldPath = field
                    files.items.append(item)
                }
                var v = Volume()
                v.name = "info"
                v.source = .downwardAPI(files)
                var c = container("main", "cat /info/name; echo; cat /info/labels; echo; cat /info/tier; echo; touch /info/x 2>&1; ls -A /info | grep -c '^..data$'; exec sleep 1000")
                c.volumeMounts = [mount("info", "/info")]
                var p = pod("meta", labels: ["app": "shop", "tier": "front"], c)
                p.spec.volumes = [v]
                await agent.update(pods: [p], view: ClusterView())
                try await NodeHarness.eventually("the pod wrote what it read") { await agent.log("meta", "main").hasSuffix("1\n") }
                #expect(await agent.log("meta", "main") == "meta\napp=\"shop\"\ntier=\"front\"\nfront\ntouch: cannot touch '/info/x': Read-only file system\n1\n")
            }
        }

        /// An exec into a default (root) container has the container's capabilities and filter, not the
        /// agent's: the open_by_handle_at escape (read any host file by handle) is refused.
        @Test func execCannotOpenHostFilesByHandle() async throws {
            try await NodeHarness.with { _, agent in
                await agent.update(pods: [pod("plain", container("main", "exec sleep 1000"))], view: ClusterView())
                try await NodeHarness.eventually("the pod is ready") { await agent.status(namespace: "default", name: "plain")?.ready == true }
                let out = try await agent.exec(namespace: "default", name: "plain", container: "main", ["python3", "-c", """
                    import ctypes; l = ctypes.CDLL(None, use_errno=True)
                    print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])
                    h = ctypes.create_string_buffer(128); ctypes.memmove(h, (128).to_bytes(4, 'little'), 4); m = ctypes.c_int()
                    print(l.syscall(303, -100, b"/", h, ctypes.byref(m), 0), ctypes.get_errno())
                    print(l.syscall(304, -100, h, 0), ctypes.get_errno())
                    """]).output
                // Docker's 14 capabilities (no DAC_READ_SEARCH); both calls EPERM from the seccomp filter.
                #expect(out == "00000000a80425fb\n-1 1\n-1 1\n")
            }
        }

        /// A mountPath through a link of the host's root (/var/run → /run on Debian) lands inside the
        /// container: nothing is made on the host.
        @Test func mountPathsThroughHostLinksStayInTheContainer() async throws {
            let name = "berth-linktest-\(getpid())"
            try await NodeHarness.with { _, agent in
                var work = Volume()
                work.name = "work"
                var c = container("main", "touch /var/run/\(name)/x && ls /run/\(name); exec sleep 1000")
                c.volumeMounts = [mount("work", "/var/run/\(name)")]
                var p = pod("linked", c)
                p.spec.volumes = [work]
                await agent.update(pods: [p], view: ClusterView())
                try await NodeHarness.eventually("the pod wrote through the link") { await agent.log("linked", "main") == "x\n" }
                #expect(!FileManager.default.fileExists(atPath: "/run/\(name)"))
                #expect(!FileManager.default.fileExists(atPath: "/var/run/\(name)"))
            }
        }
    }
}
