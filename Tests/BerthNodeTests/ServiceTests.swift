import BerthCluster
import BerthLinux
import BerthModel
import BerthNode
import Foundation
import Testing

extension NodeAgentTests {
    @Suite struct ServiceTests {
        static func web(_ i: Int) -> Pod {
            var p = pod("web-\(i)", labels: ["app": "web"],
                        container("httpd", "echo $POD_NAME > /www/index.html; touch /www/ready; exec busybox httpd -f -p 8080 -h /www"))
            var www = Volume()
            www.name = "www"
            p.spec.volumes = [www]
            p.spec.containers[0].volumeMounts = [mount("www", "/www")]
            p.spec.containers[0].env = [env("POD_NAME", .fieldRef(fieldPath: "metadata.name"))]
            var port = ContainerPort()
            port.name = "http"
            port.containerPort = 8080
            p.spec.containers[0].ports = [port]
            p.spec.containers[0].readinessProbe = execProbe("test -f /www/ready")
            // TCP and HTTP probes from the pod's network namespace: the pod is never ready, or restarts, if they fail.
            var startup = Probe()
            startup.handler = .tcpSocket(port: .string("http"), host: nil)
            startup.periodSeconds = 1
            startup.failureThreshold = 30
            p.spec.containers[0].startupProbe = startup
            var live = HTTPGetAction()
            live.path = "/index.html"
            live.port = .int(8080)
            var liveness = Probe()
            liveness.handler = .httpGet(live)
            liveness.periodSeconds = 1
            liveness.failureThreshold = 1
            p.spec.containers[0].livenessProbe = liveness
            return p
        }

        static var service: Service {
            var s = Service()
            s.metadata = ObjectMeta(name: "web", namespace: "default")
            s.selector = ["app": "web"]
            var port = Service.Port()
            port.port = 80
            port.targetPort = .string("http")
            s.ports = [port]
            return s
        }

