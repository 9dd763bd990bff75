import BerthTestSupport
import Foundation
import Testing

/// A cluster on one machine: `berth server`s on a 3-member etcd, following a repository served by `git
/// daemon`, and `berth agent`s, each node a network namespace with a link to a "LAN" bridge in a network
/// namespace of its own (192.168.251.0/24). The servers listen for agents on the host's link to that LAN
/// (192.168.251.1); each agent runs inside its node's namespace (nsenter, which keeps the host's /sys and
/// its cgroups), so cutting a node's link cuts it off from the servers too. Everything goes at the end,
/// whatever happened.
final class ClusterHarness: @unchecked Sendable {
    final class Member: @unchecked Sendable {
        let name: String
        let dir: String
        var process: Process?
        var args: [String] = []
        init(name: String, dir: String) {
            self.name = name
            self.dir = dir
        }
        var log: String { dir + "/log" }
    }

    final class Server: @unchecked Sendable {
        let member: Member
        let apiPort = TestServers.freePort()
        let nodePort = TestServers.freePort()
        init(_ member: Member) { self.member = member }
        var api: String { "http://127.0.0.1:\(apiPort)" }
    }

    final class Agent: @unchecked Sendable {
        let member: Member
        let netns: String
        let index: Int
        init(_ member: Member, netns: String, index: Int) {
            self.member = member
            self.netns = netns
            self.index = index
        }
        var address: String { "192.168.251.\(index + 10)" }
        var link: String { "lan\(index)" }
    }

    let ws: GitWorkspace
    let dir: String
    let id: String
    let bare: String
    let work: String
    let gitPort = TestServers.freePort()
    var gitServer: ServerProcess?
    var etcd: TestEtcd?
    var servers: [Server] = []
    var agents: [Agent] = []
    /// The node lease of every agent: short, so that a lost node is seen in seconds.
    var nodeLease = "4"
    /// More flags for every server.
    var serverArgs: [String] = []

    init(ws: GitWorkspace) throws {
        self.ws = ws
        dir = ws.root
        id = "bc\(getpid() % 1000)\(UInt32.random(in: 0..<100))"
        (bare, work) = try ws.makeRepository("repo")
    }

    var lan: String { id + "-lan" }

    static func with(servers: Int, nodes: [(name: String, args: [String])], _ body: (ClusterHarness) async throws -> Void) async throws {
        Orphans.adopt()
        try await GitWorkspace.with { ws in
            let h = try ClusterHarness(ws: ws)
            var failure: (any Error)?
            do {
                h.gitServer = try ws.gitDaemon(port: h.gitPort)
                h.etcd = try await TestEtcd.start(dir: h.dir + "/etcd", members: 3)
                try h.makeLAN()
                for i in 0..<servers { h.servers.append(Server(Member(name: "s\(i + 1)", dir: h.dir + "/s\(i + 1)"))) }
                for (i, n) in nodes.enumerated() {
                    let agent = Agent(Member(name: n.name, dir: h.dir + "/" + n.name), netns: "\(h.id)-\(n.name)", index: i + 1)
                    agent.member.args = n.args
                    try h.makeNode(agent)
                    h.agents.append(agent)
                }
                try await body(h)
            } catch { failure = error }
            h.tearDown()
            if let failure {
                for m in h.servers.map(\.member) + h.agents.map(\.member) {
                    Issue.record("\(m.name) log (last lines):\n\(logTail(m.log, lines: 25))")
                }
                if let etcd = h.etcd { Issue.record("etcd logs (last lines):\n\(etcd.logTails())") }
                throw failure
            }
        }
    }

    // MARK: the network

    static let hostAddress = "192.168.251.1"

