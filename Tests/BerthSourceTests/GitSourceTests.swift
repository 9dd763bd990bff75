import BerthGit
import BerthModel
import BerthSource
import BerthTestSupport
import Foundation
import Testing

func configMap(_ name: String, _ value: String = "v") -> String {
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \(name)\ndata:\n  k: \(value)\n"
}

extension GitSource.Outcome {
    var snapshot: Snapshot? {
        switch self {
        case .updated(let s), .unchanged(let s): return s
        case .failed: return nil
        }
    }
    var isUnchanged: Bool { if case .unchanged = self { return true } else { return false } }
    var error: SourceError? { if case .failed(let e, _) = self { return e } else { return nil } }
}

@Suite(.serialized) struct GitSourceTests {
    func source(_ ws: GitWorkspace, url: String, ref: SourceRef = .branch("main"), path: String = "") throws -> GitSource {
        var config = SourceConfig(access: RemoteAccess(url: url))
        config.ref = ref
        config.path = path
        config.stateDirectory = ws.path("state")
        return try GitSource(config: config)
    }

    @Test func followsCommitsIncrementallyAndForcePushes() async throws {
        try await GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            let first = try ws.commit(["a.yaml": configMap("a"), "b.yaml": configMap("b"), "README.md": "docs"], in: work, message: "one")
            let daemon = try ws.gitDaemon()
            defer { daemon.stop() }
            let src = try source(ws, url: "git://127.0.0.1:\(daemon.port)/app.git")

            let o1 = await src.poll()
            let s1 = try #require(o1.snapshot)
            #expect(s1.commit.id.hex == first)
            #expect(s1.result.desired.count == 2 && s1.result.isValid)
            #expect(s1.parsedFiles == 2)
            #expect(await src.lastFetchedObjects > 0)

            // Ten quiet polls: nothing fetched, nothing parsed.
            for _ in 0..<10 {
                let o = await src.poll()
                #expect(o.isUnchanged)
                #expect(await src.lastFetchedObjects == 0)
            }

            let second = try ws.commit(["b.yaml": configMap("b", "changed"), "c.yaml": configMap("c")], in: work, message: "two")
            let s2 = try #require(await src.poll().snapshot)
            #expect(s2.commit.id.hex == second && s2.commit.summary == "two")
            #expect(s2.parsedFiles == 2)
            #expect(s2.changedFiles.map(\.path).sorted() == ["b.yaml", "c.yaml"])
            #expect(!s2.historyRewritten)
            guard case .configMap(let b)? = s2.result.desired[ObjectKey(kind: .configMap, namespace: "default", name: "b")] else {
                Issue.record("b missing")
                return
            }
            #expect(b.data["k"] == "changed")

            // History rewritten: reset to the first commit, commit something else, force-push.
            try ws.git(["reset", "-q", "--hard", first], in: work)
            let rewritten = try ws.commit(["d.yaml": configMap("d")], in: work, message: "rewrite", force: true)
            let s3 = try #require(await src.poll().snapshot)
            #expect(s3.commit.id.hex == rewritten)
            #expect(s3.historyRewritten)
            #expect(s3.result.desired.count == 3)
        }
    }

    @Test func remoteDownKeepsTheLastGoodSnapshot() async throws {
        try await GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            let first = try ws.commit(["a.yaml": configMap("a")], in: work, message: "one")
            var daemon = try ws.gitDaemon()
            let port = daemon.port
            let src = try source(ws, url: "git://127.0.0.1:\(port)/app.git")
            #expect(await src.poll().snapshot?.commit.id.hex == first)
            daemon.stop()

            let down = await src.poll()
            guard case .failed(let error, let lastGood) = down else {
                Issue.record("expected a failure, got \(down)")
                return
            }
            #expect(error.code == .unreachable)
            #expect(error.message.contains("list references of git://127.0.0.1:\(port)/app.git"))
            #expect(lastGood?.commit.id.hex == first && lastGood?.result.desired.count == 1)
            #expect(await src.consecutiveFailures == 1)

            let second = try ws.commit(["b.yaml": configMap("b")], in: work, message: "two")
            daemon = try ws.gitDaemon(port: port)
            defer { daemon.stop() }
            #expect(await src.poll().snapshot?.commit.id.hex == second)
            #expect(await src.consecutiveFailures == 0)
        }
    }

    @Test func pathIgnoreTagsCommitsAndMissingRefs() async throws {
        try await GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            let c1 = try ws.commit([
                "deploy/a.yaml": configMap("a"),
                "deploy/drafts/x.yaml": "not: [valid",
                "deploy/.berthignore": "drafts/\n",
                "other/b.yaml": configMap("b"),
            ], in: work, message: "one")
            try ws.git(["tag", "-a", "v1", "-m", "release"], in: work)
            try ws.git(["push", "-q", "origin", "v1"], in: work)
            let c2 = try ws.commit(["deploy/c.yaml": configMap("c")], in: work, message: "two")
            let daemon = try ws.gitDaemon()
            defer { daemon.stop() }
            let url = "git://127.0.0.1:\(daemon.port)/app.git"

            let sub = try #require(await source(ws, url: url, path: "deploy").poll().snapshot)
            #expect(sub.commit.id.hex == c2)
            #expect(sub.result.isValid)
            #expect(sub.result.desired.objects.values.map(\.origin.path).sorted() == ["deploy/a.yaml", "deploy/c.yaml"])

            let tagged = try #require(await source(ws, url: url, ref: .tag("v1"), path: "deploy").poll().snapshot)
            #expect(tagged.commit.id.hex == c1 && tagged.result.desired.count == 1)

            let pinned = try #require(await source(ws, url: url, ref: .commit(ObjectID(hex: c1)!), path: "deploy").poll().snapshot)
            #expect(pinned.commit.id.hex == c1)

            let missing = try await source(ws, url: url, ref: .branch("nope")).poll()
            #expect(missing.error?.code == .refNotFound)
            #expect(missing.error?.message == "branch nope does not exist on \(url)")

            let noPath = try await source(ws, url: url, path: "absent").poll()
            #expect(noPath.error?.code == .pathNotFound)
        }
    }

    @Test func invalidCommitIsReportedWithFindings() async throws {
        try await GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            try ws.commit(["a.yaml": configMap("a").replacingOccurrences(of: "\ndata:", with: "\ndta:")], in: work, message: "broken")
            let daemon = try ws.gitDaemon()
            defer { daemon.stop() }
            let s = try #require(await source(ws, url: "git://127.0.0.1:\(daemon.port)/app.git").poll().snapshot)
            #expect(!s.result.isValid)
            #expect(s.result.findings.map(\.formatted) == ["a.yaml:5:1: error: unknown field \"dta\" (did you mean \"data\"?) (dta)"])
        }
    }

    @Test func refParsing() {
        #expect(SourceRef(parsing: "main") == .branch("main"))
        #expect(SourceRef(parsing: "refs/heads/release/1") == .branch("release/1"))
        #expect(SourceRef(parsing: "refs/tags/v1") == .tag("v1"))
        #expect(SourceRef(parsing: "tags/v2") == .tag("v2"))
        #expect(SourceRef(parsing: String(repeating: "a", count: 40)) == .commit(ObjectID(hex: String(repeating: "a", count: 40))!))
    }
}

