import BerthLinux
import BerthModel
import Foundation

/// berth's kube-proxy: a stable virtual IP (and node ports) per Service, and one nftables table
/// (`inet berth`) that load-balances each ClusterIP:port over the ready endpoints, replaced atomically.
struct ServiceProxy {
    struct Allocation: Codable, Equatable {
        var ip: String
        /// "80/TCP" → node port
        var nodePorts: [String: Int] = [:]
    }

    struct Endpoint: Hashable {
        var ip: String
        /// Target ports by service port ("80/TCP").
        var ports: [String: Int]
    }

    let file: String
    let range: CIDR
    private(set) var allocations: [String: Allocation] = [:]

    init(file: String, serviceCIDR: CIDR) {
        self.file = file
        range = serviceCIDR
        if let data = Files.read(file, limit: 16 << 20), let a = try? JSONDecoder().decode([String: Allocation].self, from: Data(data)) {
            allocations = a
        }
    }

    static func key(_ s: Service) -> String { s.metadata.effectiveNamespace + "/" + s.metadata.name }
    static func portKey(_ p: Service.Port) -> String { "\(p.port)/\(p.protocol.rawValue)" }

    /// Gives every Service an address (kept across restarts; the one the manifest asks for when free) and
    /// forgets those of Services that left. Returns the errors by Service.
    mutating func allocate(_ services: [Service]) -> [String: String] {
        var errors: [String: String] = [:]
        let wanted = Set(services.map(Self.key))
        let before = allocations
        allocations = allocations.filter { wanted.contains($0.key) }
        var used = Set(allocations.values.map(\.ip))
        var usedPorts = Set(allocations.values.flatMap { $0.nodePorts.values })
        for s in services.sorted(by: { Self.key($0) < Self.key($1) }) {
            let k = Self.key(s)
            if s.clusterIP == "None" { allocations[k] = nil; continue }
            var a = allocations[k]
            if let asked = s.clusterIP, a?.ip != asked {
                guard let ip = IPv4(asked), range.contains(ip), !used.contains(asked) else {
                    errors[k] = "spec.clusterIP \(asked) is not a free address of \(range)"
                    continue
                }
                if let old = a?.ip { used.remove(old) }
                a = Allocation(ip: asked)
                used.insert(asked)
            }
            if a == nil {
                // .1 is left for the API, as Kubernetes does.
                var v = range.first.value + 1
                while v <= range.last.value, used.contains(IPv4(v).description) { v += 1 }
                guard v <= range.last.value else { errors[k] = "no free address left in \(range)"; continue }
                a = Allocation(ip: IPv4(v).description)
                used.insert(a!.ip)
            }
            var ports: [String: Int] = [:]
            if s.type == .nodePort {
                for p in s.ports {
                    let pk = Self.portKey(p)
                    if let n = p.nodePort ?? a!.nodePorts[pk] { ports[pk] = n; usedPorts.insert(n); continue }
                    var n = 30000
                    while n <= 32767, usedPorts.contains(n) { n += 1 }
                    ports[pk] = n
                    usedPorts.insert(n)
                }
            }
            a!.nodePorts = ports
            allocations[k] = a
        }
        if allocations != before, let data = try? JSONEncoder().encode(allocations) {
            try? Files.write(Array(data), to: file, mode: 0o600)
        }
        return errors
    }

    func clusterIPs() -> [String: String] { allocations.mapValues(\.ip) }

    /// The body of table `inet berth`.
    func ruleset(services: [Service], endpoints: [String: [Endpoint]], hostPorts: [(Int, PortProtocol, String, Int)],
                 podCIDR: CIDR, bridge: String, masquerade: Bool) -> String {
        var chains = ""
        var vmap: [String] = []
        var nodePortMap: [String] = []
        var refused: [String] = []
        var n = 0
        for s in services.sorted(by: { Self.key($0) < Self.key($1) }) {
            guard let a = allocations[Self.key(s)] else { continue }
            let eps = (endpoints[Self.key(s)] ?? []).sorted { $0.ip < $1.ip }
            for p in s.ports {
                let proto = p.protocol.rawValue.lowercased()
                let pk = Self.portKey(p)
                let targets = eps.compactMap { e in e.ports[pk].map { "\(e.ip) . \($0)" } }
                guard !targets.isEmpty else {
                    refused.append("\(a.ip) . \(proto) . \(p.port)")
                    continue
                }
                let chain = "svc\(n)"
                n += 1
                let pick = targets.count == 1 ? targets[0]
                    : "numgen random mod \(targets.count) map { " + targets.enumerated().map { "\($0.offset) : \($0.element)" }.joined(separator: ", ") + " }"
                chains += "  chain \(chain) {\n    meta l4proto \(proto) dnat ip addr . port to \(pick)\n  }\n"
                vmap.append("\(a.ip) . \(proto) . \(p.port) : goto \(chain)")
                if let np = a.nodePorts[pk] { nodePortMap.append("\(proto) . \(np) : goto \(chain)") }
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
