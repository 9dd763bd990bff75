import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's etcd-server for the tests: one or three members on loopback ports, each with its data under
/// `dir`, which a test can kill and pause. Timings are short (50 ms heartbeats, 500 ms
/// elections) so that a lost leader is replaced within a second.
public final class TestEtcd: @unchecked Sendable {
    public struct Member {
        public var name: String
        public var clientPort: Int
        public var peerPort: Int
        public var endpoint: String { "127.0.0.1:\(clientPort)" }
    }

    public let dir: String
    public let members: [Member]
    private var processes: [ServerProcess?]
    /// The members' processes (for their CPU time and memory).
    public var pids: [pid_t] { processes.compactMap { $0?.pid } }
    private let token = "berth-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    /// The CA of the members' certificates, when they serve TLS to clients.
    public let caFile: String?
    /// A client certificate and key of that CA, which the members require with `clientCerts`.
    public var clientCert: String? { clientCerts ? dir + "/client.crt" : nil }
    public var clientKey: String? { clientCerts ? dir + "/client.key" : nil }
    private let clientCerts: Bool
    private let flags: [String]
    private var scheme: String { caFile == nil ? "http://" : "https://" }

    /// `etcd://` (or `etcds://`) followed by every member's client address.
    public var url: String { (caFile == nil ? "etcd://" : "etcds://") + members.map(\.endpoint).joined(separator: ",") }
    public var endpoints: String { members.map { scheme + $0.endpoint }.joined(separator: ",") }

    /// Starts the members off the concurrency pool (start-up takes seconds). A member that dies before it
    /// listens (its port taken meanwhile by another test) is retried with fresh ports, twice at most.
    /// With `clientCerts` (and `tls`), members accept only clients with a certificate of their CA; `flags`
    /// go to every member (`--auth-token-ttl 1`, say).
    public static func start(dir: String, members count: Int = 1, tls: Bool = false, user: (name: String, password: String)? = nil,
                             clientCerts: Bool = false, flags: [String] = []) async throws -> TestEtcd {
        try await offPool {
            var failures: [String] = []
            for _ in 0..<3 {
                do {
                    return try TestEtcd(dir: dir, members: count, tls: tls, user: user, clientCerts: clientCerts, flags: flags)
                } catch let e as TestFailure {
                    failures.append(e.description)
                }
            }
            throw TestFailure(failures.joined(separator: "\n"))
        }
    }

