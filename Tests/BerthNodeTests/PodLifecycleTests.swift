import BerthLinux
import BerthModel
import BerthNode
import Foundation
import Testing

extension NodeAgentTests {
    @Suite struct PodLifecycleTests {
        /// Init containers run first, in order, into a shared emptyDir; the container gets env from values,
        /// ConfigMaps, Secrets and fields; the pod runs and has an IP from the node's range.
        @Test func initContainersEnvironmentAndVolumes() async throws {
            try await NodeHarness.with { h, agent in
                var cm = ConfigMap()
                cm.metadata = ObjectMeta(name: "settings", namespace: "default")
                cm.data = ["greeting": "hello", "mode": "fast"]
                var secret = Secret()
                secret.metadata = ObjectMeta(name: "creds", namespace: "default")
                secret.data = ["password": Array("s3cret".utf8)]
                var p = pod("app", container("main", "cat /work/steps; echo \"$GREETING $POD_NAME $POD_NS $POD_IP $PASSWORD $mode $NODE\"; exec sleep 1000"))
                p.spec.initContainers = [container("first", "echo one >> /work/steps"), container("second", "echo two >> /work/steps")]
                var work = Volume()
                work.name = "work"
                p.spec.volumes = [work]
                for i in p.spec.initContainers.indices { p.spec.initContainers[i].volumeMounts = [mount("work", "/work")] }
                p.spec.containers[0].volumeMounts = [mount("work", "/work")]
                p.spec.containers[0].env = [env("GREETING", .configMapKeyRef(key("settings", "greeting"))), env("PASSWORD", .secretKeyRef(key("creds", "password"))),
                                            env("POD_NAME", .fieldRef(fieldPath: "metadata.name")), env("POD_NS", .fieldRef(fieldPath: "metadata.namespace")),
                                            env("POD_IP", .fieldRef(fieldPath: "status.podIP")), env("NODE", .fieldRef(fieldPath: "spec.nodeName"))]
                var from = EnvFromSource()
                from.source = .configMap(name: "settings", optional: false)
                p.spec.containers[0].envFrom = [from]
                await agent.update(pods: [p], view: ClusterView(configMaps: [cm], secrets: [secret]))
                try await NodeHarness.eventually("the pod runs") { await agent.status(namespace: "default", name: "app")?.phase == .running }
                let s = await agent.status(namespace: "default", name: "app")!
                #expect(s.podIP?.hasPrefix("10.244.0.") == true)
                #expect(s.initContainerStatuses.map(\.state.reason) == ["Completed", "Completed"])
                #expect(s.ready)
                try await NodeHarness.eventually("the container printed its environment") { await agent.log("app", "main").contains("hello") }
                #expect(await agent.log("app", "main") == "one\ntwo\nhello app default \(s.podIP!) s3cret fast node-1\n")
            }
        }

        /// A missing ConfigMap key keeps the container waiting with CreateContainerConfigError, and it starts
        /// once the key appears.
        @Test func aMissingKeyWaitsThenStarts() async throws {
            try await NodeHarness.with { h, agent in
                var p = pod("waiter", container("main", "echo $V; exec sleep 1000"))
                p.spec.containers[0].env = [env("V", .configMapKeyRef(key("late", "v")))]
                await agent.update(pods: [p], view: ClusterView())
                try await NodeHarness.eventually("the container waits") {
                    await agent.status(namespace: "default", name: "waiter")?.containerStatuses.first?.state.reason == "CreateContainerConfigError"
                }
                let waiting = await agent.status(namespace: "default", name: "waiter")!
                #expect(waiting.phase == .pending)
                guard case .waiting(_, let message?) = waiting.containerStatuses[0].state else { Issue.record("not waiting"); return }
                #expect(message.contains("configmap \"late\" not found"))
                var cm = ConfigMap()
                cm.metadata = ObjectMeta(name: "late", namespace: "default")
                cm.data = ["v": "arrived"]
                await agent.update(pods: [p], view: ClusterView(configMaps: [cm]))
                try await NodeHarness.eventually("the container runs") { await agent.status(namespace: "default", name: "waiter")?.phase == .running }
                try await NodeHarness.eventually("it printed the value") { await agent.log("waiter", "main") == "arrived\n" }
            }
        }
    }
}

func mount(_ name: String, _ path: String, subPath: String? = nil, readOnly: Bool = false) -> VolumeMount {
    var m = VolumeMount()
    m.name = name
    m.mountPath = path
    m.subPath = subPath
    m.readOnly = readOnly
    return m
}

func env(_ name: String, _ source: EnvVarSource) -> EnvVar {
    var e = EnvVar()
    e.name = name
    e.valueFrom = source
    return e
}

