import BerthGit
import BerthTestSupport
import Foundation
import Testing

@Suite struct RepositoryTests {
    @Test func writesTreesCommitsAndNotesThatGitReads() throws {
        try GitWorkspace.with { ws in
            let repo = try Repository.openOrInitBare(at: ws.path("status.git"))
            let tree = try repo.writeTree(["cluster.yaml": Array("nodes: 1\n".utf8), "default/Deployment/web.yaml": Array("ready: 3\n".utf8)])
            let first = try repo.createCommit(tree: tree, parents: [], message: "first\n\nBerth-Source-Commit: abc\n",
                                              author: .berth, committer: .berth)
            try repo.setReference("refs/heads/berth/status", to: first, expected: .some(nil), message: "test")
            #expect(try ws.git(["--git-dir", repo.path, "cat-file", "-p", "berth/status:default/Deployment/web.yaml"]) == "ready: 3")
            #expect(try repo.files(inTree: tree).map(\.path).sorted() == ["cluster.yaml", "default/Deployment/web.yaml"])

            // Compare-and-swap: a stale expectation is refused and the ref keeps its value.
            let second = try repo.createCommit(tree: try repo.writeTree(["cluster.yaml": Array("nodes: 2\n".utf8)]),
                                               parents: [first], message: "second", author: .berth, committer: .berth)
            #expect(throws: GitError.self) {
                try repo.setReference("refs/heads/berth/status", to: second, expected: .some(second), message: "stale")
            }
            try repo.setReference("refs/heads/berth/status", to: second, expected: .some(first), message: "ok")
            #expect(repo.commit(ofReference: "refs/heads/berth/status") == second)
            #expect(repo.isDescendant(second, of: first))
            let changes = try repo.changedPaths(from: try repo.commitInfo(first).tree, to: try repo.commitInfo(second).tree)
            #expect(changes.sorted { $0.path < $1.path } == [
                ChangedPath(path: "cluster.yaml", status: .modified),
                ChangedPath(path: "default/Deployment/web.yaml", status: .deleted),
            ])

            try repo.setNote(on: first, ref: "refs/notes/berth", message: "applied\n", author: .berth)
            #expect(repo.note(on: first, ref: "refs/notes/berth") == "applied\n")
            #expect(repo.note(on: second, ref: "refs/notes/berth") == nil)
            #expect(try ws.git(["--git-dir", repo.path, "log", "--notes=berth", "--format=%N", "-1", first.hex]) == "applied")
            _ = try ws.git(["--git-dir", repo.path, "fsck", "--strict"])
        }
    }

    @Test func readsBlobsWithALimit() throws {
        try GitWorkspace.with { ws in
            let repo = try Repository.openOrInitBare(at: ws.path("r.git"))
            let id = try repo.writeBlob(Array(repeating: 65, count: 100))
            #expect(try repo.blob(id).count == 100)
            #expect(try repo.blob(id, limit: 10).count == 11)
            #expect(try repo.blobSize(id) == 100)
        }
    }
}
