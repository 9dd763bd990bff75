import BerthCluster
import BerthModel

/// ClusterIPs and node ports are cluster-wide, so the control plane hands them out: an address per
/// Service from the service range (kept while the Service exists; the one its manifest asks for when
/// free), and node ports from 30000–32767 for NodePort Services.
enum ServiceAllocator {
    static func key(_ s: Service) -> String { s.metadata.effectiveNamespace + "/" + s.metadata.name }

    /// The records of `services`, given the records they had (by "namespace/name").
    static func allocate(_ services: [Service], previous: [String: ServiceRecord], range: CIDR) -> [String: ServiceRecord] {
        var out: [String: ServiceRecord] = [:]
        let wanted = Set(services.map(key))
        let kept = previous.filter { wanted.contains($0.key) }
        var used = Set(kept.values.compactMap(\.clusterIP))
        var usedPorts = Set(kept.values.flatMap { $0.nodePorts.values })
        for s in services.sorted(by: { key($0) < key($1) }) {
            let k = key(s)
            if s.clusterIP == "None" {
                out[k] = ServiceRecord(service: s, clusterIP: nil)
                continue
            }
            var ip = kept[k]?.clusterIP
            if let asked = s.clusterIP, ip != asked {
                guard let a = IPv4(asked), range.contains(a), !used.contains(asked) else {
                    out[k] = ServiceRecord(service: s, clusterIP: nil, error: "spec.clusterIP \(asked) is not a free address of \(range)")
                    continue
                }
                if let old = ip { used.remove(old) }
                ip = asked
                used.insert(asked)
            }
            if ip == nil {
                // .1 is left for the API, as Kubernetes does.
                var v = range.first.value + 1
                while v <= range.last.value, used.contains(IPv4(v).description) { v += 1 }
                guard v <= range.last.value else {
                    out[k] = ServiceRecord(service: s, clusterIP: nil, error: "no free address left in \(range)")
                    continue
                }
                ip = IPv4(v).description
                used.insert(ip!)
            }
            var ports: [String: Int] = [:]
            if s.type == .nodePort {
                for p in s.ports {
                    let pk = ServiceRecord.portKey(p)
                    if let n = p.nodePort ?? kept[k]?.nodePorts[pk] {
                        ports[pk] = n
                        usedPorts.insert(n)
                        continue
                    }
                    var n = 30000
                    while n <= 32767, usedPorts.contains(n) { n += 1 }
                    ports[pk] = n
                    usedPorts.insert(n)
                }
            }
            out[k] = ServiceRecord(service: s, clusterIP: ip, nodePorts: ports)
        }
        return out
    }
}
