import ArgumentParser
import BerthDaemon
import BerthHTTP
import Foundation
import Logging
import ServiceLifecycle

/// `berth run`: the daemon, all in one process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: follow the repository, run its workloads on this machine, write their status to Git (root).")

    @OptionGroup var common: CommonFlags
    @OptionGroup var control: ControlFlags
    @OptionGroup var node: NodeFlags

    func run() async throws {
        let logger = common.logger()
        try CommonFlags.requireRoot("run")
        let sourceConfig = try control.sourceConfig(stateDir: common.stateDir)
        var config = DaemonConfig(source: sourceConfig, node: try node.nodeConfig(stateDir: common.stateDir, logger: logger),
                                  token: try control.token(stateDir: common.stateDir))
        try control.apply(to: &config)
        config.requestedPodCIDR = node.podCIDR ?? "10.244.0.0/24"
        config.stopWorkloadsOnExit = node.stopWorkloadsOnExit

        let daemon = try await Daemon(config: config, logger: logger)
        logger.info("berth \(config.name): API on http://\(control.listen), following \(sourceConfig.access.redactedURL) \(sourceConfig.ref), state in \(common.stateDir)")
        let group = ServiceGroup(configuration: .init(services: [APIServer.service(for: daemon, logger: logger)] + (await daemon.services()),
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
