import BerthLinux
import BerthModel
import BerthNode
import BerthTestSupport
import Foundation
import Testing

/// The node agent's tests, one at a time: each builds a pod network and many processes, and they share
/// the machine's cgroups and shims.
@Suite(.serialized, .enabled(if: getuid() == 0, "pods need root")) struct NodeAgentTests {}

/// A node agent in a scratch directory whose pod network lives in a network namespace made for the test
/// (no route out), all of it removed at the end, whatever happened.
struct NodeHarness {
    let dir: String
    let netnsName: String
    var config: NodeConfig

    static var binaries: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var d = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 where !FileManager.default.isExecutableFile(atPath: d.appendingPathComponent("berth-shim").path) { d.deleteLastPathComponent() }
        return d.path
    }

    static func with(configure: (inout NodeConfig) -> Void = { _ in }, _ body: (NodeHarness, NodeAgent) async throws -> Void) async throws {
        Orphans.adopt()
        let tag = String(getpid() % 1000) + String(UInt32.random(in: 0..<1000))
        let dir = "/tmp/berth-node-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let netns = "berth-node-\(tag)"
        _ = try? sh("/usr/sbin/ip", "netns", "del", netns)
        try sh("/usr/sbin/ip", "netns", "add", netns)
        // The node's loopback, as on a host: a local reply (a reset from nftables) travels over it.
        try sh("/usr/sbin/ip", "-n", netns, "link", "set", "lo", "up")
        var config = NodeConfig(nodeName: "node-1", shimBinary: binaries + "/berth-shim", initBinary: binaries + "/berth-init")
        config.stateDir = dir + "/state"
        config.runDir = dir + "/run"
        config.bridge = "bt\(tag)"
        config.networkNamespace = "/run/netns/" + netns
        // A node without a control plane: its pod network is given.
        config.podCIDR = "10.244.0.0/24"
        config.backoffInitial = 1
        config.backoffCap = 4
        configure(&config)
        let h = NodeHarness(dir: dir, netnsName: netns, config: config)
        let agent = try NodeAgent(config: config)
        let loop = Task { await agent.run(interval: 0.1) }
        var failure: (any Error)?
        do { try await body(h, agent) } catch { failure = error }
        loop.cancel()
        let uids = (try? FileManager.default.contentsOfDirectory(atPath: config.runDir + "/pods")) ?? []
        await agent.stopAll(timeout: 20)
        await agent.closeRegistries()
        Orphans.reap(named: ["berth-shim"], waiting: true, matching: dir + "/")
        _ = try? sh("/usr/sbin/ip", "netns", "del", netns)
        try? FileManager.default.removeItem(atPath: dir)
        let leftovers = uids.filter { FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/berth/pod-" + $0) }
        #expect(leftovers.isEmpty, "cgroups left behind: \(leftovers)")
        if let failure { throw failure }
    }

    /// Runs a program in the node's network namespace (the host side of the pods).
    func inNode(_ args: String...) throws -> (status: Int32, output: String) {
        try NodeHarness.sh("/usr/sbin/ip", ["netns", "exec", netnsName] + args)
    }

    @discardableResult
    static func sh(_ program: String, _ args: String...) throws -> (status: Int32, output: String) { try sh(program, args) }

    @discardableResult
    static func sh(_ program: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let r = try Subprocess.run([program] + args, timeout: 30)
        return (r.status, r.output)
    }

    /// Waits until `check` holds (polling), failing the test after `timeout` seconds.
    static func eventually(_ what: String, timeout: Double = 20, _ check: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await check() { return }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        throw TestFailure("timed out waiting until \(what)")
    }
}

/// Pods from YAML-free builders: busybox on the host's root.
func pod(_ name: String, labels: [String: String] = [:], restart: RestartPolicy? = nil, _ containers: Container...) -> Pod {
    var p = Pod()
    p.metadata = ObjectMeta(name: name, namespace: "default", labels: labels)
    p.spec.containers = containers
    p.spec.restartPolicy = restart
    p.spec.terminationGracePeriodSeconds = 2
    return p
}

func container(_ name: String, _ script: String) -> Container {
    var c = Container()
    c.name = name
    c.image = "host"
    c.command = ["/bin/sh", "-c", script]
    return c
}

func execProbe(_ command: String, period: Int = 1, failureThreshold: Int = 1) -> Probe {
    var p = Probe()
    p.handler = .exec(command: ["/bin/sh", "-c", command])
    p.periodSeconds = period
    p.failureThreshold = failureThreshold
    return p
}

extension NodeAgent {
    func log(_ pod: String, _ container: String, previous: Bool = false) -> String {
        guard let f = logFile(namespace: "default", name: pod, container: container, previous: previous) else { return "" }
        return (try? String(contentsOfFile: f, encoding: .utf8)) ?? ""
    }
}