        /// A Service over three busybox httpd replicas, with the endpoints the control plane would store
        /// once they run (the named targetPort resolved): requests to its ClusterIP from the node and from
        /// another pod reach every replica; a replica failing readiness leaves at once, before any new record,
        /// and comes back; with no ready endpoint the ClusterIP refuses at once.
        @Test func clusterIPBalancesOverReadyReplicas() async throws {
            try await NodeHarness.with { h, agent in
                let client = pod("client", container("sh", "exec sleep 1000"))
                let pods = (1...3).map(Self.web) + [client]
                let service = ServiceRecord(service: Self.service, clusterIP: "10.96.0.7")
                await agent.update(pods: pods, view: ClusterView(services: [service]))
                var addresses: [EndpointsRecord.Address] = []
                try await NodeHarness.eventually("three replicas ready") {
                    addresses = []
                    for p in pods.prefix(3) {
                        guard let s = await agent.status(namespace: "default", name: p.metadata.name), s.ready, let ip = s.podIP else { return false }
                        addresses.append(.init(pod: p.metadata.name, ip: ip, node: "node-1", ports: EndpointsRecord.targetPorts(of: Self.service, in: p.spec)))
                    }
                    return true
                }
                #expect(addresses[0].ports == ["80/TCP": 8080])
                let stored = EndpointsRecord(namespace: "default", name: "web", addresses: addresses)
                await agent.update(pods: pods, view: ClusterView(services: [service], endpoints: [stored]))
                try await NodeHarness.eventually("three endpoints") { await agent.endpoints(of: "default/web").count == 3 }
                let vip = try #require(await agent.clusterIP(of: "default/web"))
                #expect(vip == "10.96.0.7")
                try await NodeHarness.eventually("the client runs") { await agent.status(namespace: "default", name: "client")?.ready == true }

                var fromNode = Set<String>(), fromPod = Set<String>()
                for _ in 0..<30 {
                    let r = try h.inNode("curl", "-sS", "-m", "2", "http://\(vip)/")
                    #expect(r.status == 0, "\(r.output)")
                    fromNode.insert(r.output.trimmingCharacters(in: .whitespacesAndNewlines))
                    let p = try await agent.exec(namespace: "default", name: "client", container: "sh", ["curl", "-sS", "-m", "2", "http://web/"])
                    #expect(p.status == 0, "\(p.output)")
                    fromPod.insert(p.output.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                #expect(fromNode == ["web-1", "web-2", "web-3"])
                #expect(fromPod == ["web-1", "web-2", "web-3"])
                // The Service's variables reach containers started after it.
                let envOut = try await agent.exec(namespace: "default", name: "client", container: "sh", ["cat", "/etc/hosts"])
                #expect(envOut.output.contains("\(vip)\tweb web.default web.default.svc web.default.svc.cluster.local"))

                // Readiness: web-2 leaves the endpoints, and comes back.
                _ = try await agent.exec(namespace: "default", name: "web-2", container: "httpd", ["rm", "/www/ready"])
                try await NodeHarness.eventually("web-2 leaves", timeout: 5) { await agent.endpoints(of: "default/web").count == 2 }
                for _ in 0..<10 {
                    let r = try h.inNode("curl", "-sS", "-m", "2", "http://\(vip)/")
                    #expect(r.output.trimmingCharacters(in: .whitespacesAndNewlines) != "web-2")
                }
                _ = try await agent.exec(namespace: "default", name: "web-2", container: "httpd", ["touch", "/www/ready"])
                try await NodeHarness.eventually("web-2 returns", timeout: 5) { await agent.endpoints(of: "default/web").count == 3 }

                for i in 1...3 { #expect(await agent.status(namespace: "default", name: "web-\(i)")?.restarts == 0) }

                // A replica goes whose link to the bridge has the lowest MAC (made so here). A bridge left to itself
                // takes its ports' lowest MAC and changes it when that port goes; the other replicas, which
                // still hold the old one for the node, would then send their answers nowhere for seconds.
                let bridge = h.config.bridge
                func mac(_ link: String) throws -> String {
                    let shown = try h.inNode("ip", "-o", "link", "show", "dev", link).output
                    return String(shown.split(separator: " ").drop { $0 != "link/ether" }.dropFirst().first ?? "")
                }
                let web1 = try #require(addresses.first { $0.pod == "web-1" })
                let podMAC = String(try h.inNode("ip", "neigh", "show", web1.ip).output.split(separator: " ").drop { $0 != "lladdr" }.dropFirst().first ?? "")
                let fdb = try h.inNode("bridge", "fdb", "show", "br", bridge).output.split(separator: "\n")
                let port = try #require(fdb.first { $0.hasPrefix(podMAC + " dev ") }?.split(separator: " ")[2], "web-1's port in \(fdb)")
                #expect(try h.inNode("ip", "link", "set", "dev", String(port), "address", "02:00:00:00:00:01").status == 0)
                let bridgeMAC = try mac(bridge)
                for _ in 0..<10 { _ = try h.inNode("curl", "-sS", "-m", "2", "http://\(vip)/") }
                let rest = addresses.filter { $0.pod != "web-1" }
                await agent.update(pods: Array(pods.dropFirst()), view: ClusterView(services: [service], endpoints: [EndpointsRecord(namespace: "default", name: "web", addresses: rest)]))
                try await NodeHarness.eventually("web-1 gone with its link") {
                    let linkLeft = try h.inNode("ip", "link", "show", "dev", String(port)).status == 0
                    return await agent.status(namespace: "default", name: "web-1") == nil && !linkLeft
                }
                #expect(try mac(bridge) == bridgeMAC)
                for _ in 0..<10 {
                    let r = try h.inNode("curl", "-sS", "-m", "2", "http://\(vip)/")
                    #expect(r.status == 0 && r.output.hasPrefix("web-"), "\(r.output)")
                }

                // No ready endpoint: refused, not hung.
                for i in 2...3 { _ = try await agent.exec(namespace: "default", name: "web-\(i)", container: "httpd", ["rm", "/www/ready"]) }
                try await NodeHarness.eventually("no endpoints", timeout: 5) { await agent.endpoints(of: "default/web").isEmpty }
                let started = Date()
                let refused = try h.inNode("curl", "-sS", "-m", "5", "http://\(vip)/")
                #expect(refused.status != 0)
                #expect(refused.output.contains("Couldn't connect"), "\(refused.output)")
                #expect(Date().timeIntervalSince(started) < 1)
            }
        }
    }
}
