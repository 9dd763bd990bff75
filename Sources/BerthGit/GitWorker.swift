import Dispatch

/// Owns a repository handle and runs every libgit2 call on one serial queue: calls block (network),
/// so they stay off Swift's cooperative pool, and the repository is never used by two threads at once.
public final class GitWorker: @unchecked Sendable {
    private let queue: DispatchQueue
    private let repository: Repository

    public init(path: String, label: String) throws(GitError) {
        repository = try Repository.openOrInitBare(at: path)
        queue = DispatchQueue(label: "berth.git.\(label)")
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable (Repository) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [repository] in
                continuation.resume(with: Result { try body(repository) })
            }
        }
    }
}
