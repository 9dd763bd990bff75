import BerthLinux
import BerthModel
#if canImport(Glibc)
import Glibc
#endif

/// A pod's volumes on the node: each a host directory that containers bind. emptyDir and the projected
/// ConfigMap/Secret files live under the pod's directory (Secrets and `medium: Memory` on a tmpfs of their
/// own); claims live under the node's state directory and outlive pods.
struct PodVolumes {
    let podDir: String
    let claimsDir: String
    let hostPathRoots: [String]

    func dir(_ volume: String) -> String { podDir + "/volumes/" + volume }

    /// Makes every volume of the pod; returns the host path of each by name.
    func prepare(_ pod: Pod, view: ClusterView) throws(NodeError) -> [String: String] {
        var paths: [String: String] = [:]
        let ns = pod.metadata.effectiveNamespace
        for v in pod.spec.volumes {
            let d = dir(v.name)
            switch v.source {
            case .emptyDir(let medium, let sizeLimit):
                try make(d)
                if medium == "Memory" {
                    try mountTmpfs(d, size: sizeLimit.map { max($0.milli / 1000, 4096) })
                }
                paths[v.name] = d
            case .configMap(let keys):
                guard let cm = view.configMaps[ns + "/" + keys.name] else {
                    if keys.optional { try make(d); paths[v.name] = d; continue }
                    throw NodeError("volume \(v.name): configmap \"\(keys.name)\" not found")
                }
                var data = cm.binaryData
                for (k, s) in cm.data { data[k] = Array(s.utf8) }
                try make(d)
                try project(data, keys, into: d, defaultMode: 0o644, volume: v.name)
                paths[v.name] = d
            case .secret(let keys):
                guard let s = view.secrets[ns + "/" + keys.name] else {
                    if keys.optional { try make(d); paths[v.name] = d; continue }
                    throw NodeError("volume \(v.name): secret \"\(keys.name)\" not found")
                }
                try make(d)
                // Secret values never touch a disk.
                try mountTmpfs(d, size: 16 << 20)
                try project(s.data, keys, into: d, defaultMode: 0o400, volume: v.name)
                paths[v.name] = d
            case .persistentVolumeClaim(let claim, _):
                guard view.claims[ns + "/" + claim] != nil else {
                    throw NodeError("volume \(v.name): persistentvolumeclaim \"\(claim)\" not found")
                }
                let c = claimsDir + "/" + ns + "/" + claim
                try make(c)
                paths[v.name] = c
            case .hostPath(let path, let type):
                paths[v.name] = try hostPath(path, type: type, volume: v.name)
            }
        }
        return paths
    }

    /// Rewrites the files of ConfigMap and Secret volumes that changed (each file replaced by rename, so a
    /// reader sees the old or the new content).
    func refresh(_ pod: Pod, view: ClusterView) {
        let ns = pod.metadata.effectiveNamespace
        for v in pod.spec.volumes {
            switch v.source {
            case .configMap(let keys):
                guard let cm = view.configMaps[ns + "/" + keys.name] else { continue }
                var data = cm.binaryData
                for (k, s) in cm.data { data[k] = Array(s.utf8) }
                try? project(data, keys, into: dir(v.name), defaultMode: 0o644, volume: v.name)
            case .secret(let keys):
                guard let s = view.secrets[ns + "/" + keys.name] else { continue }
                try? project(s.data, keys, into: dir(v.name), defaultMode: 0o400, volume: v.name)
            default:
                continue
            }
        }
    }