    func makeLAN() throws {
        _ = try? ip(["netns", "del", lan])
        try ip(["netns", "add", lan])
        try ip(["-n", lan, "link", "add", "lan0", "type", "bridge"])
        try ip(["-n", lan, "link", "set", "lan0", "up"])
        // The host's end goes with the LAN's namespace.
        try ip(["link", "add", id + "h", "type", "veth", "peer", "name", "host", "netns", lan])
        try ip(["-n", lan, "link", "set", "host", "master", "lan0", "up"])
        try ip(["addr", "add", Self.hostAddress + "/24", "dev", id + "h"])
        try ip(["link", "set", id + "h", "up"])
    }

    func makeNode(_ a: Agent) throws {
        _ = try? ip(["netns", "del", a.netns])
        try ip(["netns", "add", a.netns])
        try ip(["-n", a.netns, "link", "set", "lo", "up"])
        try ip(["-n", lan, "link", "add", a.link, "type", "veth", "peer", "name", "eth1", "netns", a.netns])
        try ip(["-n", lan, "link", "set", a.link, "master", "lan0", "up"])
        try ip(["-n", a.netns, "addr", "add", a.address + "/24", "dev", "eth1"])
        try ip(["-n", a.netns, "link", "set", "eth1", "up"])
    }

    /// Cuts (or restores) a node's link to the others.
    func setLink(_ a: Agent, up: Bool) throws {
        try ip(["-n", lan, "link", "set", a.link, up ? "up" : "down"])
    }

    @discardableResult
    func ip(_ args: [String]) throws -> String { try DaemonHarness.run(["/usr/sbin/ip"] + args) }

    func inNode(_ a: Agent, _ argv: [String]) throws -> String { try DaemonHarness.run(["/usr/sbin/ip", "netns", "exec", a.netns] + argv) }

    // MARK: processes

    var serverURLs: String { servers.map { "https://\(Self.hostAddress):\($0.nodePort)" }.joined(separator: ",") }
    var tokenFile: String { servers[0].member.dir + "/state/server/node-token" }

    func start(_ s: Server) throws {
        try launch(s.member, ["server", "--repo", "git://127.0.0.1:\(gitPort)/repo.git", "--state-dir", s.member.dir + "/state", "--interval", "1s",
                              "--listen", "127.0.0.1:\(s.apiPort)", "--agent-listen", "\(Self.hostAddress):\(s.nodePort)", "--server-name", s.member.name,
                              "--store", etcd!.url] + serverArgs)
        guard TestServers.waitForPort(s.apiPort, timeout: 30) else { throw TestFailure("server \(s.member.name) did not open its API") }
    }

    func start(_ a: Agent) throws {
        try launch(a.member, in: a.netns, ["agent", "--server", serverURLs, "--token-file", tokenFile, "--state-dir", a.member.dir + "/state",
                              "--run-dir", a.member.dir + "/run", "--node-name", a.member.name, "--node-ip", a.address,
                              "--network-namespace", "/run/netns/" + a.netns, "--node-lease", nodeLease, "--stop-workloads-on-exit"] + a.member.args)
    }

    private func launch(_ m: Member, in netns: String? = nil, _ args: [String]) throws {
        Orphans.adopt()
        try FileManager.default.createDirectory(atPath: m.dir, withIntermediateDirectories: true)
        let p = Process()
        let berth = DaemonHarness.binaries + "/berth"
        if let netns {
            // nsenter execs berth in place: the process is the agent's.
            p.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
            p.arguments = ["--net=/run/netns/" + netns, "--", berth] + args
        } else {
            p.executableURL = URL(fileURLWithPath: berth)
            p.arguments = args
        }
        if !FileManager.default.fileExists(atPath: m.log) { _ = FileManager.default.createFile(atPath: m.log, contents: nil) }
        let log = FileHandle(forWritingAtPath: m.log)!
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        m.process = p
    }

    func stop(_ m: Member, _ signal: Int32 = SIGTERM, timeout: Double = 60) {
        guard let p = m.process else { return }
        m.process = nil
        stopProcess(p, signal, timeout: timeout)
    }

