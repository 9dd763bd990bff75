import BerthConcurrency
import BerthGit
import BerthModel
import Foundation

/// Follows a ref of a remote repository through a bare mirror under the state directory.
/// A poll first asks the remote where the ref points (ls-remote) and fetches only when it moved.
/// A failure keeps the last good snapshot: an error is never an empty desired state.
public actor GitSource {
    /// Its work blocks: it runs on a queue of its own, off the cooperative pool (see `BlockingExecutor`).
    private let executor = BlockingExecutor(label: "git-source")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public enum Outcome: Sendable {
        /// The ref did not move; no objects were fetched.
        case unchanged(Snapshot)
        case updated(Snapshot)
        /// The remote could not be read; `lastGood` stays in force.
        case failed(SourceError, lastGood: Snapshot?)
    }

    public let config: SourceConfig
    private let worker: GitWorker
    private let snapshotter: Snapshotter
    /// The latest snapshot read (valid or not); whether to apply it is the caller's decision.
    public private(set) var lastGood: Snapshot?
    public private(set) var lastError: SourceError?
    public private(set) var consecutiveFailures = 0
    /// Objects received by the latest fetch (0 when the poll found nothing new).
    public private(set) var lastFetchedObjects = 0
    /// Time of the latest poll's remote part (ls-remote and fetch) and of its snapshot (parse and validate).
    public private(set) var lastRemoteDuration: Duration = .zero
    public private(set) var lastSnapshotDuration: Duration = .zero

    static let trackingPrefix = "refs/berth/source/"

    public init(config: SourceConfig) throws {
        self.config = config
        let dir = config.stateDirectory + "/git"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do {
            worker = try GitWorker(path: config.mirrorPath, label: config.mirrorName)
        } catch {
            throw SourceError(code: .repository, message: "cannot open the mirror under \(dir): \(error.message)", cause: error)
        }
        snapshotter = Snapshotter(config: config)
    }

    /// One sync: ls-remote, fetch if the ref moved, snapshot if the commit changed.
    public func poll() async -> Outcome {
        let clock = ContinuousClock()
        do {
            let start = clock.now
            let (target, fetched) = try await fetchTarget()
            lastRemoteDuration = clock.now - start
            lastSnapshotDuration = .zero
            lastFetchedObjects = fetched
            consecutiveFailures = 0
            lastError = nil
            if let good = lastGood, good.commit.id == target { return .unchanged(good) }
            let previous = lastGood?.commit.id
            let snapshotter = self.snapshotter
            let snapshotStart = clock.now
            let snapshot = try await worker.run { repo in
                try snapshotter.snapshot(repo, commit: target, previous: previous)
            }
            lastSnapshotDuration = clock.now - snapshotStart
            lastGood = snapshot
            return .updated(snapshot)
        } catch let error as SourceError {
            return fail(error)
        } catch let error as GitError {
            return fail(SourceError.from(error, doing: "read \(config.access.redactedURL)"))
        } catch {
            return fail(SourceError(code: .repository, message: "\(error)"))
        }
    }

    private func fail(_ error: SourceError) -> Outcome {
        consecutiveFailures += 1
        lastError = error
        return .failed(error, lastGood: lastGood)
    }

    /// Where the ref points on the remote, with its objects present in the mirror.
    private func fetchTarget() async throws -> (ObjectID, Int) {
        let access = config.access
        let ref = config.ref
        let tracking = GitSource.trackingPrefix
        return try await worker.run { repo -> (ObjectID, Int) in
            let heads = try SourceError.wrap("list references of \(access.redactedURL)") { () throws(GitError) in
                try repo.listRemote(access)
            }
            var target: ObjectID
            var refspec: String
            switch ref {
            case .branch(let b):
                guard let id = heads["refs/heads/\(b)"] else {
                    throw SourceError(code: .refNotFound, message: "branch \(b) does not exist on \(access.redactedURL)")
                }
                target = id
                refspec = "+refs/heads/\(b):\(tracking)heads/\(b)"
            case .tag(let t):
                guard let id = heads["refs/tags/\(t)^{}"] ?? heads["refs/tags/\(t)"] else {
                    throw SourceError(code: .refNotFound, message: "tag \(t) does not exist on \(access.redactedURL)")
                }
                target = id
                refspec = "+refs/tags/\(t):\(tracking)tags/\(t)"
            case .commit(let c):
                target = c
                refspec = "+refs/heads/*:\(tracking)heads/*"
            }
            var received = 0
            if !repo.contains(target) {
                received = try SourceError.wrap("fetch \(ref) from \(access.redactedURL)") { () throws(GitError) in
                    try repo.fetch(access, refspecs: [refspec]).receivedObjects
                }
            }
            if case .tag = ref, let peeled = try? repo.resolveCommit(target.hex) { target = peeled }
            guard repo.contains(target), (try? repo.commitInfo(target)) != nil else {
                throw SourceError(code: .refNotFound, message: "\(ref) is not a commit reachable from the branches of \(access.redactedURL)")
            }
            return (target, received)
        }
    }

    /// Reads the mirror (history, notes) on the source's Git thread.
    public func withRepository<T: Sendable>(_ body: @escaping @Sendable (Repository) throws -> T) async throws -> T {
        try await worker.run(body)
    }

    /// Polls until cancelled: every `interval` (±10% jitter) after success, with backoff from `backoff` doubling
    /// to `backoffCap` after failures; `trigger` (webhooks, hooks) wakes it at once. Each outcome goes to `onOutcome`.
    public func run(interval: Duration, backoff: Duration = .seconds(5), backoffCap: Duration = .seconds(300),
                    trigger: AsyncStream<Void>, onOutcome: @Sendable (Outcome) async -> Void) async {
        let wake = WakeSignal()
        let listener = Task {
            for await _ in trigger { await wake.signal() }
        }
        defer { listener.cancel() }
        while !Task.isCancelled {
            await onOutcome(await poll())
            let delay = consecutiveFailures == 0
                ? interval * Double.random(in: 0.9...1.1)
                : min(backoffCap, backoff * Int(pow(2.0, Double(min(consecutiveFailures - 1, 20)))))
            await wake.wait(upTo: delay)
        }
    }
}
