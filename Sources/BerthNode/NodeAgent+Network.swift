import BerthCluster
import BerthLinux
import BerthModel
import Foundation

extension NodeAgent {
    func setUpNetwork() {
        do {
            try network.ensureBridge(config.bridge, address: "\(podCIDR.first)/\(podCIDR.prefix)")
            // Virtual IPs route to the bridge, so they never leave the node even without endpoints.
            try network.run([HostNetwork.ip, "route", "replace", serviceCIDR.description, "dev", config.bridge])
            networkReady = true
        } catch {
            for key in pods.keys { pods[key]?.message = "pod network: \(error)" }
        }
    }

    /// Addresses, endpoints and the nftables table of the Services; the table is replaced only when it
    /// would change.
    func syncServices() {
        guard networkReady else { return }
        let ips = view.services.map(\.clusterIP)
        if ips != lastClusterIPs {
            lastClusterIPs = ips
            for p in pods.values where p.sandboxID != nil { try? writeEtc(p) }
        }
        var endpoints: [String: [ServiceProxy.Endpoint]] = [:]
        var hostPorts: [(Int, PortProtocol, String, Int)] = []
        for p in pods.values where p.terminatingSince == nil {
            guard let ip = p.ip, p.sandboxID != nil else { continue }
            for c in p.pod.spec.containers { for port in c.ports { if let h = port.hostPort { hostPorts.append((h, port.protocol, ip, port.containerPort)) } } }
            guard p.status.ready else { continue }
            for r in view.services where Self.selects(r.service, p) {
                let s = r.service
                var ports: [String: Int] = [:]
                for sp in s.ports {
                    switch sp.targetPort ?? .int(sp.port) {
                    case .int(let n): ports[ServiceProxy.portKey(sp)] = n
                    case .string(let name):
                        let named = p.pod.spec.containers.flatMap(\.ports).first { $0.name == name && $0.protocol == sp.protocol }
                        if let named { ports[ServiceProxy.portKey(sp)] = named.containerPort }
                    }
                }
                endpoints[ServiceProxy.key(s), default: []].append(.init(ip: ip, ports: ports))
            }
        }
        let rules = ServiceProxy.ruleset(services: view.services, endpoints: endpoints, hostPorts: hostPorts.sorted { $0.0 < $1.0 },
                                  podCIDR: podCIDR, bridge: config.bridge, masquerade: config.masquerade)
        guard rules != appliedRules else { return }
        do {
            try network.replaceTable(family: "inet", name: "berth", body: rules)
            appliedRules = rules
            servicesError = nil
        } catch {
            servicesError = "nftables: \(error)"
        }
    }

    /// The ready endpoints of a Service ("namespace/name"), as pod IPs.
    public func endpoints(of service: String) -> [String] {
        guard let s = view.services.first(where: { ServiceProxy.key($0.service) == service })?.service else { return [] }
        return pods.values.filter { $0.terminatingSince == nil && $0.status.ready && Self.selects(s, $0) }.compactMap(\.ip).sorted()
    }

    /// A Service with a selector picks the pods of its namespace that carry every label of it.
    static func selects(_ s: Service, _ p: PodState) -> Bool {
        s.metadata.effectiveNamespace == p.pod.metadata.effectiveNamespace && !s.selector.isEmpty
            && s.selector.allSatisfy { p.pod.metadata.labels[$0.key] == $0.value }
    }
}
