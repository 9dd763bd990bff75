import BerthLinux
import BerthNode
import BerthStore
import ServiceLifecycle

/// The control plane's loop, leadership and compaction as one service: a graceful shutdown ends them,
/// then flushes the status.
struct ControllerService: Service {
    let daemon: Daemon

    func run() async throws {
        let daemon = daemon
        await daemon.startFollowing()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await daemon.runLeadership() }
                group.addTask { await daemon.runLoop() }
                group.addTask { await daemon.runCompaction() }
                await group.waitForAll()
            }
        }
        await daemon.shutDown()
    }
}

/// The Git source: polls (or is woken by a hook or webhook) and hands each outcome to the controllers.
struct SourceService: Service {
    let daemon: Daemon

    func run() async throws {
        // The first commit is applied once this machine's node can take pods, so that they are placed at
        // once rather than after the scheduler's backoff.
        await cancelWhenGracefulShutdown {
            await daemon.waitForTheNode()
            await daemon.runSource()
        }
    }
}

/// This machine's node: a graceful shutdown ends its loop, then leaves the workloads running (or stops
/// them, with `stopWorkloadsOnExit`).
public struct NodeLifecycle: Service {
    let node: NodeService

    public init(node: NodeService) { self.node = node }

    public func run() async throws {
        await node.start()
        await cancelWhenGracefulShutdown { await node.run() }
        // Not cancelled with the loop: stopping pods waits for their grace periods.
        await Task { await node.shutDown() }.value
    }
}

/// The store, closed last: the node's shutdown still writes to it (its lease).
public struct StoreLifecycle: Service {
    let store: any Store

    public init(store: any Store) { self.store = store }

    public func run() async throws {
        try? await gracefulShutdown()
        if let etcd = store as? EtcdStore { await etcd.close() }
        if let remote = store as? NodeAPIStore { await remote.close() }
    }
}

extension Daemon {
    /// The store, this machine's node, the controllers and the source, for one ServiceGroup (after the HTTP
    /// server), which shuts them down in the reverse order: the source first, the store last.
    public func services() -> [any Service] {
        [StoreLifecycle(store: store)] + (node.map { [NodeLifecycle(node: $0)] } ?? []) + [ControllerService(daemon: self), SourceService(daemon: self), MappedPagesService()]
    }
}

/// Lets go of the code pages the process no longer uses, once start-up is over and then every minute
/// (`MappedPages`): an idle process's RSS is then what it runs, not everything it once touched.
public struct MappedPagesService: Service {
    let first: Duration
    let every: Duration

    public init(first: Duration = .seconds(10), every: Duration = .seconds(60)) {
        self.first = first
        self.every = every
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var wait = first
            while (try? await Task.sleep(for: wait)) != nil {
                MappedPages.releaseReadOnlyFileMappings()
                wait = every
            }
        }
    }
}
