import BerthCluster
import BerthLinux
import BerthModel
import Foundation

/// berth's kube-proxy: a stable virtual IP (and node ports) per Service, and one nftables table
/// (`inet berth`) that load-balances each ClusterIP:port over the ready endpoints, replaced atomically.
enum ServiceProxy {
    struct Endpoint: Hashable {
        var ip: String
        /// Target ports by service port ("80/TCP").
        var ports: [String: Int]
    }

    /// The body of table `inet berth`.
    static func key(_ s: Service) -> String { s.metadata.effectiveNamespace + "/" + s.metadata.name }
    static func portKey(_ p: Service.Port) -> String { ServiceRecord.portKey(p) }

    static func ruleset(services: [ServiceRecord], endpoints: [String: [Endpoint]], hostPorts: [(Int, PortProtocol, String, Int)],
                 podCIDR: CIDR, bridge: String, masquerade: Bool) -> String {
        var chains = ""
        var vmap: [String] = []
        var nodePortMap: [String] = []
        var refused: [String] = []
        var n = 0
        for r in services.sorted(by: { Self.key($0.service) < Self.key($1.service) }) {
            guard let vip = r.clusterIP else { continue }
            let s = r.service
            let eps = (endpoints[Self.key(s)] ?? []).sorted { $0.ip < $1.ip }
            for p in s.ports {
                let proto = p.protocol.rawValue.lowercased()
                let pk = Self.portKey(p)
                let targets = eps.compactMap { e in e.ports[pk].map { "\(e.ip) . \($0)" } }
                guard !targets.isEmpty else {
                    refused.append("\(vip) . \(proto) . \(p.port)")
                    continue
                }
                let chain = "svc\(n)"
                n += 1
                let pick = targets.count == 1 ? targets[0]
                    : "numgen random mod \(targets.count) map { " + targets.enumerated().map { "\($0.offset) : \($0.element)" }.joined(separator: ", ") + " }"
                chains += "  chain \(chain) {\n    meta l4proto \(proto) dnat ip addr . port to \(pick)\n  }\n"
                vmap.append("\(vip) . \(proto) . \(p.port) : goto \(chain)")
                if let np = r.nodePorts[pk] { nodePortMap.append("\(proto) . \(np) : goto \(chain)") }
            }
        }
        func elements(_ e: [String]) -> String { e.isEmpty ? "" : "    elements = { " + e.joined(separator: ", ") + " }\n" }
        var body = "  map services {\n    type ipv4_addr . inet_proto . inet_service : verdict\n" + elements(vmap) + "  }\n"
        body += "  map nodeports {\n    type inet_proto . inet_service : verdict\n" + elements(nodePortMap) + "  }\n"
        body += "  set refused {\n    type ipv4_addr . inet_proto . inet_service\n" + elements(refused) + "  }\n"
        body += chains
        var hostRules = ""
        for (hostPort, proto, ip, port) in hostPorts {
            hostRules += "    fib daddr type local meta l4proto \(proto.rawValue.lowercased()) th dport \(hostPort) dnat ip to \(ip):\(port)\n"
        }
        for (name, hook, priority) in [("prerouting", "prerouting", "dstnat"), ("output", "output", "-100")] {
            body += "  chain \(name) {\n    type nat hook \(hook) priority \(priority); policy accept;\n"
            body += "    ip daddr . meta l4proto . th dport vmap @services\n"
            body += "    fib daddr type local meta l4proto . th dport vmap @nodeports\n" + hostRules + "  }\n"
        }
        body += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
        // A pod reaching itself or a neighbour through a Service: the reply must come back through the node.
        body += "    ct status dnat ip saddr \(podCIDR) oifname \"\(bridge)\" masquerade\n"
        if masquerade { body += "    ip saddr \(podCIDR) ip daddr != \(podCIDR) oifname != \"\(bridge)\" masquerade\n" }
        body += "  }\n"
        // A Service without ready endpoints refuses at once rather than leaving the client to time out.
        for hook in ["input", "forward", "output"] {
            body += "  chain reject-\(hook) {\n    type filter hook \(hook) priority filter; policy accept;\n"
            body += "    ip daddr . meta l4proto . th dport @refused meta l4proto tcp reject with tcp reset\n"
            body += "    ip daddr . meta l4proto . th dport @refused reject\n  }\n"
        }
        return body
    }
}
