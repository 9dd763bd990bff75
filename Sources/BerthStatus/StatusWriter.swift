import BerthConcurrency
import BerthGit
import BerthModel
import Foundation

public struct StatusConfig: Sendable {
    public var branch = "berth/status"
    public var notesRef = "refs/notes/berth"
    public var author = Signature.berth
    /// Changes within this window make one commit.
    public var coalesceWindow: Duration = .seconds(2)
    /// Push attempts per flush; between them the writer fetches, rebuilds on the new tip and backs off.
    public var maxPushAttempts = 6
    public var initialBackoff: Duration = .milliseconds(100)

    public init() {}
}

/// Why the status could not be written. Nothing is lost: the next flush tries again.
public struct StatusError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var cause: GitError?
    public var description: String { message }
}

/// The one writer of the status branch and the notes. It commits only when the rendered tree differs
/// from the branch tip, coalesces changes, never force-pushes, and on a non-fast-forward fetches the
/// remote tip, re-creates its commit on top of it, and tries again with backoff.
public actor StatusWriter {
    /// Its work blocks: it runs on a queue of its own, off the cooperative pool (see `BlockingExecutor`).
    private let executor = BlockingExecutor(label: "status-writer")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public struct FlushResult: Sendable, Equatable {
        /// The status commit pushed, nil when the tree was already what the branch holds.
        public var commit: ObjectID?
        public var notesWritten: Int
        public var attempts: Int
    }

    let config: StatusConfig
    let access: RemoteAccess
    let worker: GitWorker
    private var pending: ClusterStatus?
    private var pendingNotes: [ObjectID: String] = [:]
    private var lastPushedTree: ObjectID?
    private var flushTask: Task<Void, Never>?
    public private(set) var lastError: StatusError?
    public private(set) var commitsMade = 0
    /// Pushes refused (non-fast-forward) and tried again on the new tip.
    public private(set) var pushRetries = 0

    var statusRef: String { "refs/heads/" + config.branch }
    static let remoteStatusRef = "refs/berth/status-remote"
    static let remoteNotesRef = "refs/berth/notes-remote"

    /// `repositoryPath` is a bare repository (the source mirror) used to build commits before pushing.
    public init(repositoryPath: String, access: RemoteAccess, config: StatusConfig = StatusConfig()) throws {
        self.config = config
        self.access = access
        do {
            worker = try GitWorker(path: repositoryPath, label: "status")
        } catch {
            throw StatusError(message: "cannot open \(repositoryPath): \(error.message)", cause: error)
        }
    }

    /// Records the status to write; it is written after the coalescing window.
    public func update(_ status: ClusterStatus) {
        pending = status
        scheduleFlush()
    }

    /// Records the outcome of a source commit as a note under the notes ref.
    public func note(on commit: ObjectID, _ text: String) {
        pendingNotes[commit] = text
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard flushTask == nil else { return }
        let window = config.coalesceWindow
        flushTask = Task {
            try? await Task.sleep(for: window)
            await self.flushScheduled()
        }
    }

    private func flushScheduled() async {
        flushTask = nil
        do {
            _ = try await flush()
        } catch let e as StatusError {
            lastError = e
        } catch {
            lastError = StatusError(message: "\(error)")
        }
    }

    private var flushing = false
    private var flushWaiters: [CheckedContinuation<Void, Never>] = []

    /// Writes what is pending now. Throws when every push attempt was refused; the pending state is kept.
    /// Flushes run one at a time: a scheduled flush and an explicit one must not race each other.
    @discardableResult
    public func flush() async throws -> FlushResult {
        while flushing { await withCheckedContinuation { flushWaiters.append($0) } }
        flushing = true
        defer {
            flushing = false
            if !flushWaiters.isEmpty { flushWaiters.removeFirst().resume() }
        }
        return try await flushExclusive()
    }

    private func flushExclusive() async throws -> FlushResult {
        let status = pending
        let notes = pendingNotes
        var result = FlushResult(commit: nil, notesWritten: 0, attempts: 0)
        guard status != nil || !notes.isEmpty else { return result }
        let files = status.map(StatusTree.files)
        let tree: ObjectID? = try await run("write the status tree") { repo in try files.map { try repo.writeTree($0) } }
        if let tree, tree == lastPushedTree, notes.isEmpty {
            pending = nil
            return result
        }
        var delay = config.initialBackoff
        for attempt in 1...config.maxPushAttempts {
            result.attempts = attempt
            let outcome = try await attemptPush(tree: tree, status: status, notes: notes)
            if outcome.rejected.isEmpty {
                result.commit = outcome.commit
                result.notesWritten = notes.count
                if outcome.commit != nil { commitsMade += 1 }
                if let tree { lastPushedTree = tree }
                if pending == status { pending = nil }
                for (k, v) in notes where pendingNotes[k] == v { pendingNotes[k] = nil }
                lastError = nil
                return result
            }
            if attempt < config.maxPushAttempts {
                pushRetries += 1
                try? await Task.sleep(for: delay * Double.random(in: 0.5...1.5))
                delay *= 2
            } else {
                let refs = outcome.rejected.map { "\($0.key) (\($0.value))" }.sorted().joined(separator: ", ")
                throw StatusError(message: "push of status to \(access.redactedURL) refused \(attempt) times: \(refs)")
            }
        }
        return result
    }

    struct Attempt: Sendable {
        var commit: ObjectID?
        var rejected: [String: String]
    }

    /// One round: fetch the remote tips, commit on top if the tree differs, re-apply notes, push.
    private func attemptPush(tree: ObjectID?, status: ClusterStatus?, notes: [ObjectID: String]) async throws -> Attempt {
        let access = self.access, config = self.config, statusRef = self.statusRef
        return try await run("push status to \(access.redactedURL)") { repo in
            let heads = try repo.listRemote(access)
            var specs: [String] = []
            if heads[statusRef] != nil { specs.append("+\(statusRef):\(StatusWriter.remoteStatusRef)") } else {
                try repo.deleteReference(StatusWriter.remoteStatusRef)
            }
            if heads[config.notesRef] != nil { specs.append("+\(config.notesRef):\(StatusWriter.remoteNotesRef)") } else {
                try repo.deleteReference(StatusWriter.remoteNotesRef)
            }
            if !specs.isEmpty { try repo.fetch(access, refspecs: specs) }
            var attempt = Attempt(commit: nil, rejected: [:])
            var pushSpecs: [String] = []
            if let tree, let status {
                let tip = repo.commit(ofReference: StatusWriter.remoteStatusRef)
                let tipTree = try tip.map { try repo.commitInfo($0).tree }
                if tipTree != tree {
                    let changes = try repo.changedPaths(from: tipTree, to: tree)
                    let message = StatusMessage.commitMessage(status, changes: changes)
                    let commit = try repo.createCommit(tree: tree, parents: tip.map { [$0] } ?? [], message: message,
                                                       author: config.author, committer: config.author)
                    try repo.setReference(statusRef, to: commit, message: "berth status")
                    attempt.commit = commit
                    pushSpecs.append("\(statusRef):\(statusRef)")
                }
            }
            if !notes.isEmpty {
                // Notes go on top of the remote's notes so that nobody's note is lost.
                if let remoteNotes = repo.commit(ofReference: StatusWriter.remoteNotesRef) {
                    try repo.setReference(config.notesRef, to: remoteNotes, message: "berth notes")
                } else {
                    try repo.deleteReference(config.notesRef)
                }
                for (target, text) in notes.sorted(by: { $0.key < $1.key }) where repo.contains(target) {
                    try repo.setNote(on: target, ref: config.notesRef, message: text, author: config.author)
                }
                pushSpecs.append("\(config.notesRef):\(config.notesRef)")
            }
            for spec in pushSpecs {
                attempt.rejected.merge(try repo.push(access, refspecs: [spec])) { a, _ in a }
            }
            return attempt
        }
    }

    private func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Repository) throws -> T) async throws -> T {
        do {
            return try await worker.run(body)
        } catch let e as GitError {
            throw StatusError(message: "\(what): \(e.message)", cause: e)
        }
    }
}
