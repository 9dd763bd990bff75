import BerthModel
import BerthRuntime
import BerthYAML
import Foundation
import Synchronization

/// The node's pulls: one at a time per image however many pods want it, run in the background and asked
/// about from the agent's loop without waiting.
public final class ImagePuller: Sendable {
    public enum Status: Sendable, Equatable {
        /// Since when, and how far it has come.
        case pulling(since: Double, progress: PullProgress?)
        case ready(ImageRecord)
        case failed(String)
    }

    struct Job {
        var startedAt: Double
        var finishedAt: Double?
        var progress: PullProgress?
        var loggedAt: Double
        var result: Result<ImageRecord, PullError>?
    }

    public let store: ImageStore
    public let client: RegistryClient
    private let log: @Sendable (String) -> Void
    private let finished: @Sendable () -> Void
    private let jobs = Mutex<[String: Job]>([:])

    public init(store: ImageStore, options: RegistryOptions, log: @escaping @Sendable (String) -> Void = { _ in },
                finished: @escaping @Sendable () -> Void = {}) {
        self.store = store
        store.removeLeftovers()
        client = RegistryClient(options: options)
        self.log = log
        self.finished = finished
    }

    static var now: Double { Date().timeIntervalSince1970 }

    /// The pull of `ref` that finished at or after `since` (the moment the caller first asked), or the
    /// one under way; starts one when there is neither.
    public func request(_ ref: ImageReference, credentials: @autoclosure () -> [String: RegistryCredential], since: Double) -> Status {
        let key = ref.description
        let now = ImagePuller.now
        let (status, start) = jobs.withLock { jobs -> (Status, Bool) in
            if let j = jobs[key] {
                guard let finished = j.finishedAt else { return (.pulling(since: j.startedAt, progress: j.progress), false) }
                if finished >= since, let result = j.result {
                    switch result {
                    case .success(let r): return (.ready(r), false)
                    case .failure(let e): return (.failed(e.message), false)
                    }
                }
            }
            // Finished pulls are forgotten after a while; a newer request starts afresh.
            jobs = jobs.filter { $0.value.finishedAt.map { now - $0 < 600 } ?? true }
            jobs[key] = Job(startedAt: now, loggedAt: now)
            return (.pulling(since: now, progress: nil), true)
        }
        if start {
            let credentials = credentials()
            Task { await self.run(ref, credentials: credentials, key: key) }
        }
        return status
    }

    private func run(_ ref: ImageReference, credentials: [String: RegistryCredential], key: String) async {
        let result: Result<ImageRecord, PullError>
        do {
            let r = try await store.pull(ref, client: client, credentials: credentials) { [self] p in
                let now = ImagePuller.now
                let report = self.jobs.withLock { jobs -> Bool in
                    jobs[key]?.progress = p
                    // The daemon's log hears of pulls that take more than a few seconds, every few seconds.
                    guard let j = jobs[key], now - j.loggedAt >= 5 else { return false }
                    jobs[key]?.loggedAt = now
                    return true
                }
                if report { self.log("pulling \(key): \(p.description)") }
            }
            result = .success(r)
        } catch let e as PullError {
            result = .failure(e)
        } catch {
            result = .failure(PullError("\(error)"))
        }
        let now = ImagePuller.now
        let started = jobs.withLock { jobs -> Double in
            jobs[key]?.finishedAt = now
            jobs[key]?.result = result
            return jobs[key]?.startedAt ?? now
        }
        finished()
        switch result {
        case .success(let r) where now - started >= 3:
            log("pulled \(key) (\(r.imageID), \(r.size) bytes) in \(String(format: "%.1f", now - started)) s")
        case .failure(let e):
            log("pulling \(key) failed: \(e.message)")
        default: break
        }
    }

    public func shutdown() async { await client.shutdown() }
}
