import BerthTestSupport
import Foundation
import Testing

extension DaemonTests {
    @Suite struct Cluster {
        static func manifests(web replicas: Int) -> String { Manifests.web(replicas: replicas) + """

            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: gpu
            spec:
              replicas: 2
              selector:
                matchLabels:
                  app: gpu
              template:
                metadata:
                  labels:
                    app: gpu
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                    - name: work
                      image: host
                      command: ["/bin/busybox", "sleep", "3600"]
                      env:
                        - name: KEY
                          valueFrom:
                            secretKeyRef: {name: gpu-key, key: key}
                      resources:
                        limits:
                          nvidia.com/gpu: 1
            ---
            apiVersion: v1
            kind: Secret
            metadata:
              name: gpu-key
            stringData:
              key: only-for-the-gpu-node
            """ }

        /// Two servers on etcd and three agents, each node a network namespace on a shared LAN: the nodes
        /// join with the token and are Ready; a Deployment spreads over them and its Service answers from
        /// every node, whichever node the chosen backend runs on; pods reach pods on other nodes; only the
        /// GPU node gets the GPU pods, and only it reads their Secret; a node's credential cannot write
        /// another node's records (403). An
        /// agent killed and cut off is NotReady within its lease, its pods run elsewhere and the Service
        /// answers; it rejoins. The leading server killed, the other leads and no pod is disturbed.
        @Test func serversAndAgentsRunPodsAcrossNodesAndHealANodeLoss() async throws {
            try await ClusterHarness.with(servers: 2, nodes: [("n1", []), ("n2", []),
                                                             ("n3", ["--resource", "nvidia.com/gpu=2", "--label", "accelerator=gpu"])]) { h in
                // web's pods are asked for once every node is Ready: spread over the nodes there are.
                try h.ws.commit(["apps.yaml": Self.manifests(web: 0)], in: h.work, message: "web and gpu")
                try h.start(h.servers[0])
                try await h.waitFor("the join token") { FileManager.default.fileExists(atPath: h.tokenFile) }
                try h.start(h.servers[1])
                let joinStart = Date()
                for a in h.agents { try h.start(a) }
                try await h.waitFor("three Ready nodes", timeout: 30) { try h.nodeReadiness() == ["n1": true, "n2": true, "n3": true] }
                let join = Date().timeIntervalSince(joinStart)
                #expect(join < 10, "three agents took \(join) s from start to Ready")
                try h.ws.commit(["apps.yaml": Self.manifests(web: 3)], in: h.work, message: "web: 3 replicas")

                try await h.waitFor("web on three nodes and gpu on the GPU node", timeout: 60) {
                    let web = try h.pods("web"), gpu = try h.pods("gpu")
                    return web.count == 3 && web.allSatisfy(\.ready) && gpu.count == 2 && gpu.allSatisfy(\.ready)
                }
                let web = try h.pods("web")
                #expect(Set(web.map(\.node)) == ["n1", "n2", "n3"], "spread: \(web.map(\.node))")
                #expect(try h.pods("gpu").allSatisfy { $0.node == "n3" })

                // The ClusterIP from every node, and every pod from every node (routes between the nodes).
                let vip = try h.clusterIP("web")
                for a in h.agents {
                    for _ in 0..<6 { #expect(try h.inNode(a, ["/usr/bin/curl", "-sS", "-m", "3", "http://\(vip)/index.html"]) == "hello") }
                    for p in web { #expect(try h.inNode(a, ["/usr/bin/curl", "-sS", "-m", "3", "http://\(p.ip):8080/index.html"]) == "hello") }
                }

                // n1's credential writing n2's node record: refused, 403.
                let credential = try String(contentsOfFile: h.agents[0].member.dir + "/state/agent/credential.json", encoding: .utf8)
                let joined = try #require(try JSONSerialization.jsonObject(with: Data(credential.utf8)) as? [String: String])
                try joined["caPEM"]!.write(toFile: h.dir + "/ca.pem", atomically: true, encoding: .utf8)
                let record = #"{"name":"n2","labels":{},"allocatable":{"cpuMilli":1,"memory":1,"pods":1,"extended":{}},"ready":false,"unschedulable":true,"taints":[]}"#
                let body = #"{"writes":[{"key":"nodes/n2","value":"\#(Data(record.utf8).base64EncodedString())"}]}"#
                let code = try DaemonHarness.run(["/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", h.dir + "/ca.pem",
                                                  "-H", "Authorization: Bearer node:n1:\(joined["credential"]!)", "-H", "Content-Type: application/json",
                                                  "--data-binary", body, "https://\(ClusterHarness.hostAddress):\(h.servers[0].nodePort)/v1/node/txn"])
                #expect(code == "403")
                #expect(try h.nodeReadiness()["n2"] == true)
                // n1 reads the ConfigMap its web pod mounts, not the Secret of the GPU pods (n3 has it: they run).
                func asN1(_ path: String) throws -> String {
                    try DaemonHarness.run(["/usr/bin/curl", "-sS", "--cacert", h.dir + "/ca.pem", "-H", "Authorization: Bearer node:n1:\(joined["credential"]!)",
                                           "https://\(ClusterHarness.hostAddress):\(h.servers[0].nodePort)/v1/node/" + path])
                }
                let listed = try JSONSerialization.jsonObject(with: Data(try asN1("list?prefix=config/").utf8)) as? [String: Any]
                let keys = (listed?["values"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
                #expect(keys.contains("config/default/ConfigMap/web-content") && keys.contains("config/default/Service/web"), "\(keys)")
                #expect(!keys.contains("config/default/Secret/gpu-key"), "\(keys)")
                let got = try JSONSerialization.jsonObject(with: Data(try asN1("get?key=config/default/Secret/gpu-key").utf8)) as? [String: Any]
                #expect(got != nil && got?["value"] == nil, "\(String(describing: got))")

                // kill -9 n2's agent and cut its link: NotReady within the lease, its pod replaced elsewhere.
                let lostPod = try #require(web.first { $0.node == "n2" })
                let cut = Date()
                h.stop(h.agents[1].member, SIGKILL)
                try h.setLink(h.agents[1], up: false)
                try await h.waitFor("n2 NotReady", timeout: 15) { try h.nodeReadiness()["n2"] == false }
                try await h.waitFor("web 3/3 ready without n2", timeout: 30) {
                    let pods = try h.pods("web")
                    return pods.count == 3 && pods.allSatisfy { $0.ready && $0.node != "n2" }
                }
                let healed = Date().timeIntervalSince(cut)
                #expect(healed < 15, "the lost node's pod ran elsewhere after \(healed) s")
                #expect(try !h.pods("web").contains { $0.name == lostPod.name })
                for _ in 0..<10 { #expect(try h.inNode(h.agents[0], ["/usr/bin/curl", "-sS", "-m", "3", "http://\(vip)/index.html"]) == "hello") }
                // The status branch says the node was lost and where its pod went.
                try await h.waitFor("a status commit about n2's loss", timeout: 20) {
                    let subjects = try h.ws.git(["log", "--format=%s", "berth/status"], in: h.bare)
                    return subjects.contains("node n2 lost: \(lostPod.name) → n")
                }
                let n2Status = try h.ws.git(["show", "berth/status:nodes/n2.yaml"], in: h.bare)
                #expect(n2Status.contains("lost: true") && n2Status.contains("ready: false"), "\(n2Status)")

                // n2 comes back: it rejoins with its saved credential and drops the pod replaced meanwhile.
                try h.setLink(h.agents[1], up: true)
                try h.start(h.agents[1])
                try await h.waitFor("n2 Ready again", timeout: 20) { try h.nodeReadiness()["n2"] == true }
                try await h.waitFor("n2's status file without the loss", timeout: 20) {
                    let text = try h.ws.git(["show", "berth/status:nodes/n2.yaml"], in: h.bare)
                    return !text.contains("lost") && text.contains("ready: true")
                }
                try await h.waitFor("n2's stale pod stopped", timeout: 30) {
                    try FileManager.default.contentsOfDirectory(atPath: h.agents[1].member.dir + "/state/node/pods").isEmpty
                }

                // kill -9 the leading server: the other leads; every pod stays where it was.
                let before = try h.pods("web").map(\.name).sorted()
                let leader = try #require(h.leader)
                h.stop(leader.member, SIGKILL)
                let standby = try #require(h.servers.first { $0 !== leader })
                try await h.waitFor("the other server leads", timeout: 20) { h.leading(standby) }
                try await h.waitFor("web still 3/3 on the same pods", timeout: 20) {
                    let pods = try h.pods("web")
                    return pods.map(\.name).sorted() == before && pods.allSatisfy(\.ready)
                }
                #expect(try h.nodeReadiness() == ["n1": true, "n2": true, "n3": true])
                for a in h.agents { #expect(try h.inNode(a, ["/usr/bin/curl", "-sS", "-m", "3", "http://\(vip)/index.html"]) == "hello") }
            }
        }
    }
}

extension DaemonTests.Cluster {
    /// An operator cordons a node (nothing new goes there), drains it (its pods move while a client on the
    /// Service sees no failure, within maxUnavailable 0), uncordons it; a rolling update across the nodes
    /// fails no request either. A rotated token lets new nodes join and old nodes keep working; a node
    /// removed loses its credential and its pods, and comes back by joining again.
    @Test func operatorsCordonDrainRotateAndRemove() async throws {
        try await ClusterHarness.with(servers: 1, nodes: [("n1", []), ("n2", []), ("n3", [])]) { h in
            let s = h.servers[0]
            try h.ws.commit(["web.yaml": Manifests.web(replicas: 3)], in: h.work, message: "web")
            try h.start(s)
            try await h.waitFor("the join token") { FileManager.default.fileExists(atPath: h.tokenFile) }
            for a in h.agents { try h.start(a) }
            try await h.waitFor("web 3/3 on three nodes", timeout: 60) {
                let web = try h.pods("web")
                return web.count == 3 && web.allSatisfy(\.ready) && Set(web.map(\.node)).count == 3
            }
            let vip = "http://\(try h.clusterIP("web"))/index.html"

            #expect(try h.cli(s, ["cordon", "n3"]).contains("cordoned"))
            try await h.waitFor("n3 SchedulingDisabled") { try h.cli(s, ["get", "nodes"]).contains("Ready,SchedulingDisabled") }
            let wide = try h.cli(s, ["get", "nodes", "-o", "wide"])
            #expect(wide.contains("192.168.251.13") && wide.contains("kubernetes.io/hostname=n3"), "\(wide)")

            let stop = try h.client(in: h.agents[0], vip)
            let drained = try h.cli(s, ["drain", "n3", "--timeout", "60"])
            #expect(drained.contains("node n3 drained"))
            var web = try h.pods("web")
            #expect(web.count == 3 && !web.contains { $0.node == "n3" })
            #expect(try h.cli(s, ["uncordon", "n3"]).contains("uncordoned"))
            let rolled = try h.ws.commit(["web.yaml": Manifests.web(replicas: 3, version: "2")], in: h.work, message: "web: version 2")
            try await h.waitFor("version 2 rolled out", timeout: 90) {
                let status = try h.get(s, "/api/v1/status")
                web = try h.pods("web")
                let updated = (try h.get(s, "/api/v1/namespaces/default/deployments/web")["status"] as? [String: Any])?["updatedReplicas"] as? Int
                return (status["appliedCommit"] as? [String: Any])?["id"] as? String == rolled && web.count == 3 && web.allSatisfy(\.ready) && updated == 3
            }
            let results = stop()
            let (failures, diagnostics) = failedRequests(results)
            #expect(failures.isEmpty, "\(failures.count) of \(results.count) requests failed during the drain and the rollout: \(failures)\n\(diagnostics)")
            #expect(results.count > 20)

            // A rotated token: the old one no longer admits anyone; the new one does; joined nodes go on.
            let old = try String(contentsOfFile: h.tokenFile, encoding: .utf8)
            let rotated = try h.cli(s, ["token", "rotate"]).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(rotated.hasPrefix("K10") && rotated != old.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(rotated.prefix(67) == old.prefix(67), "the CA stays: \(rotated.prefix(67)) vs \(old.prefix(67))")
            try old.write(toFile: h.dir + "/old-token", atomically: true, encoding: .utf8)
            try await h.waitFor("the server's token file has the new token") {
                try String(contentsOfFile: h.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == rotated
            }

            // n3 removed: gone from the nodes, its credential refused, its pods elsewhere.
            #expect(try h.cli(s, ["node", "rm", "n3"]).contains("removed"))
            try await h.waitFor("n3 gone and web 3/3 elsewhere", timeout: 30) {
                web = try h.pods("web")
                return try h.nodeReadiness()["n3"] == nil && web.count == 3 && web.allSatisfy { $0.ready && $0.node != "n3" }
            }
            h.stop(h.agents[2].member)
            // Joining again with the old token fails; with the new one it works.
            try FileManager.default.removeItem(atPath: h.agents[2].member.dir + "/state/agent")
            let refused = try? DaemonHarness.run(["/usr/bin/nsenter", "--net=/run/netns/" + h.agents[2].netns, "--", DaemonHarness.binaries + "/berth", "agent",
                                                  "--server", h.serverURLs, "--token-file", h.dir + "/old-token", "--state-dir", h.agents[2].member.dir + "/state",
                                                  "--run-dir", h.agents[2].member.dir + "/run", "--node-name", "n3",
                                                  "--network-namespace", "/run/netns/" + h.agents[2].netns])
            #expect(refused == nil)
            try h.start(h.agents[2])
            try await h.waitFor("n3 back", timeout: 20) { try h.nodeReadiness()["n3"] == true }
            #expect(try h.nodeReadiness() == ["n1": true, "n2": true, "n3": true])
        }
    }
}

extension DaemonTests.Cluster {
    static let solo = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: solo
        spec:
          replicas: 1
          selector:
            matchLabels:
              app: solo
          template:
            metadata:
              labels:
                app: solo
            spec:
              terminationGracePeriodSeconds: 30
              containers:
                - name: work
                  image: host
                  command: ["/bin/busybox", "sleep", "3601"]
        """

    /// Processes of the solo pod on this machine, whichever node runs them.
    static func soloProcesses() -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { e in
            Int32(e) != nil && (try? String(contentsOfFile: "/proc/\(e)/cmdline", encoding: .utf8)) == "/bin/busybox\u{0}sleep\u{0}3601\u{0}"
        }.count
    }

    /// With the default 10 s lease: a paused agent (3 s), a cut link (3 s) and etcd's leader killed are no
    /// loss. A node cut off for longer stops its pods itself before the server replaces them, so the
    /// one-replica workload never runs twice; back, it runs only what is still bound to it. Two of three
    /// agents killed at once: the server takes itself for the side cut off and evicts nothing meanwhile.
    @Test func aCutOffNodeFencesItselfAndMostNodesGoneEvictsNothing() async throws {
        try await ClusterHarness.with(servers: 1, nodes: [("n1", []), ("n2", []), ("n3", [])]) { h in
            h.nodeLease = "10"
            try h.ws.commit(["web.yaml": Manifests.web(replicas: 3), "solo.yaml": Self.solo], in: h.work, message: "web and solo")
            try h.start(h.servers[0])
            try await h.waitFor("the join token") { FileManager.default.fileExists(atPath: h.tokenFile) }
            for a in h.agents { try h.start(a) }
            try await h.waitFor("web 3/3 and solo running", timeout: 60) {
                let web = try h.pods("web"), solo = try h.pods("solo")
                return web.count == 3 && web.allSatisfy(\.ready) && solo.count == 1 && solo[0].ready
            }
            let before = Set(try h.pods("web").map(\.name) + h.pods("solo").map(\.name))

            // Blips shorter than the lease: nothing moves, no node turns NotReady.
            let blipped = h.agents[0]
            kill(blipped.member.process!.processIdentifier, SIGSTOP)
            var notReady = false
            for _ in 0..<15 {
                try await Task.sleep(for: .milliseconds(200))
                if try h.nodeReadiness().values.contains(false) { notReady = true }
            }
            kill(blipped.member.process!.processIdentifier, SIGCONT)
            // A renewal between the two blips: they are two short outages, not one long one.
            try await Task.sleep(for: .seconds(3))
            try h.setLink(blipped, up: false)
            for _ in 0..<15 {
                try await Task.sleep(for: .milliseconds(200))
                if try h.nodeReadiness().values.contains(false) { notReady = true }
            }
            try h.setLink(blipped, up: true)
            for _ in 0..<15 {
                try await Task.sleep(for: .milliseconds(200))
                if try h.nodeReadiness().values.contains(false) { notReady = true }
            }
            #expect(!notReady, "a 3 s pause or cut made a node NotReady")
            #expect(Set(try h.pods("web").map(\.name) + h.pods("solo").map(\.name)) == before)

            // etcd's leader killed: the other two members elect one; the nodes' leases carry on.
            let etcd = try #require(h.etcd)
            etcd.kill(try etcd.leader())
            for _ in 0..<40 {
                try await Task.sleep(for: .milliseconds(200))
                if try h.nodeReadiness().values.contains(false) { notReady = true }
            }
            #expect(!notReady, "an etcd leader change made a node NotReady")
            #expect(Set(try h.pods("web").map(\.name) + h.pods("solo").map(\.name)) == before)

            // solo's node cut off: it stops solo, then the server runs it elsewhere; never two at once.
            let soloNode = try #require(h.agents.first { $0.member.name == (try? h.pods("solo").first?.node) })
            let cut = Date()
            try h.setLink(soloNode, up: false)
            var most = 0, stoppedAt: Double?, movedAt: Double?
            while Date().timeIntervalSince(cut) < 40 && movedAt == nil {
                let n = Self.soloProcesses()
                most = max(most, n)
                if n == 0 && stoppedAt == nil { stoppedAt = Date().timeIntervalSince(cut) }
                if let p = try? h.pods("solo").first, p.node != soloNode.member.name, p.ready { movedAt = Date().timeIntervalSince(cut) }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(most == 1, "solo ran \(most) times at once")
            let stopped = try #require(stoppedAt), moved = try #require(movedAt)
            #expect(stopped < moved && moved < 20, "stopped after \(stopped) s, running elsewhere after \(moved) s")
            let log = try String(contentsOfFile: soloNode.member.log, encoding: .utf8)
            #expect(log.contains("stopping every pod before the servers replace them"))
            try h.setLink(soloNode, up: true)
            try await h.waitFor("the fenced node Ready again", timeout: 30) { try h.nodeReadiness()[soloNode.member.name] == true }
            try await Task.sleep(for: .seconds(2))
            #expect(Self.soloProcesses() == 1)
            try await h.waitFor("web 3/3", timeout: 30) { try h.pods("web").filter(\.ready).count == 3 }

            // Two of three agents killed: both NotReady, nothing evicted; restarted, they keep their pods.
            let placed = try h.pods("web")
            let killed = [h.agents[0], h.agents[1]]
            for a in killed { h.stop(a.member, SIGKILL) }
            try await h.waitFor("two nodes NotReady", timeout: 20) { try h.nodeReadiness().values.filter { !$0 }.count == 2 }
            try await Task.sleep(for: .seconds(4))
            #expect(try h.pods("web").map(\.name).sorted() == placed.map(\.name).sorted())
            for a in killed { try h.start(a) }
            try await h.waitFor("all nodes Ready", timeout: 30) { try h.nodeReadiness().values.allSatisfy { $0 } && h.nodeReadiness().count == 3 }
            // The first back makes the other a minority gone: its pods may move now, as the partition heals.
            try await h.waitFor("web 3/3 ready", timeout: 30) {
                let web = try h.pods("web")
                return web.count == 3 && web.allSatisfy(\.ready)
            }
        }
    }
}

extension DaemonTests.Cluster {
    /// `--pod-network vxlan`: each node has a VXLAN device with its peers' neighbour and forwarding
    /// entries, routes to the other nodes' pods go through it, the pods' MTU is 50 below the LAN's, and
    /// pods and Services answer across the nodes as in routed mode.
    @Test func vxlanModeCarriesPodsAcrossNodes() async throws {
        try await ClusterHarness.with(servers: 1, nodes: [("n1", []), ("n2", [])]) { h in
            h.serverArgs = ["--pod-network", "vxlan"]
            try h.ws.commit(["web.yaml": Manifests.web(replicas: 2)], in: h.work, message: "web")
            try h.start(h.servers[0])
            try await h.waitFor("the join token") { FileManager.default.fileExists(atPath: h.tokenFile) }
            for a in h.agents { try h.start(a) }
            try await h.waitFor("web 2/2 on two nodes", timeout: 60) {
                let web = try h.pods("web")
                return web.count == 2 && web.allSatisfy(\.ready) && Set(web.map(\.node)) == ["n1", "n2"]
            }
            let web = try h.pods("web")
            let vip = try h.clusterIP("web")
            for a in h.agents {
                let device = try h.inNode(a, ["/usr/sbin/ip", "-d", "link", "show", "berth.vxlan"])
                #expect(device.contains("vxlan id 1") && device.contains("dstport 8472") && device.contains("mtu 1450"), "\(device)")
                #expect(try h.inNode(a, ["/usr/sbin/ip", "link", "show", "berth0"]).contains("mtu 1450"))
                let remote = try #require(web.first { $0.node != a.member.name })
                #expect(try h.inNode(a, ["/usr/sbin/ip", "route", "get", remote.ip]).contains("dev berth.vxlan"))
                for p in web { #expect(try h.inNode(a, ["/usr/bin/curl", "-sS", "-m", "3", "http://\(p.ip):8080/index.html"]) == "hello") }
                for _ in 0..<4 { #expect(try h.inNode(a, ["/usr/bin/curl", "-sS", "-m", "3", "http://\(vip)/index.html"]) == "hello") }
            }
            // A pod's own link has the overlay's MTU: a full-size packet from one pod reaches the other node's.
            let pod = try #require(web.first { $0.node == "n1" }), other = try #require(web.first { $0.node == "n2" })
            let pids = try DaemonHarness.run(["/usr/bin/pgrep", "-f", "httpd -f -p 8080"]).split(separator: "\n").map(String.init)
            let pid = try #require(pids.first { p in
                ((try? DaemonHarness.run(["/usr/bin/nsenter", "--net=/proc/\(p)/ns/net", "/usr/sbin/ip", "-o", "-4", "addr", "show", "eth0"])) ?? "")
                    .contains(" \(pod.ip)/")
            })
            let mtu = try DaemonHarness.run(["/usr/bin/nsenter", "--net=/proc/\(pid)/ns/net", "/usr/sbin/ip", "-o", "link", "show", "eth0"])
            #expect(mtu.contains("mtu 1450"), "\(mtu)")
            let ping = try DaemonHarness.run(["/usr/bin/nsenter", "--net=/proc/\(pid)/ns/net", "/bin/busybox", "ping", "-c", "1", "-W", "2", "-s", "1422", other.ip])
            #expect(ping.contains("1 packets received"), "\(ping)")
        }
    }
}
