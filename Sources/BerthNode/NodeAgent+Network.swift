import BerthCluster
import BerthLinux
import BerthModel
import Foundation

extension NodeAgent {
    func setUpNetwork() {
        guard let podCIDR else { return }
        do {
            if overlay?.mode == .vxlan {
                guard let local = config.nodeAddress, let underlay = network.mtu(ofLinkWith: local) else {
                    for key in pods.keys { pods[key]?.message = "pod network: VXLAN needs the node's address (--node-ip) on one of its links" }
                    return
                }
                let mtu = underlay - 50
                try network.ensureVXLAN(Self.vxlanDevice, vni: overlay!.vni, port: overlay!.port, local: local, mac: HostNetwork.derivedMAC(local),
                                        mtu: mtu, address: podCIDR.network.description)
                podMTU = mtu
            }
            try network.ensureBridge(config.bridge, address: "\(podCIDR.first)/\(podCIDR.prefix)", mtu: podMTU)
            // Virtual IPs route to the bridge, so they never leave the node even without endpoints.
            try network.run([HostNetwork.ip, "route", "replace", serviceCIDR.description, "dev", config.bridge])
            networkReady = true
        } catch {
            for key in pods.keys { pods[key]?.message = "pod network: \(error)" }
        }
    }

    /// Addresses, endpoints (`serving`, from `servingEndpoints`) and the nftables table of the Services;
    /// the table is replaced only when it would change.
    func syncServices(_ serving: [String: [EndpointsRecord.Address]]) {
        guard networkReady, let podCIDR else { return }
        let ips = view.services.map(\.clusterIP)
        if ips != lastClusterIPs {
            lastClusterIPs = ips
            for p in pods.values where p.sandboxID != nil { try? writeEtc(p) }
        }
        var hostPorts: [(Int, PortProtocol, String, Int)] = []
        for p in pods.values where p.terminatingSince == nil {
            guard let ip = p.ip, p.sandboxID != nil else { continue }
            for c in p.pod.spec.containers { for port in c.ports { if let h = port.hostPort { hostPorts.append((h, port.protocol, ip, port.containerPort)) } } }
        }
        var endpoints: [String: [ServiceProxy.Endpoint]] = [:]
        for (service, addresses) in serving {
            endpoints[service] = addresses.map { ServiceProxy.Endpoint(ip: $0.ip, ports: $0.ports) }
        }
        let rules = ServiceProxy.ruleset(services: view.services, endpoints: endpoints, hostPorts: hostPorts.sorted { $0.0 < $1.0 },
                                  podCIDR: podCIDR, bridge: config.bridge, masquerade: config.masquerade)
        guard rules != appliedRules else { return }
        do {
            try network.replaceTable(family: "inet", name: "berth", body: rules)
            appliedRules = rules
            let before = Set(appliedEndpoints.values.joined())
            appliedEndpoints = serving.mapValues { $0.map(\.ip).sorted() }
            let after = Set(appliedEndpoints.values.joined())
            for (key, p) in pods { if let ip = p.ip, before.contains(ip), !after.contains(ip) { pods[key]?.withdrawnAt = NodeAgent.now } }
            servicesError = nil
        } catch {
            servicesError = "nftables: \(error)"
        }
    }

    /// The endpoints the proxy uses, by Service ("namespace/name"): those the control plane stored, less
    /// this node's pods that turned unready since (they leave at once, before the round trip through the
    /// store). A pod being stopped stays until the stored endpoints drop it, at most `withdrawalWait`
    /// seconds, and is sent SIGTERM only then: the control plane marks it stopping and withdraws it in one
    /// transaction, but the node may see the first before the second, and a Service whose other backends
    /// had not arrived yet would refuse connections meanwhile.
    func servingEndpoints() -> [String: [EndpointsRecord.Address]] {
        let now = NodeAgent.now
        var out: [String: [EndpointsRecord.Address]] = [:]
        for (service, record) in view.endpoints {
            out[service] = record.addresses.filter { a in
                guard a.node == config.nodeName else { return true }
                guard let p = pods[record.namespace + "/" + a.pod], p.ip == a.ip else { return false }
                if let since = p.terminatingSince { return p.killAt == nil && now - since < Self.withdrawalWait }
                return p.status.ready
            }
        }
        return out
    }

    static let withdrawalWait = 2.0
    /// How long a pod withdrawn from Services keeps serving when other nodes route to it: they apply the
    /// withdrawal from the servers' watch after this node, by tens of milliseconds and by over a second
    /// under load (a 1 s wait once failed a request of a drain in the full test suite).
    static let endpointPropagation = 2.0

    /// How pods reach other nodes, as the servers chose it; taken before the pod network is set up.
    public func configure(network settings: NetworkSettingsRecord?) {
        guard !networkReady else { return }
        overlay = settings
    }

    static let vxlanDevice = "berth.vxlan"

    /// Routes each other node's pod CIDR to that node (`routes`: CIDR → address), and removes those of
    /// nodes gone: pods reach pods on any node, and Services their backends there. Routed: via the node's
    /// address. VXLAN: via the overlay, with the peer's neighbour and forwarding entries.
    public func route(to routes: [String: String]) {
        guard networkReady, routes != appliedRoutes else { return }
        let vxlan = overlay?.mode == .vxlan
        var batch = "", fdb = ""
        func gateway(_ cidr: String) -> String { CIDR(cidr)?.network.description ?? cidr }
        for (cidr, via) in appliedRoutes where routes[cidr] != via {
            batch += "route del \(cidr)\n"
            if vxlan {
                batch += "neigh del \(gateway(cidr)) dev \(Self.vxlanDevice)\n"
                fdb += "fdb del \(HostNetwork.derivedMAC(via)) dev \(Self.vxlanDevice) dst \(via)\n"
            }
        }
        for (cidr, via) in routes.sorted(by: { $0.key < $1.key }) where appliedRoutes[cidr] != via {
            if vxlan {
                batch += "route replace \(cidr) via \(gateway(cidr)) dev \(Self.vxlanDevice) onlink\n"
                batch += "neigh replace \(gateway(cidr)) lladdr \(HostNetwork.derivedMAC(via)) dev \(Self.vxlanDevice) nud permanent\n"
                fdb += "fdb append \(HostNetwork.derivedMAC(via)) dev \(Self.vxlanDevice) dst \(via) self permanent\n"
            } else {
                batch += "route replace \(cidr) via \(via)\n"
            }
        }
        do {
            // -force: one route that cannot be set (its node's address not reachable yet) does not stop the others.
            try network.run([HostNetwork.ip, "-force", "-batch", "-"], stdin: batch)
            if !fdb.isEmpty { try network.run([HostNetwork.bridgeTool, "-force", "-batch", "-"], stdin: fdb) }
            appliedRoutes = routes
            routesError = nil
        } catch {
            routesError = "routes to other nodes: \(error)"
            // Read back on the next change: what failed is tried again.
            appliedRoutes = [:]
        }
    }

    /// The endpoints the proxy balances a Service ("namespace/name") over, as pod IPs: those of the
    /// rules in force.
    public func endpoints(of service: String) -> [String] { appliedEndpoints[service] ?? [] }
}
