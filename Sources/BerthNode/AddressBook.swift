#if canImport(Glibc)
import Glibc
#endif
import BerthLinux
import BerthModel

/// Addresses handed out from a range, each recorded as a file `<dir>/<ip>` holding its owner, so that an
/// agent restart hands every owner back the address it had.
struct AddressBook {
    let dir: String
    let range: ClosedRange<UInt32>
    private(set) var owners: [IPv4: String] = [:]
    /// The address handed out last (`<dir>/last`): the next search starts after it.
    private var last: UInt32?

    init(dir: String, from: IPv4, to: IPv4) throws {
        self.dir = dir
        range = from.value...to.value
        try Files.makeDirectories(dir, mode: 0o700)
        for name in Files.list(dir) {
            guard let ip = IPv4(name), range.contains(ip.value), let owner = Files.readText(dir + "/" + name, limit: 4096) else { continue }
            owners[ip] = owner
        }
        last = Files.readText(dir + "/last", limit: 64).flatMap { IPv4($0.trimmed()) }.map(\.value)
    }

    func address(of owner: String) -> IPv4? { owners.first { $0.value == owner }?.key }

    /// The owner's address, or the next free one after the last handed out, round-robin as Kubernetes'
    /// host-local IPAM does: a pod's address is not reused at once by the next pod, while the node's
    /// neighbour cache still maps it to the old pod's MAC (connections to the new pod would hang).
    /// Or a preferred one, when free (a ClusterIP asked for).
    mutating func assign(_ owner: String, preferred: IPv4? = nil) throws -> IPv4 {
        if let ip = address(of: owner) { return ip }
        var pick: IPv4?
        if let preferred {
            guard range.contains(preferred.value) else { throw NodeError("\(preferred) is outside \(IPv4(range.lowerBound))–\(IPv4(range.upperBound))") }
            guard owners[preferred] == nil else { throw NodeError("\(preferred) is already in use by \(owners[preferred]!)") }
            pick = preferred
        } else {
            let size = range.upperBound - range.lowerBound + 1
            let start = last.map { range.contains($0) ? $0 - range.lowerBound + 1 : 0 } ?? 0
            for i in 0..<size {
                let v = range.lowerBound + (start + i) % size
                if owners[IPv4(v)] == nil {
                    pick = IPv4(v)
                    break
                }
            }
        }
        guard let ip = pick else { throw NodeError("no free address left in \(IPv4(range.lowerBound))–\(IPv4(range.upperBound))") }
        try Files.write(owner, to: dir + "/" + ip.description, mode: 0o600)
        owners[ip] = owner
        if preferred == nil {
            last = ip.value
            try? Files.write(ip.description, to: dir + "/last", mode: 0o600)
        }
        return ip
    }

    mutating func release(_ owner: String) {
        guard let ip = address(of: owner) else { return }
        unlink(dir + "/" + ip.description)
        owners[ip] = nil
    }
}
