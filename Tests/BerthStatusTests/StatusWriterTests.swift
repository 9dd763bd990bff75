import BerthGit
import BerthModel
import BerthSource
@testable import BerthStatus
import BerthTestSupport
import Foundation
import Testing

@Suite(.serialized) struct StatusWriterTests {
    static let secretValue = "hunter2-never-in-git"

    struct Setup {
        let ws: GitWorkspace
        let bare: String
        let work: String
        let daemon: ServerProcess
        let source: GitSource
        let writer: StatusWriter
        let url: String
    }

    func setup(_ ws: GitWorkspace, window: Duration = .milliseconds(50)) async throws -> Setup {
        let (bare, work) = try ws.makeRepository("app")
        try ws.commit([
            "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {mode: prod}\n",
            "secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: \(StatusWriterTests.secretValue)}\n",
        ], in: work, message: "one")
        let daemon = try ws.gitDaemon()
        let url = "git://127.0.0.1:\(daemon.port)/app.git"
        var config = SourceConfig(access: RemoteAccess(url: url))
        config.stateDirectory = ws.path("state")
        let source = try GitSource(config: config)
        var statusConfig = StatusConfig()
        statusConfig.coalesceWindow = window
        statusConfig.initialBackoff = .milliseconds(20)
        let writer = try StatusWriter(repositoryPath: config.mirrorPath, access: config.access, config: statusConfig)
        return Setup(ws: ws, bare: bare, work: work, daemon: daemon, source: source, writer: writer, url: url)
    }

    func status(for snapshot: Snapshot, url: String) -> ClusterStatus {
        var s = ClusterStatus(source: .init(repository: url, ref: "branch main"))
        s.lastCommit = snapshot.commit.id.hex
        s.lastResult = snapshot.result.isValid ? .applied : .rejected
        s.findings = snapshot.result.findings
        if snapshot.result.isValid {
            s.appliedCommit = snapshot.commit.id.hex
            s.objects = ClusterStatus.objects(of: snapshot.result.desired)
        }
        return s
    }

    func snapshot(_ outcome: GitSource.Outcome) throws -> Snapshot {
        switch outcome {
        case .updated(let s), .unchanged(let s): return s
        case .failed(let e, _): throw TestFailure("poll failed: \(e)")
        }
    }

    @Test func quietClusterMakesNoCommitsAndNotesAreReadable() async throws {
        try await GitWorkspace.with { ws in
            let t = try await setup(ws)
            defer { t.daemon.stop() }
            let snap = try snapshot(await t.source.poll())
            let first = try await t.writer.flush()
            #expect(first.commit == nil)
            await t.writer.update(status(for: snap, url: t.url))
            await t.writer.note(on: snap.commit.id, StatusMessage.note(result: .applied, findings: [], objects: 2))
            let written = try await t.writer.flush()
            #expect(written.commit != nil && written.notesWritten == 1)

            for _ in 0..<10 {
                let s = try snapshot(await t.source.poll())
                await t.writer.update(status(for: s, url: t.url))
                #expect(try await t.writer.flush().commit == nil)
            }
            #expect(try ws.git(["rev-list", "--count", "berth/status"], in: t.bare) == "1")
            let tree = try ws.git(["ls-tree", "-r", "--name-only", "berth/status"], in: t.bare)
            #expect(tree.split(separator: "\n") == ["cluster.yaml", "default/ConfigMap/cfg.yaml", "default/Secret/creds.yaml"])
            let message = try ws.git(["log", "-1", "--format=%B", "berth/status"], in: t.bare)
            #expect(message.hasPrefix("applied \(snap.commit.id.short): 2 objects"))
            #expect(message.contains("added    cluster.yaml\nadded    default/ConfigMap/cfg.yaml\nadded    default/Secret/creds.yaml\n"))
            #expect(message.contains("Berth-Source-Commit: \(snap.commit.id.hex)"))
            #expect(try ws.git(["log", "--notes=berth", "--format=%N", "-1", "main"], in: t.bare) == "berth: applied\nobjects: 2")
            _ = try ws.git(["fsck", "--strict"], in: t.bare)
            // No secret value anywhere: status files, messages, notes.
            let statusText = try ws.git(["log", "-p", "berth/status", "refs/notes/berth"], in: t.bare)
            #expect(!statusText.contains(StatusWriterTests.secretValue))
        }
    }

    @Test func coalescesChangesInTheWindow() async throws {
        try await GitWorkspace.with { ws in
            // A window of 3 s: the five updates below fall in it even when the other tests of the process
            // hold the pool's two threads (300 ms, then 1 s under the three test groups' load, were once too
            // short, and the last update made a second commit).
            let t = try await setup(ws, window: .seconds(3))
            defer { t.daemon.stop() }
            let snap = try snapshot(await t.source.poll())
            var s = status(for: snap, url: t.url)
            for i in 0..<5 {
                s.sourceError = i < 4 ? "attempt \(i)" : nil
                await t.writer.update(s)
            }
            // The window closes 3 s after the first update; give the flush time to finish on a busy machine.
            for _ in 0..<200 where await t.writer.commitsMade == 0 { try await Task.sleep(for: .milliseconds(50)) }
            try await Task.sleep(for: .milliseconds(400))
            #expect(await t.writer.commitsMade == 1)
            #expect(await t.writer.lastError == nil)
            #expect(try ws.git(["rev-list", "--count", "berth/status"], in: t.bare) == "1")
            #expect(try !ws.git(["show", "berth/status:cluster.yaml"], in: t.bare).contains("sourceError"))
        }
    }

