import BerthTestSupport
import Foundation
import Testing

/// The daemon's end-to-end tests, one at a time: each runs `berth run` as a process against a real Git
/// server, with pods on a network namespace made for it.
@Suite(.serialized, .enabled(if: getuid() == 0, "the daemon runs pods: needs root")) struct DaemonTests {}

/// The cluster store a test daemon uses: its embedded store, or three etcd members on loopback ports.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible {
    case embedded, etcd
    var testDescription: String { rawValue }
}

/// `berth run` in a scratch directory, following a repository served by `git daemon`, its pod network in
/// a network namespace of its own (no route out). Everything goes at the end, whatever happened.
final class DaemonHarness: @unchecked Sendable {
    let ws: GitWorkspace
    let dir: String
    let netns: String
    let bare: String
    let work: String
    let apiPort = TestServers.freePort()
    let gitPort: Int
    var gitServer: ServerProcess?
    var etcd: TestEtcd?
    var daemon: Process?
    var interval = "1s"
    var nodeName = "e2e"
    /// More flags for `berth run` (registries, say).
    var extraArgs: [String] = []
    /// A program that runs `berth run` (its path and arguments follow), which execs it in place.
    var launcher: [String] = []

    static var binaries: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var d = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 where !FileManager.default.isExecutableFile(atPath: d.appendingPathComponent("berth").path) { d.deleteLastPathComponent() }
        return d.path
    }

    init(ws: GitWorkspace) throws {
        self.ws = ws
        dir = ws.root
        netns = "berth-e2e-\(getpid() % 1000)\(UInt32.random(in: 0..<1000))"
        (bare, work) = try ws.makeRepository("repo")
        gitPort = TestServers.freePort()
        _ = try? DaemonHarness.run(["/usr/sbin/ip", "netns", "del", netns])
        try DaemonHarness.run(["/usr/sbin/ip", "netns", "add", netns])
        try DaemonHarness.run(["/usr/sbin/ip", "-n", netns, "link", "set", "lo", "up"])
    }

    /// A second daemon on the same repository, Git server and etcd, with its own state, network
    /// namespace, API port and node name; torn down by the caller.
    init(peerOf other: DaemonHarness, name: String) throws {
        ws = other.ws
        dir = other.dir + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        netns = other.netns + name
        bare = other.bare
        work = other.work
        gitPort = other.gitPort
        nodeName = name
        extraArgs = other.extraArgs
        _ = try? DaemonHarness.run(["/usr/sbin/ip", "netns", "del", netns])
        try DaemonHarness.run(["/usr/sbin/ip", "netns", "add", netns])
        try DaemonHarness.run(["/usr/sbin/ip", "-n", netns, "link", "set", "lo", "up"])
    }

    var url: String { "git://127.0.0.1:\(gitPort)/repo.git" }
    var api: String { "http://127.0.0.1:\(apiPort)" }
    var stateDir: String { dir + "/state" }

    static func with(store: StoreBackend = .embedded, _ body: (DaemonHarness) async throws -> Void) async throws {
        Orphans.adopt()
        try await GitWorkspace.with { ws in
            let h = try DaemonHarness(ws: ws)
            var failure: (any Error)?
            do {
                h.gitServer = try ws.gitDaemon(port: h.gitPort)
                if store == .etcd {
                    let etcd = try await TestEtcd.start(dir: h.dir + "/etcd", members: 3)
                    h.etcd = etcd
                    h.extraArgs += ["--store", etcd.url]
                }
                try await body(h)
            } catch { failure = error }
            h.tearDown()
            if let failure {
                Issue.record("daemon log (last lines):\n\(logTail(h.dir + "/daemon.log", lines: 40))")
                if let etcd = h.etcd { Issue.record("etcd logs (last lines):\n\(etcd.logTails())") }
                throw failure
            }
        }
    }

    /// Starts `berth run`; it removes its workloads when stopped with SIGTERM.
    func start() throws {
        Orphans.adopt()
        let p = Process()
        let berth = DaemonHarness.binaries + "/berth"
        p.executableURL = URL(fileURLWithPath: launcher.first ?? berth)
        p.arguments = (launcher.isEmpty ? [] : launcher.dropFirst() + [berth]) + ["run", "--repo", url, "--state-dir", stateDir, "--run-dir", dir + "/run", "--interval", interval,
                       "--listen", "127.0.0.1:\(apiPort)", "--node-name", nodeName, "--network-namespace", "/run/netns/" + netns,
                       "--webhook-secret-file", dir + "/webhook-secret", "--stop-workloads-on-exit"] + extraArgs
        try "s3cret-hook\n".write(toFile: dir + "/webhook-secret", atomically: true, encoding: .utf8)
        if !FileManager.default.fileExists(atPath: dir + "/daemon.log") { _ = FileManager.default.createFile(atPath: dir + "/daemon.log", contents: nil) }
        let log = FileHandle(forWritingAtPath: dir + "/daemon.log")!
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        daemon = p
        guard TestServers.waitForPort(apiPort, timeout: 30) else { throw TestFailure("berth run did not open its API on \(apiPort)") }
    }

    /// Stops the daemon: SIGTERM (graceful, removes workloads) or SIGKILL (a crash).
    func stop(_ signal: Int32 = SIGTERM, timeout: Double = 90) {
        guard let p = daemon else { return }
        daemon = nil
        stopProcess(p, signal, timeout: timeout)
    }

    func tearDown() {
        if daemon == nil, FileManager.default.fileExists(atPath: stateDir + "/node/pods"),
           !((try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/node/pods")) ?? []).isEmpty {
            // A crashed daemon left pods: a new one adopts them and removes them on SIGTERM.
            try? start()
        }
        stop(SIGTERM)
        Orphans.reap(named: ["berth-shim"], waiting: false)
        // Whatever is still there (a daemon that could not stop): killed, reaped, its cgroups removed.
        let runDir = dir + "/run/"
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            for e in entries {
                guard let pid = Int32(e), let cmd = try? String(contentsOfFile: "/proc/\(e)/cmdline", encoding: .utf8), cmd.contains(runDir) else { continue }
                kill(pid, SIGKILL)
            }
        }
        Orphans.reap(named: ["berth-shim"], waiting: true, matching: runDir)
        gitServer?.stop()
        etcd?.stop()
        _ = try? DaemonHarness.run(["/usr/sbin/ip", "netns", "del", netns])
    }

    // MARK: the API

    @discardableResult
    static func run(_ argv: [String], stdin: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let input = Pipe()
        if stdin != nil { p.standardInput = input }
        try p.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else { throw TestFailure("\(argv.joined(separator: " ")) exited \(p.terminationStatus): \(text)") }
        return text
    }

    /// GET, as JSON.
    func get(_ path: String) throws -> [String: Any] {
        let text = try DaemonHarness.run(["/usr/bin/curl", "-sS", "-m", "5", api + path])
        guard let o = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw TestFailure("GET \(path): not JSON: \(text.prefix(200))")
        }
        return o
    }

    /// POST; returns the HTTP status.
    func post(_ path: String, headers: [String] = [], body: String = "") throws -> Int {
        var argv = ["/usr/bin/curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "@-"]
        for h in headers { argv += ["-H", h] }
        return Int(try DaemonHarness.run(argv + [api + path], stdin: body)) ?? 0
    }

    /// The berth CLI against this daemon.
    func cli(_ args: [String]) throws -> String {
        try DaemonHarness.run([DaemonHarness.binaries + "/berth"] + args + ["--server", api])
    }

    func pods(_ prefix: String? = nil) throws -> [[String: Any]] {
        let items = try get("/api/v1/namespaces/default/pods")["items"] as? [[String: Any]] ?? []
        return items.filter { prefix == nil || name($0).hasPrefix(prefix! + "-") }
    }

    func name(_ o: [String: Any]) -> String { (o["metadata"] as? [String: Any])?["name"] as? String ?? "" }

    func hash(_ pod: [String: Any]) -> String {
        ((pod["metadata"] as? [String: Any])?["labels"] as? [String: String])?["pod-template-hash"] ?? ""
    }

    func isReady(_ pod: [String: Any]) -> Bool {
        let conditions = (pod["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
        return conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
    }

    func restarts(_ pod: [String: Any]) -> Int {
        ((pod["status"] as? [String: Any])?["containerStatuses"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["restartCount"] as? Int ?? 0) }
    }

    /// When the pod's first container started (a pod that was stopped and made again starts later).
    func startedAt(_ pod: [String: Any]) -> String {
        let statuses = (pod["status"] as? [String: Any])?["containerStatuses"] as? [[String: Any]] ?? []
        return ((statuses.first?["state"] as? [String: Any])?["running"] as? [String: Any])?["startedAt"] as? String ?? ""
    }

    func deployment(_ name: String) throws -> [String: Any] { try get("/api/v1/namespaces/default/deployments/\(name)") }

    /// All replicas of the Deployment ready on one revision, with no other pods of it left.
    func rolledOut(_ name: String, replicas: Int) throws -> String? {
        let pods = try self.pods(name)
        let hashes = Set(pods.map(hash))
        guard pods.count == replicas, hashes.count == 1, pods.allSatisfy(isReady) else { return nil }
        return hashes.first
    }

    func clusterIP(_ service: String) throws -> String {
        (try get("/api/v1/namespaces/default/services/\(service)")["spec"] as? [String: Any])?["clusterIP"] as? String ?? ""
    }

    /// Runs a command in the pods' network namespace.
    func inNetns(_ argv: [String]) throws -> String {
        try DaemonHarness.run(["/usr/sbin/ip", "netns", "exec", netns] + argv)
    }

    /// A client in the pods' network namespace requesting `url` again and again until `stop`.
    func client(_ url: String) throws -> () -> [String] {
        try requestLoop(namespace: "/run/netns/" + netns, url: url, stopFile: dir + "/stop-client")
    }

    func waitFor(_ what: String, timeout: Double = 30, _ condition: () throws -> Bool) async throws {
        try await BerthDaemonTests.waitFor(what, timeout: timeout, condition)
    }

    /// A status branch file as the Git server holds it.
    func statusFile(_ path: String) throws -> String {
        try ws.git(["show", "berth/status:" + path], in: bare)
    }

    func note(_ commit: String) throws -> String {
        try ws.git(["notes", "--ref", "berth", "show", commit], in: bare)
    }
}

/// A shell loop in network namespace `namespace` requesting `url` until `stopFile` exists; `stop` returns one
/// line per request: "ok", "SLOW …" (answered, after more than a second) or "FAIL curl=CODE …", with the
/// connect and first-byte times (a connect time of 0: no connection was made), then "DIAG …" lines of the
/// namespace's neighbours, unfinished connections and Service rules. A request fails when it is
/// refused, reset or not answered within 2 s.
func requestLoop(namespace: String, url: String, stopFile: String) throws -> () -> [String] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
    p.arguments = ["--net=" + namespace, "/bin/sh", "-c", """
        while [ ! -e \(stopFile) ]; do
          if t=$(curl -sf -m 2 -o /dev/null -w 'total=%{time_total} connect=%{time_connect} first-byte=%{time_starttransfer}' \(url)); then
            case $t in total=0.*) echo ok ;; *) echo "SLOW $t at $(date +%T.%N)" ;; esac
          else
            echo "FAIL curl=$? $t at $(date +%T.%N)"
            { ip neigh; grep -v ESTABLISHED /proc/net/nf_conntrack; nft list table inet berth | grep -E 'dnat|elements'; } 2>&1 | sed 's/^/DIAG /'
          fi
        done
        """]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    return {
        _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
        let results = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").map(String.init)
        p.waitUntilExit()
        let slow = results.filter { $0.hasPrefix("SLOW") }
        if !slow.isEmpty { print("\(slow.count) of \(results.count) requests to \(url) took over a second: \(slow)") }
        return results
    }
}

/// The failed requests of a `requestLoop`, and the diagnostics printed after them, one per line.
func failedRequests(_ results: [String]) -> (failures: [String], diagnostics: String) {
    (results.filter { $0.hasPrefix("FAIL") }, results.filter { $0.hasPrefix("DIAG") }.joined(separator: "\n"))
}

/// Waits until `condition` holds, trying every 200 ms; an error it throws counts as "not yet" and is
/// quoted if time runs out.
func waitFor(_ what: String, timeout: Double = 30, _ condition: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    var last: (any Error)?
    while Date() < deadline {
        do {
            if try condition() { return }
        } catch { last = error }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw TestFailure("timed out after \(Int(timeout)) s waiting for \(what)\(last.map { " (last error: \($0))" } ?? "")")
}

/// Sends `signal`, then SIGKILL if the process is still there after `timeout` seconds, and reaps it.
func stopProcess(_ p: Process, _ signal: Int32, timeout: Double) {
    kill(p.processIdentifier, signal)
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
}
