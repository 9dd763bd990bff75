import Hummingbird
import Logging
import ServiceLifecycle

/// The daemon's poll and control loops as one service: a graceful shutdown ends both, then leaves the
/// workloads running (or stops them, with `stopWorkloadsOnExit`) and flushes the status.
struct DaemonService: Service {
    let daemon: Daemon

    func run() async throws {
        // The node registers before the first commit is applied, so that its pods are placed at once.
        await daemon.plane.startFollowing()
        await daemon.feed.start()
        await daemon.heartbeat()
        await daemon.step()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await daemon.runLeadership() }
                group.addTask { await daemon.runSource() }
                group.addTask { await daemon.runLoop() }
                group.addTask { await daemon.runCompaction() }
                group.addTask { await daemon.runHeartbeat() }
                await group.waitForAll()
            }
        }
        // Not cancelled with the loops: stopping pods waits for their grace periods.
        await Task { await daemon.shutDown() }.value
    }
}

extension Daemon {
    /// The HTTP server and the daemon, for one ServiceGroup; the server stops last.
    public func services() -> [any Service] {
        let app = Application(router: APIServer.router(daemon: self),
                              configuration: .init(address: .hostname(config.listenHost, port: config.listenPort), serverName: "berth"),
                              logger: logger)
        return [app, DaemonService(daemon: self)]
    }
}