    func tearDown() {
        // Agents first, with SIGTERM: they stop their pods; one killed before is started again to do so.
        for a in agents where a.member.process == nil {
            let pods = a.member.dir + "/state/node/pods"
            if !((try? FileManager.default.contentsOfDirectory(atPath: pods)) ?? []).isEmpty { try? start(a) }
        }
        for a in agents { stop(a.member) }
        for s in servers { stop(s.member) }
        Orphans.reap(named: ["berth-shim"], waiting: false)
        for a in agents {
            let runDir = a.member.dir + "/run/"
            if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
                for e in entries {
                    guard let pid = Int32(e), let cmd = try? String(contentsOfFile: "/proc/\(e)/cmdline", encoding: .utf8), cmd.contains(runDir) else { continue }
                    kill(pid, SIGKILL)
                }
            }
            Orphans.reap(named: ["berth-shim"], waiting: true, matching: runDir)
            _ = try? ip(["netns", "del", a.netns])
        }
        _ = try? ip(["netns", "del", lan])
        gitServer?.stop()
        etcd?.stop()
    }

    /// A client in a node's namespace requesting `url` again and again until `stop` (`requestLoop`).
    func client(in a: Agent, _ url: String) throws -> () -> [String] {
        try requestLoop(namespace: "/run/netns/" + a.netns, url: url, stopFile: dir + "/stop-client-\(UInt32.random(in: 0..<1_000_000))")
    }

    /// The berth CLI against a server, with its API token for the commands that change things.
    func cli(_ s: Server, _ args: [String]) throws -> String {
        let admin: Set<String> = ["cordon", "uncordon", "drain", "node", "token"]
        let token = admin.contains(args[0]) ? ["--token-file", s.member.dir + "/state/api-token"] : []
        return try DaemonHarness.run([DaemonHarness.binaries + "/berth"] + args + ["--server", s.api] + token)
    }

    // MARK: the API

    func get(_ s: Server, _ path: String) throws -> [String: Any] {
        let text = try DaemonHarness.run(["/usr/bin/curl", "-sS", "-m", "5", s.api + path])
        guard let o = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw TestFailure("GET \(path): not JSON: \(text.prefix(200))")
        }
        return o
    }

    func leading(_ s: Server) -> Bool { s.member.process != nil && ((try? get(s, "/api/v1/status"))?["leading"] as? Bool) == true }

    var leader: Server? { servers.first(where: leading) }

    /// Nodes by name, as the leader has them: Ready or not.
    func nodeReadiness() throws -> [String: Bool] {
        guard let s = leader else { return [:] }
        var out: [String: Bool] = [:]
        for n in try get(s, "/api/v1/nodes")["items"] as? [[String: Any]] ?? [] {
            let name = (n["metadata"] as? [String: Any])?["name"] as? String ?? ""
            let conditions = (n["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
            out[name] = conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
        }
        return out
    }

    struct PodView {
        var name: String
        var node: String
        var ip: String
        var ready: Bool
    }

    func pods(_ prefix: String) throws -> [PodView] {
        guard let s = leader else { throw TestFailure("no server leads") }
        return (try get(s, "/api/v1/namespaces/default/pods")["items"] as? [[String: Any]] ?? []).compactMap { p in
            let name = (p["metadata"] as? [String: Any])?["name"] as? String ?? ""
            guard name.hasPrefix(prefix + "-") else { return nil }
            let status = p["status"] as? [String: Any] ?? [:]
            let conditions = status["conditions"] as? [[String: Any]] ?? []
            return PodView(name: name, node: (p["spec"] as? [String: Any])?["nodeName"] as? String ?? "", ip: status["podIP"] as? String ?? "",
                           ready: conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" })
        }
    }

    func clusterIP(_ service: String) throws -> String {
        guard let s = leader else { throw TestFailure("no server leads") }
        return (try get(s, "/api/v1/namespaces/default/services/\(service)")["spec"] as? [String: Any])?["clusterIP"] as? String ?? ""
    }

    func waitFor(_ what: String, timeout: Double = 30, _ condition: () throws -> Bool) async throws {
        try await BerthDaemonTests.waitFor(what, timeout: timeout, condition)
    }
}
