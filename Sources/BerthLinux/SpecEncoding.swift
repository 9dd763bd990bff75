/// Serializes a container spec for berth-shim (decoded by `berth_decode_spec` in C): u32 tag, then the
/// payload; strings u32 length + bytes + NUL, lists u32 count + items, numbers u64, all little-endian.
public enum SpecEncoding {
    /// Without `execFifo` (and `errorFile`, where failures after set-up go) the process execs as soon as it
    /// is set up, as `run` wants.
    public static func encode(_ s: ContainerSpec, execFifo: String? = nil, errorFile: String? = nil, cgroups: [String] = []) -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func str(_ v: String) {
            let b = Array(v.utf8)
            u32(UInt32(b.count))
            out += b
            out.append(0)
        }
        func strs(_ v: [String]) {
            u32(UInt32(v.count))
            v.forEach(str)
        }
        func tag(_ t: UInt32) { u32(t) }
        tag(1); u64(UInt64(s.namespaces.reduce(Int32(0)) { $0 | $1.flag }))
        tag(2); str(s.rootfs)
        tag(3); u64(s.readonlyRoot ? 1 : 0)
        if let h = s.hostname { tag(4); str(h) }
        tag(5); u32(UInt32(s.mounts.count))
        for m in s.mounts {
            str(m.source); str(m.target); str(m.type ?? ""); u64(UInt64(m.flags)); str(m.data ?? ""); u64(m.bindReadonly ? 1 : 0)
        }
        tag(6); strs(s.maskedPaths)
        tag(7); strs(s.readonlyPaths)
        tag(8); u64(s.makeDev ? 1 : 0)
        tag(9); strs(s.args)
        tag(10); strs(s.env)
        tag(11); str(s.cwd)
        tag(12); u64(UInt64(s.uid))
        tag(13); u64(UInt64(s.gid))
        tag(14); u32(UInt32(s.additionalGids.count)); s.additionalGids.forEach { u64(UInt64($0)) }
        tag(15); u64(s.capabilities.bounding)
        tag(16); u64(s.capabilities.effective)
        tag(17); u64(s.capabilities.permitted)
        tag(18); u64(s.capabilities.inheritable)
        tag(19); u64(s.capabilities.ambient)
        tag(20); u64(s.noNewPrivileges ? 1 : 0)
        tag(21); u32(UInt32(s.rlimits.count))
        for l in s.rlimits { u64(UInt64(l.resource)); u64(l.soft); u64(l.hard) }
        if let f = s.seccomp {
            tag(22); u32(UInt32(f.count)); out += f.instructions
        }
        if let execFifo, let errorFile {
            tag(23); str(execFifo)
            tag(24); str(errorFile)
        }
        tag(25); strs(cgroups)
        if let overlay = s.rootfsOverlay { tag(26); str(overlay) }
        if let source = s.rootfsSource { tag(28); str(source) }
        if !s.joinNamespaces.isEmpty {
            tag(29); u32(UInt32(s.joinNamespaces.count))
            for j in s.joinNamespaces { u64(UInt64(UInt32(bitPattern: j.type.flag))); str(j.path) }
        }
        if let adj = s.oomScoreAdj { tag(32); u64(UInt64(bitPattern: Int64(adj))) }
        if !s.sysctls.isEmpty { tag(33); strs(s.sysctls.map { $0.key + "=" + $0.value }) }
        if !s.devices.isEmpty {
            tag(34); u32(UInt32(s.devices.count))
            for d in s.devices { str(d.path); u64(UInt64(d.mode)); u64(UInt64(d.major)); u64(UInt64(d.minor)); u64(UInt64(d.uid)); u64(UInt64(d.gid)) }
        }
        tag(35); u64(UInt64(s.umask))
        if s.rootPropagation != 0 { tag(36); u64(UInt64(s.rootPropagation)) }
        if s.namespaces.contains(.user) {
            tag(30); str(IDMapping.mapText(s.uidMappings))
            tag(31); str(IDMapping.mapText(s.gidMappings))
        }
        return out
    }
}
