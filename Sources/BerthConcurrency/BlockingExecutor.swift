import Dispatch

/// The executor of an actor whose methods block for long: they wait on subprocesses (`ip`, `nft`, the
/// runtime) or fetch and push through libgit2. Swift's cooperative pool has one thread per core (two
/// here), so one such actor on it stalls every other task of the process: the etcd client's calls and
/// the leader lease's renewals with them. Each actor gets a serial dispatch queue of its own, whose thread
/// is outside that pool. Not for actors called often and briefly: each call then crosses threads (the
/// embedded store, whose fsyncs are short, took 1.7× as long per controller pass on one).
public final class BlockingExecutor: SerialExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: "berth." + label)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
