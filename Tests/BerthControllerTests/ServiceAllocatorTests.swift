import BerthCluster
@testable import BerthController
import BerthModel
import BerthStore
import Foundation
import Testing

@Suite struct ServiceAllocatorTests {
    func service(_ name: String, clusterIP: String? = nil, nodePort: Bool = false, ports: [Int] = [80]) -> Service {
        var s = Service()
        s.metadata = ObjectMeta(name: name, namespace: "default")
        s.selector = ["app": name]
        s.clusterIP = clusterIP
        if nodePort { s.type = .nodePort }
        s.ports = ports.map { n in
            var p = Service.Port()
            p.port = n
            return p
        }
        return s
    }

    @Test func addressesAreKeptAskedForAndRefusedWithAReason() throws {
        let range = try #require(CIDR("10.96.0.0/29"))
        var records = ServiceAllocator.allocate([service("a"), service("b", nodePort: true, ports: [80, 443])], previous: [:], range: range)
        // .1 is the API's.
        #expect(records["default/a"]?.clusterIP == "10.96.0.2" && records["default/b"]?.clusterIP == "10.96.0.3")
        #expect(records["default/b"]?.nodePorts == ["80/TCP": 30000, "443/TCP": 30001])
        // a goes, c comes and asks for b's address: refused; d is headless; b keeps what it had.
        records = ServiceAllocator.allocate([service("b", nodePort: true, ports: [80, 443]), service("c", clusterIP: "10.96.0.3"),
                                             service("d", clusterIP: "None"), service("e", clusterIP: "10.1.0.1")],
                                            previous: records, range: range)
        #expect(records["default/a"] == nil)
        #expect(records["default/b"]?.clusterIP == "10.96.0.3" && records["default/b"]?.nodePorts["443/TCP"] == 30001)
        #expect(records["default/c"]?.clusterIP == nil && records["default/c"]?.error == "spec.clusterIP 10.96.0.3 is not a free address of 10.96.0.0/29")
        #expect(records["default/d"]?.clusterIP == nil && records["default/d"]?.error == nil)
        #expect(records["default/e"]?.error?.contains("not a free address") == true)
        // The range (.2–.6) runs out.
        let many = (0..<6).map { service("s\($0)") }
        let full = ServiceAllocator.allocate(many, previous: [:], range: range)
        #expect(full.values.filter { $0.clusterIP != nil }.count == 5)
        #expect(full["default/s5"]?.error == "no free address left in 10.96.0.0/29")
    }

    /// What nodes need of a commit is in the store, Services with their addresses, and it goes with the commit.
    @Test func theControlPlaneStoresWhatNodesNeed() async throws {
        try await withControlPlane { cp, store, _, _ in
            try await cp.apply(state([BerthControllerTests.service(), configMap("settings")]))
            let records = await store.list(prefix: ClusterKey.configs.path).values
            #expect(records.map(\.key) == ["config/default/ConfigMap/settings", "config/default/Service/web"])
            let web = try JSONDecoder().decode(ConfigRecord.self, from: Data(records[1].value))
            guard case .service(let r) = web else {
                Issue.record("not a service record: \(web)")
                return
            }
            #expect(r.clusterIP == "10.96.0.2")
            #expect(await cp.service(ObjectKey(kind: .service, namespace: "default", name: "web"))?.clusterIP == "10.96.0.2")
            // A restarted control plane keeps the address.
            let again = try await ControlPlane(store: store, clock: { 0 })
            try await again.apply(state([BerthControllerTests.service(), BerthControllerTests.service("api")]))
            #expect(await again.service(ObjectKey(kind: .service, namespace: "default", name: "web"))?.clusterIP == "10.96.0.2")
            #expect(await again.service(ObjectKey(kind: .service, namespace: "default", name: "api"))?.clusterIP == "10.96.0.3")
            #expect(await store.get("config/default/ConfigMap/settings") == nil)
        }
    }

    /// Endpoints carry each pod's port per Service port, as Kubernetes resolves targetPort: a number as
    /// given, none meaning the Service port, a name through the containers' ports of the same protocol.
    @Test func endpointsResolveTargetPortsPerPod() {
        var s = service("web", ports: [80, 443, 53, 9000])
        s.ports[1].targetPort = .string("https")
        s.ports[2].targetPort = .string("dns")
        s.ports[2].protocol = .udp
        s.ports[3].targetPort = .string("absent")
        var c = Container()
        var https = ContainerPort()
        https.name = "https"
        https.containerPort = 8443
        var dnsTCP = ContainerPort()
        dnsTCP.name = "dns"
        dnsTCP.containerPort = 5353
        var dnsUDP = dnsTCP
        dnsUDP.containerPort = 5354
        dnsUDP.protocol = .udp
        c.ports = [https, dnsTCP, dnsUDP]
        var spec = PodSpec()
        spec.containers = [c]
        #expect(EndpointsRecord.targetPorts(of: s, in: spec) == ["80/TCP": 80, "443/TCP": 8443, "53/UDP": 5354])
    }
}

@Suite struct PodCIDRAllocatorTests {
    func node(_ name: String, asks: String? = nil) -> NodeRecord {
        NodeRecord(name: name, allocatable: .init(cpuMilli: 1000, memory: 1 << 30, pods: 10), requestedPodCIDR: asks)
    }

    /// A /24 per node from the cluster range, kept while the node is there; a request honoured when it
    /// overlaps nothing; a full range says so; a node gone frees its network.
    @Test func nodesGetKeepAndFreeTheirNetworks() throws {
        let range = try #require(CIDR("10.244.0.0/23")), services = try #require(CIDR("10.96.0.0/16"))
        var records = PodCIDRAllocator.allocate([node("b"), node("a", asks: "10.244.1.0/24")], previous: [:], range: range, serviceRange: services)
        #expect(records["a"] == PodCIDRRecord(node: "a", cidr: "10.244.1.0/24"))
        #expect(records["b"] == PodCIDRRecord(node: "b", cidr: "10.244.0.0/24"))
        // c finds the range full; d asks for what overlaps b's, or the Services', or is no network.
        records = PodCIDRAllocator.allocate([node("a"), node("b"), node("c"), node("d", asks: "10.244.0.128/25"), node("e", asks: "10.96.5.0/24"),
                                             node("f", asks: "10.244.7.1/24")], previous: records, range: range, serviceRange: services)
        #expect(records["a"]?.cidr == "10.244.1.0/24" && records["b"]?.cidr == "10.244.0.0/24")
        #expect(records["c"] == PodCIDRRecord(node: "c", error: "no /24 of the cluster CIDR 10.244.0.0/23 is free for node c"))
        #expect(records["d"]?.error == "the pod CIDR 10.244.0.128/25 that node d asks for overlaps 10.244.0.0/24")
        #expect(records["e"]?.error == "the pod CIDR 10.96.5.0/24 that node e asks for overlaps 10.96.0.0/16")
        #expect(records["f"]?.error == "the pod CIDR 10.244.7.1/24 that node f asks for is not an IPv4 network such as 10.244.0.0/24")
        // b leaves: c gets its network; a asking for another keeps its own, and is told.
        records = PodCIDRAllocator.allocate([node("a", asks: "10.244.0.0/24"), node("c")], previous: records, range: range, serviceRange: services)
        #expect(records["c"]?.cidr == "10.244.0.0/24")
        #expect(records["a"]?.cidr == "10.244.1.0/24" && records["a"]?.error?.contains("keeps its pod CIDR") == true)
        #expect(records["b"] == nil)
    }
}
