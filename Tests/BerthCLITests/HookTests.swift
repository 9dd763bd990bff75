import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The Git hooks against real repositories: a bare "server" repository with pre-receive and
/// post-receive installed, and a clone that pushes to it over the local transport.
@Suite struct HookTests {
    static let hooks = Shell.packageRoot.appendingPathComponent("hooks").path
    static let identity = ["-c", "user.name=berth test", "-c", "user.email=test@berth.invalid"]

    static let valid = """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: settings
    data:
      mode: production

    """

    static let invalid = """
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: settings
    dta:
      mode: production

    """

    func git(_ args: [String], in dir: String) throws -> Shell.Result {
        try Shell.run("git", HookTests.identity + args, cwd: dir)
    }

    /// A bare server repository with the given hooks, and a clone of it in `work`.
    func makeRepos(_ root: String, hooks: [String]) throws {
        #expect(try git(["init", "-q", "--bare", "-b", "main", root + "/server.git"], in: root).status == 0)
        for h in hooks {
            try FileManager.default.copyItem(atPath: HookTests.hooks + "/" + h, toPath: root + "/server.git/hooks/" + h)
        }
        #expect(try git(["config", "berth.bin", Shell.berth], in: root + "/server.git").status == 0)
        #expect(try git(["clone", "-q", root + "/server.git", root + "/work"], in: root).status == 0)
        #expect(try git(["checkout", "-q", "-b", "main"], in: root + "/work").status == 0)
    }

    func commit(_ text: String, _ file: String, in work: String, message: String) throws -> Shell.Result {
        try Shell.write(text, to: work + "/" + file)
        _ = try git(["add", "-A"], in: work)
        return try git(["commit", "-q", "-m", message], in: work)
    }

    @Test func preReceiveRejectsInvalidPushAndAcceptsValid() throws {
        try Shell.withTempDir { root in
            try makeRepos(root, hooks: ["pre-receive"])
            let work = root + "/work"
            #expect(try commit(HookTests.invalid, "config/settings.yaml", in: work, message: "broken").status == 0)
            let rejected = try git(["push", "origin", "main"], in: work)
            #expect(rejected.status != 0)
            #expect(rejected.stderr.contains(
                "remote: config/settings.yaml:5:1: error: unknown field \"dta\" (did you mean \"data\"?) (dta)"))
            #expect(rejected.stderr.contains("push to main rejected"))
            // The server's branch did not move.
            let tip = try git(["rev-parse", "--verify", "-q", "refs/heads/main"], in: root + "/server.git")
            #expect(tip.status != 0)

            #expect(try commit(HookTests.valid, "config/settings.yaml", in: work, message: "fixed").status == 0)
            let accepted = try git(["push", "origin", "main"], in: work)
            #expect(accepted.status == 0, "\(accepted.stderr)")
            let head = try git(["rev-parse", "HEAD"], in: work).stdout
            #expect(try git(["rev-parse", "refs/heads/main"], in: root + "/server.git").stdout == head)
        }
    }

    @Test func preReceiveChecksOnlyTheTrackedBranch() throws {
        try Shell.withTempDir { root in
            try makeRepos(root, hooks: ["pre-receive"])
            let work = root + "/work"
            #expect(try commit(HookTests.invalid, "settings.yaml", in: work, message: "wip").status == 0)
            let pushed = try git(["push", "origin", "main:refs/heads/wip"], in: work)
            #expect(pushed.status == 0, "\(pushed.stderr)")
        }
    }

    @Test func postReceiveWithNoDaemonReturnsQuickly() throws {
        try Shell.withTempDir { root in
            try makeRepos(root, hooks: ["post-receive"])
            // A listener that accepts connections but never answers: the hook must give up after 1 s.
            var fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(fd >= 0)
            // Closed once only: tests run in parallel and a descriptor number is reused at once.
            defer { if fd >= 0 { close(fd) } }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                    bind(fd, p, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, p, &len) == 0
                }
            }
            #expect(bound)
            let port = Int(UInt16(bigEndian: addr.sin_port))
            let server = root + "/server.git"
            #expect(try git(["config", "berth.url", "http://127.0.0.1:\(port)/api/v1/sync"], in: server).status == 0)
            let work = root + "/work"
            #expect(try commit(HookTests.valid, "settings.yaml", in: work, message: "one").status == 0)
            let start = Date()
            let pushed = try git(["push", "origin", "main"], in: work)
            let elapsed = Date().timeIntervalSince(start)
            #expect(pushed.status == 0, "\(pushed.stderr)")
            #expect(pushed.stderr.contains("did not answer"))
            #expect(elapsed < 4, "push took \(elapsed) s")

            // Nobody listening at all: refused at once, the push still succeeds.
            close(fd)
            fd = -1
            #expect(try commit(HookTests.valid + "# two\n", "settings.yaml", in: work, message: "two").status == 0)
            let start2 = Date()
            let pushed2 = try git(["push", "origin", "main"], in: work)
            #expect(pushed2.status == 0)
            #expect(Date().timeIntervalSince(start2) < 4)
        }
    }

    @Test func preCommitValidatesTheIndexNotTheWorkTree() throws {
        try Shell.withTempDir { root in
            try makeRepos(root, hooks: [])
            let work = root + "/work"
            try FileManager.default.copyItem(atPath: HookTests.hooks + "/pre-commit", toPath: work + "/.git/hooks/pre-commit")
            #expect(try git(["config", "berth.bin", Shell.berth], in: work).status == 0)
            let refused = try commit(HookTests.invalid, "settings.yaml", in: work, message: "broken")
            #expect(refused.status != 0)
            #expect((refused.stdout + refused.stderr).contains("settings.yaml:5:1: error: unknown field \"dta\""))
            // Stage a valid file, then break the work tree copy: the staged content is what gets committed.
            try Shell.write(HookTests.valid, to: work + "/settings.yaml")
            _ = try git(["add", "settings.yaml"], in: work)
            try Shell.write(HookTests.invalid, to: work + "/settings.yaml")
            let accepted = try git(["commit", "-q", "-m", "valid"], in: work)
            #expect(accepted.status == 0, "\(accepted.stdout)\(accepted.stderr)")
        }
    }
}