    /// With `tls`, clients talk TLS with a certificate of a CA made here; with `user`, etcd's
    /// authentication is enabled with that user as root.
    private init(dir: String, members count: Int, tls: Bool, user: (name: String, password: String)?, clientCerts: Bool, flags: [String]) throws {
        self.dir = dir
        self.clientCerts = tls && clientCerts
        self.flags = flags
        members = (0..<count).map { Member(name: "m\($0)", clientPort: TestServers.freePort(), peerPort: TestServers.freePort()) }
        processes = Array(repeating: nil, count: count)
        for m in members { try? FileManager.default.removeItem(atPath: dir + "/" + m.name) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if tls {
            try TestRegistry.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth etcd CA",
                                      "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt"])
            try TestRegistry.openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", dir + "/server.key", "-out", dir + "/server.csr"])
            try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
            try TestRegistry.openssl(["x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key", "-CAcreateserial",
                                      "-days", "2", "-extfile", dir + "/san.ext", "-out", dir + "/server.crt"])
            if clientCerts {
                try TestRegistry.openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=berth", "-keyout", dir + "/client.key", "-out", dir + "/client.csr"])
                try TestRegistry.openssl(["x509", "-req", "-in", dir + "/client.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key", "-CAcreateserial",
                                          "-days", "2", "-out", dir + "/client.crt"])
            }
            caFile = dir + "/ca.crt"
        } else {
            caFile = nil
        }
        do {
            for i in 0..<count { try launch(i) }
            for i in 0..<count { try waitListening(i) }
            try waitHealthy()
            if let user {
                try etcdctl(["user", "add", "\(user.name):\(user.password)"])
                try etcdctl(["auth", "enable"])
            }
        } catch {
            stop()
            throw error
        }
    }

    /// Waits until member `i` accepts connections; fails at once, with its log, if it exits first.
    private func waitListening(_ i: Int, timeout: Double = 30) throws {
        let m = members[i]
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if TestServers.waitForPort(m.clientPort, timeout: 0.2) { return }
            guard let p = processes[i], ServerProcess.alive(p.pid) else { break }
        }
        let log = (try? String(contentsOfFile: logPath(i), encoding: .utf8)) ?? ""
        throw TestFailure("etcd member \(m.name) did not listen on \(m.clientPort); its log ends:\n\(log.suffix(2000))")
    }

    private func logPath(_ i: Int) -> String { dir + "/" + members[i].name + ".log" }

    /// etcdctl against every member, with the CA when there is one.
    @discardableResult
    public func etcdctl(_ args: [String]) throws -> String {
        try TestCommand.output("/usr/bin/etcdctl", ["--endpoints", endpoints] + clientFlags + args)
    }

    /// etcdctl's flags for the CA and the client certificate, when there are.
    private var clientFlags: [String] {
        (caFile.map { ["--cacert", $0] } ?? []) + (clientCert.map { ["--cert", $0] } ?? []) + (clientKey.map { ["--key", $0] } ?? [])
    }

    private func launch(_ i: Int) throws {
        let m = members[i]
        let cluster = members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        processes[i] = try ServerProcess("/usr/bin/etcd", [
            "--name", m.name, "--data-dir", dir + "/" + m.name,
            "--listen-client-urls", scheme + m.endpoint, "--advertise-client-urls", scheme + m.endpoint,
            "--listen-peer-urls", "http://127.0.0.1:\(m.peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(m.peerPort)",
            "--initial-cluster", cluster, "--initial-cluster-token", token, "--initial-cluster-state", "new",
            "--heartbeat-interval", "50", "--election-timeout", "500", "--logger", "zap", "--log-level", "warn",
        ] + (caFile == nil ? [] : ["--cert-file", dir + "/server.crt", "--key-file", dir + "/server.key"])
          + (clientCerts ? ["--client-cert-auth", "--trusted-ca-file", dir + "/ca.crt"] : []) + flags,
                                     port: m.clientPort, waitForPort: false, log: logPath(i))
    }

    /// Waits until every running member answers a linearizable read (the cluster has a leader).
    public func waitHealthy(timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let running = members.indices.filter { processes[$0] != nil }.map { scheme + members[$0].endpoint }.joined(separator: ",")
        let ca = clientFlags
        while Date() < deadline {
            if (try? TestCommand.output("/usr/bin/etcdctl", ["--endpoints", running, "--command-timeout", "2s"] + ca + ["endpoint", "health"])) != nil { return }
            usleep(100_000)
        }
        throw TestFailure("etcd at \(running) is not healthy after \(timeout) s")
    }

    /// The index of the member that leads now.
    public func leader() throws -> Int {
        for (i, m) in members.enumerated() where processes[i] != nil {
            let json = try TestCommand.output("/usr/bin/etcdctl", ["--endpoints", scheme + m.endpoint] + clientFlags + ["endpoint", "status", "-w", "json"])
            guard let list = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]],
                  let status = list.first?["Status"] as? [String: Any], let header = status["header"] as? [String: Any],
                  let member = header["member_id"] as? NSNumber, let leader = status["leader"] as? NSNumber else { continue }
            if member == leader { return i }
        }
        throw TestFailure("no etcd member says it leads")
    }

    /// SIGKILL, as a crash of the machine the member runs on.
    public func kill(_ i: Int) {
        guard let p = processes[i] else { return }
        Glibc.kill(p.pid, SIGKILL)
        p.stop()
        processes[i] = nil
    }

    /// The last lines of each member's log (warnings and errors: slow disk writes, leader changes), for the
    /// report of a failing test.
    public func logTails(lines: Int = 15) -> String {
        members.indices.map { members[$0].name + ":\n" + logTail(logPath($0), lines: lines) }.joined(separator: "\n")
    }

    public func pause(_ i: Int) { if let p = processes[i] { Glibc.kill(p.pid, SIGSTOP) } }
    public func resume(_ i: Int) { if let p = processes[i] { Glibc.kill(p.pid, SIGCONT) } }

    public func stop() {
        for i in processes.indices {
            if let p = processes[i] { Glibc.kill(p.pid, SIGCONT); p.stop() }
            processes[i] = nil
        }
    }

    deinit { stop() }
}