    private func project(_ data: [String: [UInt8]], _ keys: ProjectedKeys, into d: String, defaultMode: Int, volume: String) throws(NodeError) {
        var files: [(String, [UInt8], Int)] = []
        if keys.items.isEmpty {
            for (k, v) in data { files.append((k, v, keys.defaultMode ?? defaultMode)) }
        } else {
            for item in keys.items {
                guard let v = data[item.key] else {
                    if keys.optional { continue }
                    throw NodeError("volume \(volume): key \(item.key) not found in \(keys.name)")
                }
                files.append((item.path, v, item.mode ?? keys.defaultMode ?? defaultMode))
            }
        }
        var wanted = Set<String>()
        for (path, bytes, mode) in files {
            let parts = path.split(separator: "/")
            guard !path.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."), !parts.contains(".") else {
                throw NodeError("volume \(volume): path \(path) must be relative without '..'")
            }
            wanted.insert(path)
            let target = d + "/" + path
            if Files.read(target, limit: 8 << 20) == bytes, currentMode(target) == mode { continue }
            do {
                if parts.count > 1 { try Files.makeDirectories(Files.parentPath(target)) }
                try Files.write(bytes, to: target, mode: mode_t(mode))
                chmod(target, mode_t(mode))
            } catch {
                throw NodeError("volume \(volume): \(error)")
            }
        }
        // Keys that left the ConfigMap leave the volume.
        for name in Files.list(d) where !wanted.contains(name) && !Files.isDirectory(d + "/" + name) { unlink(d + "/" + name) }
    }

    private func currentMode(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_mode & 0o7777) : nil
    }

    private func hostPath(_ path: String, type: String?, volume: String) throws(NodeError) -> String {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
            throw NodeError("volume \(volume): hostPath \(path) must be absolute without '..'")
        }
        if type == "DirectoryOrCreate", !Files.exists(path), allowed(path) { try make(path) }
        guard let real = realpath(path) else { throw NodeError("volume \(volume): hostPath \(path) does not exist") }
        guard allowed(real) else {
            throw NodeError("volume \(volume): hostPath \(path) is outside the roots this node allows (\(hostPathRoots.isEmpty ? "none" : hostPathRoots.joined(separator: ", ")))")
        }
        switch type {
        case "Directory"?, "DirectoryOrCreate"?:
            guard Files.isDirectory(real) else { throw NodeError("volume \(volume): hostPath \(path) is not a directory") }
        case "File"?:
            guard !Files.isDirectory(real) else { throw NodeError("volume \(volume): hostPath \(path) is not a file") }
        default: break
        }
        return real
    }

    private func allowed(_ path: String) -> Bool {
        hostPathRoots.contains { root in
            let r = root.hasSuffix("/") ? String(root.dropLast()) : root
            return path == r || path.hasPrefix(r + "/")
        }
    }

    /// The host path a mount binds: the volume, or a path inside it that cannot leave it.
    static func source(volume: String, subPath: String?, mount: String) throws(NodeError) -> String {
        guard let sub = subPath, !sub.isEmpty else { return volume }
        let parts = sub.split(separator: "/")
        guard !sub.hasPrefix("/"), !parts.contains("..") else {
            throw NodeError("volumeMount \(mount): subPath \(sub) must be relative without '..'")
        }
        let path = volume + "/" + sub
        if !Files.exists(path) {
            do { try Files.makeDirectories(path, mode: 0o755) } catch { throw NodeError("volumeMount \(mount): subPath \(sub): \(error)") }
        }
        // A symlink inside the volume must not lead out of it.
        guard let real = realpath(path), let base = realpath(volume), real == base || real.hasPrefix(base + "/") else {
            throw NodeError("volumeMount \(mount): subPath \(sub) leads outside the volume")
        }
        return real
    }

    private func make(_ d: String) throws(NodeError) {
        do { try Files.makeDirectories(d) } catch { throw NodeError("cannot create \(d): \(error)") }
    }

    private func mountTmpfs(_ d: String, size: Int64?) throws(NodeError) {
        if isMountPoint(d) { return }
        let options = "mode=0755" + (size.map { ",size=\($0)" } ?? "")
        guard mount("tmpfs", d, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
            throw NodeError("cannot mount a tmpfs at \(d): \(String(cString: strerror(errno)))")
        }
    }

    /// Unmounts the pod's tmpfs volumes and removes its directory (claims and host paths stay).
    func remove() {
        for name in Files.list(podDir + "/volumes") {
            let d = dir(name)
            if isMountPoint(d) { umount2(d, Int32(MNT_DETACH)) }
        }
        try? Files.removeTree(podDir)
    }

    func isMountPoint(_ d: String) -> Bool {
        var a = stat(), b = stat()
        guard stat(d, &a) == 0, stat(d + "/..", &b) == 0 else { return false }
        return a.st_dev != b.st_dev
    }
}

func realpath(_ path: String) -> String? {
    guard let p = Glibc.realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}
