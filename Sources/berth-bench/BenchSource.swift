import ArgumentParser
import BerthGit
import BerthSource
import BerthTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension BenchCommand {
    /// Times the Git source against a local `git daemon`: first snapshot, a one-file commit, unchanged polls.
    struct Source: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "source",
            abstract: "Benchmark the Git source on a repository of many manifest files served by git daemon.")

        @Option(help: "Manifest files in the repository (half Deployments, half Services).")
        var files = 10_000

        @Option(help: "Unchanged polls to time.")
        var polls = 50

        @Option(help: "One-file commits to time (the median is reported).")
        var commits = 9

        @Option(name: .shortAndLong, help: "Output format: text or json.")
        var output: OutputFormat = .text

        func run() async throws {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-\(getpid())").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: root) }

            // The origin repository, written directly with libgit2.
            let origin = try Repository.openOrInitBare(at: root + "/app.git")
            var blobs: [String: ObjectID] = [:]
            for i in 0..<files {
                let name = "app-\(i / 2)"
                let text = i % 2 == 0
                    ? BenchCommand.pair(name: name, replicas: 1 + i % 5).components(separatedBy: "---\n")[1]
                    : BenchCommand.pair(name: name, replicas: 1).components(separatedBy: "---\n")[2]
                blobs[String(format: "apps/%03d/%@-%@.yaml", i / 100, name, i % 2 == 0 ? "deploy" : "svc")] = try origin.writeBlob(Array(text.utf8))
            }
            let first = try origin.createCommit(tree: try origin.writeTree(blobs: blobs), parents: [], message: "apps",
                                                author: .berth, committer: .berth)
            try origin.setReference("refs/heads/main", to: first, message: "bench")
            // Served repositories are packed (pushes arrive as packs); libgit2 wrote loose objects.
            let repack = Process()
            repack.executableURL = URL(fileURLWithPath: "/usr/bin/git")
            repack.arguments = ["-C", root + "/app.git", "repack", "-adq"]
            try repack.run()
            repack.waitUntilExit()

            let daemon = try GitWorkspace(root: root).gitDaemon()
            defer { daemon.stop() }
            let port = daemon.port

            var config = SourceConfig(access: RemoteAccess(url: "git://127.0.0.1:\(port)/app.git"))
            config.stateDirectory = root + "/state"
            let source = try GitSource(config: config)
            let clock = ContinuousClock()

            var t0 = clock.now
            guard case .updated(let s1) = await source.poll() else { throw ValidationError("first poll failed") }
            let firstTotal = clock.now - t0
            let firstRemote = await source.lastRemoteDuration
            let firstSnapshot = await source.lastSnapshotDuration

            // Commits that each change one file; the median of them is reported.
            var parent = first
            var totals: [Duration] = [], snapshots: [Duration] = []
            var secondObjects = 0
            var parsed = 0
            for round in 1...commits {
                var changed = blobs
                changed["apps/000/app-0-deploy.yaml"] = try origin.writeBlob(Array(BenchCommand.pair(name: "app-0", replicas: round % 9 + 1)
                    .components(separatedBy: "---\n")[1].utf8))
                let next = try origin.createCommit(tree: try origin.writeTree(blobs: changed), parents: [parent],
                                                   message: "scale app-0", author: .berth, committer: .berth)
                try origin.setReference("refs/heads/main", to: next, message: "bench")
                parent = next
                t0 = clock.now
                guard case .updated(let s2) = await source.poll() else { throw ValidationError("poll after a commit failed") }
                totals.append(clock.now - t0)
                snapshots.append(await source.lastSnapshotDuration)
                secondObjects = await source.lastFetchedObjects
                parsed = s2.parsedFiles
            }
            let secondTotal = totals.sorted()[totals.count / 2]
            let secondSnapshot = snapshots.sorted()[snapshots.count / 2]
            let secondSnapshotMin = snapshots.min()!

            var quiet: [Duration] = []
            var transferred = 0
            for _ in 0..<polls {
                t0 = clock.now
                guard case .unchanged = await source.poll() else { throw ValidationError("quiet poll saw a change") }
                quiet.append(clock.now - t0)
                transferred += await source.lastFetchedObjects
            }
            quiet.sort()
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let p50 = quiet[quiet.count / 2].milliseconds, p99 = quiet[min(quiet.count - 1, quiet.count * 99 / 100)].milliseconds
            switch output {
            case .text:
                print("repository: \(files) manifest files (\(s1.result.desired.count) objects), served by git daemon on 127.0.0.1")
                print(String(format: "first snapshot:  %.0f ms total (ls-remote + fetch %.0f ms, parse + validate %.0f ms)",
                             firstTotal.milliseconds, firstRemote.milliseconds, firstSnapshot.milliseconds))
                print(String(format: "one-file commit: %.1f ms total, new DesiredState in %.1f ms (median of %d, best %.1f; %d file parsed, %d objects fetched)",
                             secondTotal.milliseconds, secondSnapshot.milliseconds, commits, secondSnapshotMin.milliseconds, parsed, secondObjects))
                print(String(format: "unchanged poll:  p50 %.2f ms, p99 %.2f ms over %d polls, %d objects transferred",
                             p50, p99, polls, transferred))
                print("peak RSS: \(usage.ru_maxrss / 1024) MiB")
            case .json:
                print(String(format: "{\"files\": %d, \"firstSnapshotMs\": %.1f, \"firstParseMs\": %.1f, \"oneFileCommitMs\": %.2f, \"oneFileSnapshotMs\": %.2f, \"oneFileSnapshotBestMs\": %.2f, \"quietPollP50Ms\": %.3f, \"quietPollP99Ms\": %.3f, \"quietObjects\": %d, \"maxRSSMiB\": %d}",
                             files, firstTotal.milliseconds, firstSnapshot.milliseconds, secondTotal.milliseconds, secondSnapshot.milliseconds, secondSnapshotMin.milliseconds, p50, p99, transferred, usage.ru_maxrss / 1024))
            }
        }
    }
}
