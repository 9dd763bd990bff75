import CBerthLinux
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The last `lines` lines of a log file ("" when there is none), for the report of a failing test.
public func logTail(_ path: String, lines: Int) -> String {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
}

/// Real Git servers for integration tests, on loopback ports they pick, stopped and removed afterwards.
public enum TestServers {
    /// A loopback TCP port nobody listens on right now, below the kernel's ephemeral range (32768 and up
    /// here): a port the kernel picked could be taken by an outgoing connection before the server binds it.
    public static func freePort() -> Int {
        while true {
            let port = Int.random(in: 20000..<32768)
            let fresh = handedOut.withLock { $0.insert(port).inserted }
            guard fresh else { continue }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = loopback(port)
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            if bound { return port }
        }
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return addr
    }

    /// Ports already given to a test of this process, which may not have bound them yet.
    private static let handedOut = Mutex<Set<Int>>([])

    /// Waits until something accepts connections on the port.
    public static func waitForPort(_ port: Int, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = loopback(port)
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if ok { return true }
            usleep(20_000)
        }
        return false
    }
}

/// Runs blocking work (waiting on processes and ports) on a thread of its own. The concurrency pool has one
/// thread per core here, and a test blocking one of them stalls every other test's tasks.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

/// A server process that is killed (and reaped) when stopped or deinitialised.
public final class ServerProcess: @unchecked Sendable {
    let process: Process
    public let port: Int

    static let serverNames: Set<String> = ["git-daemon", "git", "git-upload-pack", "git-receive-pack", "sshd", "lighttpd",
                                           "git-http-backend", "sh", "etcd"]