func key(_ name: String, _ key: String) -> KeySelector {
    var k = KeySelector()
    k.name = name
    k.key = key
    return k
}

extension NodeAgentTests {
    @Suite struct PodHealthTests {
        /// A liveness failure kills the container, which restarts after the backoff (1 s, then 2 s, capped at
        /// 4 s in the harness), the previous run's log kept; a memory hog is OOMKilled and restarted.
        @Test func livenessRestartsWithBackoffAndOOMKills() async throws {
            try await NodeHarness.with { h, agent in
                var sick = pod("sick", container("main", "echo run; exec sleep 1000"))
                sick.spec.terminationGracePeriodSeconds = 1
                sick.spec.containers[0].livenessProbe = execProbe("false")
                var hog = pod("hog", container("main", "exec tail /dev/zero"))
                hog.spec.containers[0].resources.limits["memory"] = try Quantity(parsing: "32Mi")
                await agent.update(pods: [sick, hog], view: ClusterView())
                var restartsSeen: [Date] = []
                try await NodeHarness.eventually("two restarts of sick", timeout: 30) {
                    let s = await agent.status(namespace: "default", name: "sick")?.containerStatuses.first
                    if let n = s?.restartCount, n > restartsSeen.count { restartsSeen.append(Date()) }
                    return restartsSeen.count >= 2
                }
                let s = await agent.status(namespace: "default", name: "sick")!.containerStatuses[0]
                guard case .terminated(let code, let reason, _, _)? = s.lastState else { Issue.record("no last state: \(s)"); return }
                #expect(code == 143 && reason == "Error")
                // The second restart waited the doubled backoff: more than 2 s after the first.
                #expect(restartsSeen[1].timeIntervalSince(restartsSeen[0]) > 2)
                #expect(await agent.log("sick", "main", previous: true) == "run\n")

                try await NodeHarness.eventually("the hog is OOMKilled and restarted", timeout: 30) {
                    guard let c = await agent.status(namespace: "default", name: "hog")?.containerStatuses.first else { return false }
                    if case .terminated(137, "OOMKilled", _, _)? = c.lastState { return c.restartCount >= 1 || c.state.reason == "CrashLoopBackOff" }
                    return false
                }
            }
        }

        /// A ConfigMap change reaches the mounted file; a secret file is 0400 and another uid cannot read it;
        /// a claim's data survives the pod and the agent keeps its pods' PIDs and IPs across a restart.
        @Test func configSecretsClaimsAndAgentRestart() async throws {
            try await NodeHarness.with { h, agent in
                var cm = ConfigMap()
                cm.metadata = ObjectMeta(name: "conf", namespace: "default")
                cm.data = ["app.conf": "v1"]
                var secret = Secret()
                secret.metadata = ObjectMeta(name: "key", namespace: "default")
                secret.data = ["token": Array("t0ken".utf8)]
                var claim = PersistentVolumeClaim()
                claim.metadata = ObjectMeta(name: "data", namespace: "default")
                var p = pod("reader", container("main", "echo saved > /data/file; exec sleep 1000"))
                var v1 = Volume(), v2 = Volume(), v3 = Volume()
                v1.name = "conf"; v1.source = .configMap({ var k = ProjectedKeys(); k.name = "conf"; return k }())
                v2.name = "key"; v2.source = .secret({ var k = ProjectedKeys(); k.name = "key"; return k }())
                v3.name = "data"; v3.source = .persistentVolumeClaim(claimName: "data", readOnly: false)
                p.spec.volumes = [v1, v2, v3]
                p.spec.containers[0].volumeMounts = [mount("conf", "/etc/app"), mount("key", "/secret", readOnly: true), mount("data", "/data")]
                var view = ClusterView(configMaps: [cm], secrets: [secret], claims: [claim])
                await agent.update(pods: [p], view: view)
                try await NodeHarness.eventually("the pod runs") { await agent.status(namespace: "default", name: "reader")?.ready == true }
                #expect(try await agent.exec(namespace: "default", name: "reader", container: "main", ["cat", "/etc/app/app.conf"]).output == "v1")
                #expect(try await agent.exec(namespace: "default", name: "reader", container: "main", ["stat", "-L", "-c", "%a %u", "/secret/token"]).output == "400 0\n")
                let other = try await agent.exec(namespace: "default", name: "reader", container: "main", ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "cat", "/secret/token"])
                #expect(other.status != 0 && other.output.contains("Permission denied"), "\(other.output)")

                view.configMaps["default/conf"]!.data["app.conf"] = "v2"
                await agent.update(pods: [p], view: view)
                try await NodeHarness.eventually("the file changes", timeout: 5) {
                    (try? await agent.exec(namespace: "default", name: "reader", container: "main", ["cat", "/etc/app/app.conf"]).output) == "v2"
                }

                // A second agent over the same state adopts the pod: same process, same address.
                let pid = await agent.containerPid(namespace: "default", name: "reader", container: "main")
                let ip = await agent.status(namespace: "default", name: "reader")?.podIP
                let again = try NodeAgent(config: h.config)
                await again.update(pods: [p], view: view)
                await again.tick()
                #expect(await again.containerPid(namespace: "default", name: "reader", container: "main") == pid)
                #expect(await again.status(namespace: "default", name: "reader")?.podIP == ip)
                #expect(await again.status(namespace: "default", name: "reader")?.ready == true)

                // Deleting the pod keeps the claim's data; it goes with the claim.
                await agent.update(pods: [], view: view)
                try await NodeHarness.eventually("the pod is gone") { await agent.status(namespace: "default", name: "reader") == nil }
                let claimFile = h.config.stateDir + "/node/claims/default/data/file"
                #expect(try String(contentsOfFile: claimFile, encoding: .utf8) == "saved\n")
                view.claims = [:]
                await agent.update(pods: [], view: view)
                try await NodeHarness.eventually("the claim's data is removed") { !FileManager.default.fileExists(atPath: claimFile) }
            }
        }
    }
}

