import Foundation
import BerthLinux
import BerthModel
import BerthRuntime

/// The OCI bundle (config.json) of one run of a pod's container, or of the pod's sandbox: the interface
/// between the node agent and the runtime, so runc could run it too.
struct ContainerBundle {
    let initBinary: String

    /// The sandbox holds the pod's network, ipc and uts namespaces: berth-init waiting for a signal.
    func sandbox(hostname: String, cgroupsPath: String) -> [String: Any] {
        var c = DefaultSpec.config(args: ["/dev/init", "--pause"], rootfs: "rootfs")
        // berth-init itself, not wrapped in a second init.
        var mounts = c["mounts"] as! [[String: Any]]
        mounts.append(["destination": DefaultSpec.initPath, "type": "bind", "source": initBinary, "options": ["bind", "ro", "nosuid", "nodev"]])
        c["mounts"] = mounts
        c["hostname"] = hostname
        var linux = c["linux"] as! [String: Any]
        linux["resources"] = ["pids": ["limit": 16]]
        linux["cgroupsPath"] = cgroupsPath
        c["linux"] = linux
        return c
    }

    struct Run {
        var args: [String]
        var env: [(String, String)]
        var workingDir: String?
        /// (destination, host source, read-only)
        var mounts: [(String, String, Bool)]
        var sandboxPid: Int32
        var cgroupsPath: String
        var hostImage: Bool
        /// The image's USER as ids (names looked up in the image), used when the manifest sets no runAsUser.
        var imageUser: (uid: Int, gid: Int?)? = nil
    }

    func container(_ c: Container, _ r: Run) throws(NodeError) -> [String: Any] {
        var config = DefaultSpec.config(args: r.args, rootfs: "rootfs", initBinary: initBinary)
        var process = config["process"] as! [String: Any]
        process["env"] = r.env.map { "\($0.0)=\($0.1)" }
        if let w = r.workingDir { process["cwd"] = w }
        let sc = c.securityContext
        let uid = sc?.runAsUser ?? r.imageUser?.uid ?? 0
        process["user"] = ["uid": uid, "gid": sc?.runAsGroup ?? (sc?.runAsUser == nil ? r.imageUser?.gid : nil) ?? uid]
        if sc?.allowPrivilegeEscalation == true { process["noNewPrivileges"] = false }
        if let sc, !sc.capabilities.add.isEmpty || !sc.capabilities.drop.isEmpty {
            var caps = Set(CapabilityNames.dockerDefault)
            let all = sc.capabilities.drop.contains { $0.uppercased() == "ALL" }
            if all { caps = [] }
            for d in sc.capabilities.drop { caps.remove("CAP_" + Capabilities.bare(d)) }
            for a in sc.capabilities.add { caps.insert("CAP_" + Capabilities.bare(a)) }
            let list = caps.sorted()
            process["capabilities"] = ["bounding": list, "effective": list, "permitted": list]
        }
        config["process"] = process
        var root = config["root"] as! [String: Any]
        root["readonly"] = r.hostImage || sc?.readOnlyRootFilesystem == true
        config["root"] = root
        config["hostname"] = nil
        var mounts = config["mounts"] as! [[String: Any]]
        for (dest, source, ro) in r.mounts {
            mounts.append(["destination": dest, "type": "bind", "source": source, "options": ["rbind", ro ? "ro" : "rw", "nosuid", "nodev"]])
        }
        config["mounts"] = mounts
        var linux = config["linux"] as! [String: Any]
        let ns = "/proc/\(r.sandboxPid)/ns/"
        linux["namespaces"] = [["type": "pid"], ["type": "mount"],
                               ["type": "network", "path": ns + "net"], ["type": "ipc", "path": ns + "ipc"], ["type": "uts", "path": ns + "uts"]]
        linux["cgroupsPath"] = r.cgroupsPath
        var resources: [String: Any] = ["pids": ["limit": 4096]]
        let limits = c.resources.limits, requests = c.resources.effectiveRequests
        if let m = limits["memory"] { resources["memory"] = ["limit": max(m.milli / 1000, 1 << 20)] }
        var cpu: [String: Any] = [:]
        if let l = limits["cpu"] { cpu["quota"] = max(l.milli * 100, 1000); cpu["period"] = 100_000 }
        // Kubernetes' shares: 1024 per core requested, at least 2.
        cpu["shares"] = max((requests["cpu"]?.milli ?? 0) * 1024 / 1000, 2)
        resources["cpu"] = cpu
        linux["resources"] = resources
        config["linux"] = linux
        return config
    }
}
