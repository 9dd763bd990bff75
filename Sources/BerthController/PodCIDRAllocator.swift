import BerthCluster
import BerthModel

/// Each node's pod network is cluster-wide knowledge, so the control plane hands them out, as
/// Kubernetes' node IPAM does: a /24 per node from the cluster range, kept while the node is registered
/// (its pods hold addresses from it); the network a node asks for (`berth run --pod-cidr`) when it
/// overlaps no other node's nor the Services'; a range with no /24 left gives the node a record that
/// says so.
enum PodCIDRAllocator {
    static let nodePrefix = 24

    /// The records of `nodes`, given the records they had (by node name).
    static func allocate(_ nodes: [NodeRecord], previous: [String: PodCIDRRecord], range: CIDR, serviceRange: CIDR) -> [String: PodCIDRRecord] {
        var out: [String: PodCIDRRecord] = [:]
        var taken: [CIDR] = []
        // Nodes keep what they have, first: a request never takes another node's network.
        for n in nodes.sorted(by: { $0.name < $1.name }) {
            guard let kept = previous[n.name].flatMap({ $0.cidr }).flatMap(CIDR.init) else { continue }
            let changed = n.requestedPodCIDR.map { $0 != kept.description } ?? false
            out[n.name] = PodCIDRRecord(node: n.name, cidr: kept.description, error: changed
                ? "node \(n.name) asks for the pod CIDR \(n.requestedPodCIDR!) but has \(kept): a node keeps its pod CIDR while it is registered" : nil)
            taken.append(kept)
        }
        for n in nodes.sorted(by: { $0.name < $1.name }) where out[n.name] == nil {
            if let asked = n.requestedPodCIDR {
                guard let cidr = CIDR(asked), cidr.description == asked else {
                    out[n.name] = PodCIDRRecord(node: n.name, error: "the pod CIDR \(asked) that node \(n.name) asks for is not an IPv4 network such as 10.244.0.0/24")
                    continue
                }
                if let other = taken.first(where: { $0.overlaps(cidr) }) ?? (serviceRange.overlaps(cidr) ? serviceRange : nil) {
                    out[n.name] = PodCIDRRecord(node: n.name, error: "the pod CIDR \(asked) that node \(n.name) asks for overlaps \(other)")
                    continue
                }
                out[n.name] = PodCIDRRecord(node: n.name, cidr: asked)
                taken.append(cidr)
                continue
            }
            let size = UInt32(1) << UInt32(32 - nodePrefix)
            let count = range.prefix <= nodePrefix ? UInt32(1) << UInt32(nodePrefix - range.prefix) : 0
            let free = (0..<count).lazy.compactMap { i in CIDR("\(IPv4(range.network.value + i * size))/\(nodePrefix)") }
                .first { c in !taken.contains { $0.overlaps(c) } && !serviceRange.overlaps(c) }
            guard let free else {
                out[n.name] = PodCIDRRecord(node: n.name, error: "no /\(nodePrefix) of the cluster CIDR \(range) is free for node \(n.name)")
                continue
            }
            out[n.name] = PodCIDRRecord(node: n.name, cidr: free.description)
            taken.append(free)
        }
        return out
    }
}