extension NodeAgentTests {
    @Suite struct CrashTests {
        /// A crash between starting a pod's containers and writing its state leaves containers no pod
        /// knows: the next agent removes them as it starts, rather than leaving them to run forever.
        @Test func containersNoSavedPodKnowsAreRemovedAtStart() async throws {
            try await NodeHarness.with { h, agent in
                let p = pod("lost", container("main", "exec sleep 1000"))
                await agent.update(pods: [p], view: ClusterView())
                try await NodeHarness.eventually("the pod runs") { await agent.status(namespace: "default", name: "lost")?.ready == true }
                let pid = try #require(await agent.containerPid(namespace: "default", name: "lost", container: "main"))
                let states = h.config.stateDir + "/node/pods"
                for f in try FileManager.default.contentsOfDirectory(atPath: states) { try FileManager.default.removeItem(atPath: states + "/" + f) }
                _ = try NodeAgent(config: h.config)
                func gone() -> Bool {
                    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
                    return stat[stat.index(after: close)...].hasPrefix(" Z")
                }
                try await NodeHarness.eventually("the container no pod knew is gone", timeout: 5) { gone() }
            }
        }
    }

    @Suite struct NodeStatusTests {
        /// A pod's CPU and memory come from its containers' cgroups (a spinning container limited to 200m
        /// uses about 200m); the node reports capacity, allocatable after the reserve, its configured labels,
        /// taints and extended resources, and conditions.
        @Test func usageAndNodeStatus() async throws {
            try await NodeHarness.with(configure: { c in
                c.labels = ["zone": "a"]
                c.taints = [Taint(key: "dedicated", value: "db", effect: .noSchedule)]
                c.extendedResources = ["nvidia.com/gpu": 1]
                c.reservedCPUMilli = 500
                c.reservedMemory = 1 << 30
            }) { h, agent in
                var spin = pod("spin", container("main", "while :; do :; done"))
                spin.spec.containers[0].resources.limits["cpu"] = try Quantity(parsing: "200m")
                await agent.update(pods: [spin], view: ClusterView())
                try await NodeHarness.eventually("the pod runs") { await agent.status(namespace: "default", name: "spin")?.phase == .running }
                _ = await agent.usage()
                try await Task.sleep(nanoseconds: 2_000_000_000)
                let u = try #require(await agent.usage()["default/spin"])
                let cpu = try #require(u.pod.cpuMilli)
                #expect((150...250).contains(cpu), "\(cpu)m")
                #expect((u.pod.memoryBytes ?? 0) > 0)
                #expect(u.containers["main"]?.cpuMilli == cpu)

                let n = await agent.nodeStatus()
                #expect(n.capacity.cpuMilli == Int64(ProcessInfo.processInfo.activeProcessorCount) * 1000)
                #expect(n.allocatable.cpuMilli == n.capacity.cpuMilli - 500)
                #expect(n.allocatable.memory == n.capacity.memory - (1 << 30))
                #expect(n.capacity.extended == ["nvidia.com/gpu": 1])
                #expect(n.labels["zone"] == "a" && n.labels["kubernetes.io/hostname"] == "node-1")
                #expect(n.taints.map(\.key) == ["dedicated"])
                #expect(n.conditions.map(\.type) == ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"])
                #expect(n.conditions[0].status && !n.conditions[1].status && !n.conditions[4].status)
            }
        }
    }
}
