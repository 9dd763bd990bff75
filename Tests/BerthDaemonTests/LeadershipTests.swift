import BerthTestSupport
import Foundation
import Testing

extension DaemonTests {
    @Suite struct Leadership {
        static func leading(_ h: DaemonHarness) -> Bool { ((try? h.get("/api/v1/status"))?["leading"] as? Bool) ?? false }
        static func applied(_ h: DaemonHarness) -> String? { ((try? h.get("/api/v1/status"))?["appliedCommit"] as? [String: Any])?["id"] as? String }

        /// Two `berth run` on one etcd and one repository, each a node: one leads (source, controllers,
        /// status writer). Killed, the other takes over within seconds and applies the next commit. Paused
        /// past its lease, a leader loses the lead and, resumed, stands by. Both restarted together, one leads.
        @Test func oneInstanceLeadsAndAnotherTakesOverWhenItDiesOrStalls() async throws {
            try await DaemonHarness.with(store: .etcd) { a in
                let etcd = try #require(a.etcd)
                a.nodeName = "a"
                let b = try DaemonHarness(peerOf: a, name: "b")
                defer { b.tearDown() }
                try a.ws.commit(["web.yaml": Manifests.web(replicas: 2)], in: a.work, message: "web")
                try a.start()
                try b.start()
                try await a.waitFor("one leader") { [a, b].filter(Self.leading).count == 1 }
                var (leader, standby) = Self.leading(a) ? (a, b) : (b, a)
                try await a.waitFor("web ready", timeout: 60) { try leader.rolledOut("web", replicas: 2) != nil }
                #expect(Self.applied(standby) == nil)

                // kill -9: the standby takes over within the lease (4 s) and a little.
                let killed = Date()
                leader.stop(SIGKILL)
                try await a.waitFor("the standby takes over", timeout: 15) { Self.leading(standby) }
                let failover = Date().timeIntervalSince(killed)
                #expect(failover < 8, "failover took \(failover) s")
                try await a.waitFor("the new leader applies the commit in force") { Self.applied(standby) != nil }
                // The killed one comes back as the standby, its pods adopted.
                try leader.start()
                (leader, standby) = (standby, leader)
                let v2 = try a.ws.commit(["web.yaml": Manifests.web(replicas: 2, version: "2")], in: a.work, message: "web: version 2")
                try await a.waitFor("version 2 applied and rolled out by the new leader", timeout: 90) {
                    try Self.applied(leader) == v2 && leader.rolledOut("web", replicas: 2) != nil
                }
                #expect(!Self.leading(standby))

                // SIGSTOP past the lease: the standby leads; SIGCONT: the old leader finds it lost the lead.
                let paused = try #require(leader.daemon?.processIdentifier)
                kill(paused, SIGSTOP)
                try await a.waitFor("the standby takes over from the paused leader", timeout: 15) { Self.leading(standby) }
                let holder = try TestCommand.output("/usr/bin/etcdctl", ["--endpoints", etcd.endpoints, "get", "leader", "--print-value-only"])
                #expect(holder.hasPrefix(standby.nodeName + " "))
                kill(paused, SIGCONT)
                try await a.waitFor("the resumed instance stands by") { !Self.leading(leader) && Self.leading(standby) }
                let log = (try? String(contentsOfFile: leader.dir + "/daemon.log", encoding: .utf8)) ?? ""
                #expect(log.contains("no longer leading"))
                #expect(try TestCommand.output("/usr/bin/etcdctl", ["--endpoints", etcd.endpoints, "get", "leader", "--print-value-only"]) == holder)

                // Both killed and started together: one leads, and the workload is still there.
                leader.stop(SIGKILL)
                standby.stop(SIGKILL)
                try a.start()
                try b.start()
                try await a.waitFor("one leader after both restarted", timeout: 20) { [a, b].filter(Self.leading).count == 1 }
                let now = Self.leading(a) ? a : b
                try await a.waitFor("web ready again", timeout: 60) { try now.rolledOut("web", replicas: 2) != nil }
            }
        }
    }
}
