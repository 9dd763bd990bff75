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
    /// The pod's uid on this node (a downwardAPI volume's metadata.uid).
    let uid: String
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
            case .downwardAPI(let files):
                try make(d)
                var out: [ProjectedFiles.File] = []
                for item in files.items {
                    guard let value = DownwardAPIFiles.value(item.fieldPath, metadata: pod.metadata, uid: uid) else {
                        throw NodeError("volume \(v.name): unsupported fieldPath \(item.fieldPath)")
                    }
                    out.append(ProjectedFiles.File(path: item.path, bytes: Array(value.utf8), mode: item.mode ?? files.defaultMode ?? 0o644))
                }
                try write(out, into: d, volume: v.name)
                paths[v.name] = d
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

    /// Writes a ConfigMap's or Secret's files as the kubelet does: into a fresh `..<n>` directory, then
    /// one rename of the `..data` link makes the new set visible at once; each key is a link through
    /// `..data`. Every write is relative to a descriptor of a directory made here, never through a link.
    private func project(_ data: [String: [UInt8]], _ keys: ProjectedKeys, into d: String, defaultMode: Int, volume: String) throws(NodeError) {
        var files: [ProjectedFiles.File] = []
        if keys.items.isEmpty {
            for (k, v) in data { files.append(ProjectedFiles.File(path: k, bytes: v, mode: keys.defaultMode ?? defaultMode)) }
        } else {
            for item in keys.items {
                guard let v = data[item.key] else {
                    if keys.optional { continue }
                    throw NodeError("volume \(volume): key \(item.key) not found in \(keys.name)")
                }
                files.append(ProjectedFiles.File(path: item.path, bytes: v, mode: item.mode ?? keys.defaultMode ?? defaultMode))
            }
        }
        try write(files, into: d, volume: volume)
    }

    /// Makes `files` the content of a projected volume (paths checked, nothing rewritten when unchanged).
    private func write(_ files: [ProjectedFiles.File], into d: String, volume: String) throws(NodeError) {
        var files = files
        for f in files {
            let parts = f.path.split(separator: "/")
            guard !f.path.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."), !parts.contains("."), !f.path.hasPrefix("..") else {
                throw NodeError("volume \(volume): path \(f.path) must be relative without '..'")
            }
        }
        files.sort { $0.path < $1.path }
        if ProjectedFiles.current(d) == files { return }
        do {
            try ProjectedFiles.write(files, into: d)
        } catch {
            throw NodeError("volume \(volume): \(error)")
        }
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

    /// The host path a mount binds: the volume, or a path inside it. A subPath is resolved inside the
    /// volume (a link in it cannot lead out, and missing directories are made only inside), then bound
    /// onto `bindAt` from its descriptor, so that a link swapped in later changes nothing.
    static func source(volume: String, subPath: String?, mount: String, bindAt: String) throws(NodeError) -> String {
        guard let sub = subPath, !sub.isEmpty else { return volume }
        guard !sub.hasPrefix("/"), !sub.split(separator: "/").contains("..") else {
            throw NodeError("volumeMount \(mount): subPath \(sub) must be relative without '..'")
        }
        do {
            let fd = try Files.openInRoot(volume, sub, make: .directories)
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw NodeError("volumeMount \(mount): subPath \(sub): \(String(cString: strerror(errno)))") }
            unbind(bindAt)
            try Files.makeDirectories(Files.parentPath(bindAt), mode: 0o700)
            if (st.st_mode & S_IFMT) == S_IFDIR {
                try Files.makeDirectories(bindAt, mode: 0o700)
            } else {
                try Files.write([], to: bindAt, mode: 0o600)
            }
            guard Glibc.mount("/proc/self/fd/\(fd)", bindAt, nil, UInt(MS_BIND), nil) == 0 else {
                throw NodeError("volumeMount \(mount): subPath \(sub): bind: \(String(cString: strerror(errno)))")
            }
        } catch let error as NodeError {
            throw error
        } catch {
            throw NodeError("volumeMount \(mount): subPath \(sub): \(error)")
        }
        return bindAt
    }

    /// Removes a subPath bind made by `source` (a file or directory mount point).
    static func unbind(_ path: String) {
        while umount2(path, Int32(MNT_DETACH)) == 0 {}
        _ = try? Files.removeTree(path)
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

    /// Unmounts the pod's tmpfs volumes and subPath binds and removes its directory (claims and host
    /// paths stay).
    func remove() {
        for name in Files.list(podDir + "/volumes") {
            let d = dir(name)
            if isMountPoint(d) { umount2(d, Int32(MNT_DETACH)) }
        }
        for name in Files.list(podDir + "/subpaths") { PodVolumes.unbind(podDir + "/subpaths/" + name) }
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