    @Test func anotherWriterInBetweenIsKeptAndRejectedCommitsListFindings() async throws {
        try await GitWorkspace.with { ws in
            let t = try await setup(ws)
            defer { t.daemon.stop() }
            let snap = try snapshot(await t.source.poll())
            await t.writer.update(status(for: snap, url: t.url))
            let ours = try #require(try await t.writer.flush().commit)

            // A person pushes to the status branch.
            let other = ws.path("other")
            try ws.git(["clone", "-q", "-b", "berth/status", t.bare, other])
            try ws.commit(["NOTES.md": "looked at it\n"], in: other, message: "human note", push: false)
            try ws.git(["push", "-q", "origin", "HEAD:berth/status"], in: other)
            let human = try ws.git(["rev-parse", "HEAD"], in: other)

            // A broken commit: rejected, with its findings in the status and the note.
            try ws.commit(["app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndta: {mode: prod}\n"],
                          in: t.work, message: "broken")
            let bad = try snapshot(await t.source.poll())
            #expect(!bad.result.isValid)
            var s = status(for: snap, url: t.url)
            s.lastCommit = bad.commit.id.hex
            s.lastResult = .rejected
            s.findings = bad.result.findings
            await t.writer.update(s)
            await t.writer.note(on: bad.commit.id, StatusMessage.note(result: .rejected, findings: bad.result.findings, objects: 0))
            let next = try #require(try await t.writer.flush().commit)

            let history = try ws.git(["rev-list", "berth/status"], in: t.bare).split(separator: "\n").map(String.init)
            #expect(history == [next.hex, human, ours.hex])
            let cluster = try ws.git(["show", "berth/status:cluster.yaml"], in: t.bare)
            #expect(cluster.contains("result: Rejected"))
            #expect(cluster.contains("\"app.yaml:4:1: error: unknown field \\\"dta\\\" (did you mean \\\"data\\\"?) (dta)\""))
            let note = try ws.git(["notes", "--ref=berth", "show", bad.commit.id.hex], in: t.bare)
            #expect(note == "berth: rejected\napp.yaml:4:1: unknown field \"dta\" (did you mean \"data\"?)")
            _ = try ws.git(["fsck", "--strict"], in: t.bare)
        }
    }

    @Test func retriesWhenAConcurrentWriterWinsTheRace() async throws {
        try await GitWorkspace.with { ws in
            let t = try await setup(ws)
            defer { t.daemon.stop() }
            let snap = try snapshot(await t.source.poll())
            await t.writer.update(status(for: snap, url: t.url))
            let ours = try #require(try await t.writer.flush().commit)

            // The server's update hook lets another writer move the branch under the first push, then refuses it.
            let hook = t.bare + "/hooks/update"
            try """
            #!/bin/sh
            [ "$1" = refs/heads/berth/status ] || exit 0
            [ -e "$GIT_DIR/raced" ] && exit 0
            touch "$GIT_DIR/raced"
            # Outside the push's quarantine, like a separate writer: its objects and ref update are real.
            unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
            other=$(echo "concurrent writer" | git commit-tree "$2^{tree}" -p "$2")
            git update-ref refs/heads/berth/status "$other" "$2"
            echo "$other" > "$GIT_DIR/other"
            exit 1

            """.write(toFile: hook, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook)

            var s = status(for: snap, url: t.url)
            s.sourceError = "pretend the source failed"
            await t.writer.update(s)
            let result = try await t.writer.flush()
            #expect(result.attempts == 2)
            let concurrent = try String(contentsOfFile: t.bare + "/other", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let history = try ws.git(["rev-list", "berth/status"], in: t.bare).split(separator: "\n").map(String.init)
            let rebuilt = try #require(result.commit)
            #expect(history == [rebuilt.hex, concurrent, ours.hex])
            _ = try ws.git(["fsck", "--strict"], in: t.bare)
        }
    }
}

@Suite struct StatusTreeTests {
    @Test func objectStatusRendersAsStableYAMLAndNamesTheRolloutInTheSubject() {
        var s = ClusterStatus(source: .init(repository: "r", ref: "main"))
        s.appliedCommit = "4f2a9c1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        s.lastResult = .applied
        let key = ObjectKey(kind: .deployment, namespace: "default", name: "web")
        s.objects = [ClusterStatus.Object(key: key, origin: SourceLocation(path: "web.yaml", line: 3, column: 1), status: [
            StatusField("replicas", .int(3)), StatusField("readyReplicas", .int(2)),
            StatusField("pods", .list([.map([StatusField("name", .string("web-1")), StatusField("ready", .bool(true))])])),
            StatusField("conditions", .list([])),
        ])]
        s.nodes = [ClusterStatus.Node(name: "n1", status: [StatusField("ready", .bool(true))])]
        let files = StatusTree.files(s)
        #expect(String(decoding: files["default/Deployment/web.yaml"]!, as: UTF8.self) == """
            kind: Deployment
            namespace: default
            name: web
            source: "web.yaml:3"
            status:
              replicas: 3
              readyReplicas: 2
              pods:
                - name: "web-1"
                  ready: true
              conditions: []

            """)
        #expect(String(decoding: files["nodes/n1.yaml"]!, as: UTF8.self) == "name: n1\nready: true\n")
        let message = StatusMessage.commitMessage(s, changes: [ChangedPath(path: "default/Deployment/web.yaml", status: .modified)])
        #expect(message.hasPrefix("web: rollout 2/3 ready at 4f2a9c1\n"))
        let other = StatusMessage.commitMessage(s, changes: [ChangedPath(path: "nodes/n1.yaml", status: .modified)])
        #expect(other.hasPrefix("status of node n1 at 4f2a9c1\n"))
    }
}
