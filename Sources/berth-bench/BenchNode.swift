import BerthCluster
import ArgumentParser
import BerthLinux
import BerthModel
import BerthNode
import Foundation

extension BenchCommand {
    /// Starts N busybox pods on one node agent (its pod network in a network namespace made for the
    /// benchmark) and times them to Running; then compares wrk through a ClusterIP with wrk to the pod IP.
    struct NodeBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "node",
            abstract: "Benchmark the node agent: N pods to Running, agent memory, and a Service against a pod IP (root).")

        @Option(help: "Pods to start.")
        var pods = 100

        @Option(help: "Seconds of wrk per target.")
        var seconds = 5

        func run() async throws {
            let exe = BenchCommand.binaryDirectory
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-node-\(getpid())").path
            let netns = "berth-bench-\(getpid())"
            _ = try Subprocess.run(["/usr/sbin/ip", "netns", "add", netns])
            _ = try Subprocess.run(["/usr/sbin/ip", "-n", netns, "link", "set", "lo", "up"])
            var config = NodeConfig(nodeName: "bench", shimBinary: exe + "/berth-shim", initBinary: exe + "/berth-init")
            config.stateDir = dir + "/state"
            config.runDir = dir + "/run"
            config.bridge = "bb\(getpid() % 100000)"
            config.networkNamespace = "/run/netns/" + netns
            config.podCIDR = "10.244.0.0/24"
            let agent = try NodeAgent(config: config)
            defer {
                _ = try? Subprocess.run(["/usr/sbin/ip", "netns", "del", netns])
                try? FileManager.default.removeItem(atPath: dir)
            }
            let baseline = rssMiB(getpid())
            var list: [Pod] = []
            for i in 0..<pods {
                var p = Pod()
                p.metadata = ObjectMeta(name: "p\(i)", namespace: "default", labels: ["app": i == 0 ? "web" : "idle"])
                var c = Container()
                c.name = "main"
                c.image = "host"
                c.command = i == 0 ? ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"] : ["/bin/sleep", "100000"]
                p.spec.containers = [c]
                p.spec.terminationGracePeriodSeconds = 1
                list.append(p)
            }
            var svc = Service()
            svc.metadata = ObjectMeta(name: "web", namespace: "default")
            svc.selector = ["app": "web"]
            var port = Service.Port()
            port.port = 80
            port.targetPort = .int(8080)
            svc.ports = [port]
            let start = Date()
            await agent.update(pods: list, view: ClusterView(services: [ServiceRecord(service: svc, clusterIP: "10.96.0.10")]))
            let loop = Task { await agent.run(interval: 0.05) }
            var running = 0
            while Date().timeIntervalSince(start) < 120 {
                running = await agent.statuses().values.filter { $0.phase == .running }.count
                if running == pods { break }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            let elapsed = Date().timeIntervalSince(start)
            let withPods = rssMiB(getpid())
            print(String(format: "%d of %d pods Running in %.2f s", running, pods, elapsed))
            print(String(format: "agent RSS: %.0f MiB before, %.0f MiB with the pods (%.2f MiB per pod)", baseline, withPods, (withPods - baseline) / Double(pods)))
            let podIP = await agent.status(namespace: "default", name: "p0")?.podIP ?? ""
            // The endpoints the control plane would store for the one web pod.
            let backend = EndpointsRecord.Address(pod: "p0", ip: podIP, node: "bench", ports: EndpointsRecord.targetPorts(of: svc, in: list[0].spec))
            await agent.update(pods: list, view: ClusterView(services: [ServiceRecord(service: svc, clusterIP: "10.96.0.10")],
                                                             endpoints: [EndpointsRecord(namespace: "default", name: "web", addresses: [backend])]))
            let vip = await agent.clusterIP(of: "default/web") ?? ""
            while await agent.endpoints(of: "default/web").isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            // The next pass of the loop writes the table.
            try await Task.sleep(for: .milliseconds(200))
            func wrk(_ url: String) throws -> Double {
                let r = try Subprocess.run(["/usr/sbin/ip", "netns", "exec", netns, "/usr/bin/wrk", "-t", "2", "-c", "16", "-d", "\(seconds)s", url], timeout: Double(seconds + 30))
                let line = r.output.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") } ?? ""
                return Double(line.split(separator: " ").last ?? "0") ?? 0
            }
            let direct = try wrk("http://\(podIP):8080/hostname")
            let service = try wrk("http://\(vip):80/hostname")
            print(String(format: "wrk to the pod IP %@: %.0f req/s; through ClusterIP %@: %.0f req/s (%.1f%%)", podIP, direct, vip, service, direct > 0 ? service / direct * 100 : 0))
            loop.cancel()
            await agent.stopAll(timeout: 60)
        }
    }
}