actor OutcomeLog {
    var entries: [(ContinuousClock.Instant, GitSource.Outcome)] = []
    func add(_ o: GitSource.Outcome) { entries.append((ContinuousClock.now, o)) }
    var count: Int { entries.count }
}

@Suite(.serialized) struct PollLoopTests {
    @Test func triggerWakesThePollerAndFailuresBackOff() async throws {
        try await GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            try ws.commit(["a.yaml": configMap("a")], in: work, message: "one")
            let daemon = try ws.gitDaemon()
            defer { daemon.stop() }
            var config = SourceConfig(access: RemoteAccess(url: "git://127.0.0.1:\(daemon.port)/app.git"))
            config.stateDirectory = ws.path("state")
            let source = try GitSource(config: config)
            let log = OutcomeLog()
            let (trigger, wake) = AsyncStream<Void>.makeStream()
            let loop = Task {
                await source.run(interval: .seconds(60), backoff: .milliseconds(100), backoffCap: .milliseconds(400),
                                 trigger: trigger) { await log.add($0) }
            }
            defer { loop.cancel() }
            // Generous waits: other suites block the two cooperative threads at times. Each bound below
            // stays far under the 60 s interval, so only the trigger and the backoff can explain it.
            func waitFor(_ n: Int) async throws {
                for _ in 0..<2000 where await log.count < n { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await waitFor(1)
            #expect(await log.count == 1)

            // A push, then the "sync now" trigger: picked up at once, not after the 60 s interval.
            let second = try ws.commit(["b.yaml": configMap("b")], in: work, message: "two")
            wake.yield()
            try await waitFor(2)
            let entries = await log.entries
            guard entries.count == 2, case .updated(let s) = entries[1].1 else {
                Issue.record("no update after the trigger: \(entries.map { "\($0.1)" })")
                return
            }
            #expect(s.commit.id.hex == second)

            // The remote goes away: failures are retried with growing delays, capped.
            daemon.stop()
            wake.yield()
            try await waitFor(6)
            let failures = await log.entries.dropFirst(2).filter { if case .failed = $0.1 { true } else { false } }.map(\.0)
            // Retries come without waiting for the 60 s interval, at least 100, 200, 400, 400 ms apart.
            #expect(failures.count >= 4, "\(failures.count) failures")
            let gaps = zip(failures.dropFirst(), failures).map { $0 - $1 }
            if gaps.count >= 3 {
                #expect(gaps[0] >= .milliseconds(100) && gaps[1] >= .milliseconds(200) && gaps[2] >= .milliseconds(400), "\(gaps)")
                #expect(gaps.allSatisfy { $0 < .seconds(20) }, "\(gaps)")
            }
        }
    }
}

@Suite struct SourceLimitTests {
    @Test func deepTreesAndTooManyFilesAreRefusedNotWalked() async throws {
        try await GitWorkspace.with { ws in
            let (bare, work) = try ws.makeRepository("app")
            let deep = (0..<40).map { "d\($0)" }.joined(separator: "/")
            try ws.commit(["a.yaml": configMap("a"), deep + "/x.yaml": configMap("x")], in: work, message: "deep")
            var config = SourceConfig(access: RemoteAccess(url: bare))
            config.stateDirectory = ws.path("state")
            let outcome = await (try GitSource(config: config)).poll()
            #expect(outcome.error?.code == .inputLimit)
            #expect(outcome.error?.message.contains("nests deeper than 32 levels") == true)

            try ws.commit([deep + "/x.yaml": nil, "b.yaml": configMap("b"), "c.yaml": configMap("c")], in: work, message: "wide")
            config.limits.maxFiles = 2
            config.stateDirectory = ws.path("state2")
            let wide = await (try GitSource(config: config)).poll()
            #expect(wide.error?.message.contains("more than 2 manifest files under the repository root") == true)
        }
    }
}