    /// Starts the server and waits until it listens on `port` (with `waitForPort` false, the caller waits:
    /// members of a cluster listen only once enough of them run).
    /// With `log`, its output goes to that file (for the test's error message) rather than nowhere.
    init(_ executable: String, _ args: [String], port: Int, env: [String: String] = [:], waitForPort: Bool = true, log: String? = nil) throws {
        Orphans.adopt()
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        process.environment = environment
        if let log, FileManager.default.createFile(atPath: log, contents: nil), let handle = FileHandle(forWritingAtPath: log) {
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        self.port = port
        try process.run()
        guard !waitForPort || TestServers.waitForPort(port) else {
            stop()
            throw TestFailure("\(executable) did not start listening on port \(port)")
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after 0.5 s. Liveness is asked of the kernel: Foundation's
    /// `isRunning` was seen to report a daemon gone while it still served.
    public var pid: pid_t { process.processIdentifier }

    public func stop() {
        let pid = process.processIdentifier
        guard pid > 0, !stopped else { return }
        stopped = true
        // Let the server reap its finished children first: orphans left to PID 1 are not reaped on this machine.
        let settle = Date().addingTimeInterval(1)
        while ServerProcess.hasZombieChildren(pid) && Date() < settle { usleep(10_000) }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(0.5)
        while ServerProcess.alive(pid) && Date() < deadline { usleep(10_000) }
        if ServerProcess.alive(pid) { kill(pid, SIGKILL) }
        process.waitUntilExit()
        Orphans.reap(named: ServerProcess.serverNames)
    }

    private var stopped = false

    static func hasZombieChildren(_ pid: pid_t) -> Bool {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
        for e in entries where e.first?.isNumber == true {
            guard let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, fields[0] == "Z", Int32(fields[1]) == pid { return true }
        }
        return false
    }

    /// Alive and not a zombie.
    static func alive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    deinit { stop() }
}

/// Processes that outlive their parents (a killed server's children, berth-shims) would go to PID 1, which
/// does not reap on these machines. As a child subreaper this process adopts them, and reaps them.
public enum Orphans {
    private static let adopted: Void = { _ = berth_set_child_subreaper() }()

    public static func adopt() { _ = adopted }

    /// Reaps adopted children with these names: those that have exited, or with `waiting`, all of them
    /// once they exit. With `matching`, only those whose command line contains it; with `excluding`,
    /// not those whose command line contains it (the processes of a test running alongside).
    public static func reap(named names: Set<String>, waiting: Bool = false, matching: String? = nil, excluding: String? = nil) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for e in entries {
            guard let pid = Int32(e), let stat = try? String(contentsOfFile: "/proc/\(e)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let name = String(stat[stat.index(after: open)..<close])
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == getpid(), names.contains(name), waiting || fields[0] == "Z" else { continue }
            // A zombie has no command line, and reaping it never blocks: any exited one goes.
            if fields[0] != "Z" && (matching != nil || excluding != nil) {
                let cmdline = (try? String(contentsOfFile: "/proc/\(e)/cmdline", encoding: .utf8)) ?? ""
                if let m = matching, !cmdline.contains(m) { continue }
                if let x = excluding, cmdline.contains(x) { continue }
            }
            waitpid(pid, nil, waiting ? 0 : WNOHANG)
        }
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A scratch directory with Git helpers, removed when the closure ends.
public struct GitWorkspace {
    public let root: String

    /// A workspace over an existing directory, which the caller removes.
    public init(root: String) { self.root = root }

    public static func with<T>(_ body: (GitWorkspace) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-git-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try body(GitWorkspace(root: dir))
    }

    public static func with<T>(_ body: (GitWorkspace) async throws -> T) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-git-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try await body(GitWorkspace(root: dir))
    }

    public func path(_ p: String) -> String { root + "/" + p }

    /// Runs git with a fixed identity; throws with git's output when it fails.
    @discardableResult
    public func git(_ args: [String], in dir: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        p.arguments = ["-c", "user.name=tester", "-c", "user.email=tester@berth.invalid", "-c", "init.defaultBranch=main"] + args
        p.currentDirectoryURL = URL(fileURLWithPath: dir ?? root)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else { throw TestFailure("git \(args.joined(separator: " ")): \(text)") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func write(_ text: String, to relative: String, in dir: String) throws {
        let full = dir + "/" + relative
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    /// A bare repository `name.git` and a clone of it at `name-work` on branch main.
    public func makeRepository(_ name: String) throws -> (bare: String, work: String) {
        let bare = path(name + ".git"), work = path(name + "-work")
        try git(["init", "-q", "--bare", "-b", "main", bare])
        try git(["config", "receive.denyNonFastForwards", "false"], in: bare)
        try git(["init", "-q", "-b", "main", work])
        try git(["remote", "add", "origin", bare], in: work)
        return (bare, work)
    }

    /// Commits the given files (path → text; nil deletes) and pushes to origin main (forced if asked).
    @discardableResult
    public func commit(_ files: [String: String?], in work: String, message: String, push: Bool = true, force: Bool = false) throws -> String {
        for (path, text) in files {
            if let text { try write(text, to: path, in: work) } else { try git(["rm", "-q", path], in: work) }
        }
        try git(["add", "-A"], in: work)
        try git(["commit", "-q", "--allow-empty", "-m", message], in: work)
        if push { try git(["push", "-q"] + (force ? ["--force"] : []) + ["origin", "HEAD:refs/heads/main"], in: work) }
        return try git(["rev-parse", "HEAD"], in: work)
    }

    // MARK: servers

    /// `git daemon` serving every repository under the workspace, pushes allowed.
    public func gitDaemon(port fixedPort: Int? = nil) throws -> ServerProcess {
        let port = fixedPort ?? TestServers.freePort()
        return try ServerProcess("/usr/lib/git-core/git-daemon", ["--reuseaddr", "--export-all", "--enable=receive-pack",
                                                  "--base-path=\(root)", "--listen=127.0.0.1", "--port=\(port)", root], port: port)
    }

    /// lighttpd running `git http-backend` under /git/, with basic auth for one user.
    public func httpBackend(user: String, password: String) throws -> ServerProcess {
        let port = TestServers.freePort()
        let dir = path("lighttpd-\(port)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "\(user):\(password)\n".write(toFile: dir + "/users", atomically: true, encoding: .utf8)
        let config = """
        server.document-root = "\(root)"
        server.bind = "127.0.0.1"
        server.port = \(port)
        server.pid-file = "\(dir)/pid"
        server.errorlog = "\(dir)/error.log"
        server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
        alias.url = ("/git/" => "/usr/lib/git-core/git-http-backend/")
        cgi.assign = ("" => "")
        setenv.add-environment = ("GIT_PROJECT_ROOT" => "\(root)", "GIT_HTTP_EXPORT_ALL" => "1")
        auth.backend = "plain"
        auth.backend.plain.userfile = "\(dir)/users"
        auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))

        """
        try config.write(toFile: dir + "/lighttpd.conf", atomically: true, encoding: .utf8)
        return try ServerProcess("/usr/sbin/lighttpd", ["-D", "-f", dir + "/lighttpd.conf"], port: port)
    }

    public struct SSHServer {
        public let process: ServerProcess
        /// The host's public key line, as `ssh-keyscan` would give it for known_hosts.
        public let knownHostsLine: String
        public let userKey: String
    }

    /// sshd on a loopback port with a generated host key and user key (ECDSA, which libssh2 1.10 speaks).
    public func sshServer() throws -> SSHServer {
        let port = TestServers.freePort()
        let dir = path("sshd-\(port)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        try run("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", dir + "/host_key"])
        try run("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "", "-f", dir + "/user_key"])
        try FileManager.default.copyItem(atPath: dir + "/user_key.pub", toPath: dir + "/authorized_keys")
        let config = """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(dir)/host_key
        PidFile \(dir)/sshd.pid
        AuthorizedKeysFile \(dir)/authorized_keys
        StrictModes no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PubkeyAuthentication yes
        UsePAM no
        PermitRootLogin prohibit-password

        """
        try config.write(toFile: dir + "/sshd_config", atomically: true, encoding: .utf8)
        let process = try ServerProcess("/usr/sbin/sshd", ["-D", "-e", "-f", dir + "/sshd_config"], port: port)
        let hostKey = try String(contentsOfFile: dir + "/host_key.pub", encoding: .utf8).split(separator: " ")
        return SSHServer(process: process, knownHostsLine: "[127.0.0.1]:\(port) \(hostKey[0]) \(hostKey[1])",
                         userKey: dir + "/user_key")
    }

    func run(_ exe: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestFailure("\(exe) failed") }
    }
}
