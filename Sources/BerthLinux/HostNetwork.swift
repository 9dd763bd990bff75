#if canImport(Glibc)
import Glibc
#endif

/// The node's side of pod networking: a bridge, a veth per pod, sysctls and the nftables table, set up
/// with iproute2 and nft in the node's network namespace (`namespace`, or this process's when nil).
public struct HostNetwork: Sendable {
    public var namespace: String?
    public static let ip = "/usr/sbin/ip"
    public static let nft = "/usr/sbin/nft"

    public init(namespace: String?) { self.namespace = namespace }

    /// Runs a program in the node's network namespace; a non-zero exit is an error with its output.
    @discardableResult
    public func run(_ argv: [String], stdin: String? = nil, in netns: String? = nil) throws(LinuxError) -> String {
        let target = netns ?? namespace
        let full = target.map { ["/usr/bin/nsenter", "--net=" + $0] + argv } ?? argv
        let r = try Subprocess.run(full, stdin: stdin, timeout: 30)
        guard r.status == 0 else {
            throw LinuxError(stage: "network", program: argv, status: r.status, output: r.output)
        }
        return r.output
    }

    /// A locally administered MAC made from an IPv4 address (`0a:58:` and its four bytes): stable, and known
    /// to other nodes without being published.
    public static func derivedMAC(_ address: String) -> String {
        "0a:58:" + address.split(separator: ".").map { part in
            let hex = String(UInt8(part) ?? 0, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    public func linkExists(_ name: String) -> Bool {
        (try? run([HostNetwork.ip, "-o", "link", "show", "dev", name])) != nil
    }

    /// The bridge with the gateway address (`10.244.0.1/24`), up; forwarding on. `mtu`: the pods' (an
    /// overlay's, below the nodes' network).
    public func ensureBridge(_ name: String, address: String, mtu: Int? = nil) throws(LinuxError) {
        var batch = ""
        let link = (try? run([HostNetwork.ip, "-o", "link", "show", "dev", name])) ?? ""
        if link.isEmpty { batch += "link add name \(name) type bridge\n" }
        // Unless given one, a bridge takes the lowest MAC of its ports and changes it when that port goes: the
        // pods that still hold the old one for their gateway then send their replies nowhere for seconds.
        let mac = HostNetwork.derivedMAC(String(address.prefix { $0 != "/" }))
        if !link.contains(" link/ether \(mac) ") { batch += "link set \(name) address \(mac)\n" }
        let shown = (try? run([HostNetwork.ip, "-o", "-4", "addr", "show", "dev", name])) ?? ""
        if !shown.contains(" \(address) ") { batch += "addr replace \(address) dev \(name)\n" }
        batch += "link set \(name)\(mtu.map { " mtu \($0)" } ?? "") up\n"
        try run([HostNetwork.ip, "-batch", "-"], stdin: batch)
        try setSysctl("net/ipv4/ip_forward", "1")
    }

    /// The MTU of the link that holds `address` in the node's namespace.
    public func mtu(ofLinkWith address: String) -> Int? {
        guard let shown = try? run([HostNetwork.ip, "-o", "-4", "addr", "show"]) else { return nil }
        for line in shown.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, fields[3].split(separator: "/").first.map(String.init) == address else { continue }
            guard let link = try? run([HostNetwork.ip, "-o", "link", "show", "dev", String(fields[1])]) else { return nil }
            let words = link.split(separator: " ")
            guard let i = words.firstIndex(of: "mtu"), i + 1 < words.count else { return nil }
            return Int(words[i + 1])
        }
        return nil
    }

    /// A VXLAN device (`vni`, UDP `port`, from `local`) with a fixed MAC, `mtu` and `address`/32, up;
    /// peers are added by hand (no learning).
    public func ensureVXLAN(_ name: String, vni: Int, port: Int, local: String, mac: String, mtu: Int, address: String) throws(LinuxError) {
        var batch = ""
        if !linkExists(name) { batch += "link add \(name) type vxlan id \(vni) dstport \(port) local \(local) nolearning\n" }
        batch += "link set \(name) address \(mac) mtu \(mtu) up\n"
        batch += "addr replace \(address)/32 dev \(name)\n"
        try run([HostNetwork.ip, "-batch", "-"], stdin: batch)
    }

    public static let bridgeTool = "/usr/sbin/bridge"

    public func removeLink(_ name: String) {
        _ = try? run([HostNetwork.ip, "link", "del", "dev", name])
    }

    /// A veth pair: `hostSide` on the bridge, `eth0` inside the pod's network namespace (of process
    /// `pid`) with `address` (`10.244.0.5/24`), loopback up and the default route via `gateway`.
    public func attachPod(hostSide: String, bridge: String, pid: Int32, address: String, gateway: String, mtu: Int? = nil) throws(LinuxError) {
        removeLink(hostSide)
        let size = mtu.map { " mtu \($0)" } ?? ""
        try run([HostNetwork.ip, "-batch", "-"], stdin: """
            link add name \(hostSide)\(size) type veth peer name eth0\(size) netns \(pid)
            link set \(hostSide) master \(bridge) up

            """)
        try run([HostNetwork.ip, "-batch", "-"], stdin: """
            link set lo up
            addr add \(address) dev eth0
            link set eth0 up
            route add default via \(gateway) dev eth0

            """, in: "/proc/\(pid)/ns/net")
    }

    /// A sysctl of the node's network namespace, e.g. `net/ipv4/ip_forward`.
    public func setSysctl(_ key: String, _ value: String) throws(LinuxError) {
        guard key.allSatisfy({ $0.isLetter || $0.isNumber || "/_-.".contains($0) }) else {
            throw LinuxError(stage: "network", syscall: "sysctl", path: key, errno: EINVAL)
        }
        try run(["/bin/sh", "-c", "echo \(value) > /proc/sys/\(key)"])
    }

    /// Replaces the table `family name` with `body` in one transaction: no packet sees half of it.
    public func replaceTable(family: String, name: String, body: String) throws(LinuxError) {
        try run([HostNetwork.nft, "-f", "-"], stdin: "table \(family) \(name) {}\ndelete table \(family) \(name)\ntable \(family) \(name) {\n\(body)}\n")
    }

    public func deleteTable(family: String, name: String) {
        _ = try? run([HostNetwork.nft, "delete", "table", family, name])
    }
}
