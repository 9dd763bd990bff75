/// Serializes a container spec for berth-shim (decoded by `berth_decode_spec` in C): u32 tag, then the
/// payload; strings u32 length + bytes + NUL, lists u32 count + items, numbers u64, all little-endian.
public enum SpecEncoding {
    struct Writer {
        var out: [UInt8] = []
        mutating func tag(_ t: UInt32) { u32(t) }
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        mutating func flag(_ v: Bool) { u64(v ? 1 : 0) }
        mutating func str(_ v: String) {
            let b = Array(v.utf8)
            u32(UInt32(b.count))
            out += b
            out.append(0)
        }
        mutating func strs(_ v: [String]) {
            u32(UInt32(v.count))
            for s in v { str(s) }
        }
    }

    /// Without `execFifo` (and `errorFile`, where failures after set-up go) the process execs as soon as it
    /// is set up, as `run` wants.
    public static func encode(_ s: ContainerSpec, execFifo: String? = nil, errorFile: String? = nil, cgroups: [String] = []) -> [UInt8] {
        var w = Writer()
        w.tag(1); w.u64(UInt64(s.namespaces.reduce(Int32(0)) { $0 | $1.flag }))
        w.tag(2); w.str(s.rootfs)
        w.tag(3); w.flag(s.readonlyRoot)
        if let h = s.hostname { w.tag(4); w.str(h) }
        w.tag(5); w.u32(UInt32(s.mounts.count))
        for m in s.mounts {
            w.str(m.source); w.str(m.target); w.str(m.type ?? ""); w.u64(UInt64(m.flags)); w.str(m.data ?? ""); w.flag(m.bindReadonly)
        }
        w.tag(6); w.strs(s.maskedPaths)
        w.tag(7); w.strs(s.readonlyPaths)
        w.tag(8); w.flag(s.makeDev)
        w.out += encodeProcess(s)
        if let f = s.seccomp {
            w.tag(22); w.u32(UInt32(f.count)); w.out += f.instructions
        }
        if let execFifo, let errorFile {
            w.tag(23); w.str(execFifo)
            w.tag(24); w.str(errorFile)
        }
        w.tag(25); w.strs(cgroups)
        if let overlay = s.rootfsOverlay { w.tag(26); w.str(overlay) }
        if let source = s.rootfsSource { w.tag(28); w.str(source) }
        if !s.joinNamespaces.isEmpty {
            w.tag(29); w.u32(UInt32(s.joinNamespaces.count))
            for j in s.joinNamespaces { w.u64(UInt64(UInt32(bitPattern: j.type.flag))); w.str(j.path) }
        }
        if let adj = s.oomScoreAdj { w.tag(32); w.u64(UInt64(bitPattern: Int64(adj))) }
        if !s.sysctls.isEmpty { w.tag(33); w.strs(s.sysctls.map { $0.key + "=" + $0.value }) }
        if !s.devices.isEmpty {
            w.tag(34); w.u32(UInt32(s.devices.count))
            for d in s.devices {
                w.str(d.path); w.u64(UInt64(d.mode)); w.u64(UInt64(d.major)); w.u64(UInt64(d.minor)); w.u64(UInt64(d.uid)); w.u64(UInt64(d.gid))
            }
        }
        if s.rootPropagation != 0 { w.tag(36); w.u64(UInt64(s.rootPropagation)) }
        if !s.startHooks.isEmpty, let state = s.hookState {
            w.tag(38); w.u32(UInt32(s.startHooks.count))
            for h in s.startHooks { w.str(h.path); w.strs(h.args); w.strs(h.env); w.u64(UInt64(h.timeout ?? 0)) }
            w.tag(39); w.str(state)
        }
        if s.namespaces.contains(.user) {
            w.tag(30); w.str(IDMapping.mapText(s.uidMappings))
            w.tag(31); w.str(IDMapping.mapText(s.gidMappings))
        }
        return w.out
    }

    /// The fields of the process alone (args, env, cwd, user, capabilities, no_new_privs, rlimits, umask,
    /// terminal): decoded over a container's whole spec, they make the process `exec` starts in it.
    public static func encodeProcess(_ s: ContainerSpec) -> [UInt8] {
        var w = Writer()
        w.tag(9); w.strs(s.args)
        w.tag(10); w.strs(s.env)
        w.tag(11); w.str(s.cwd)
        w.tag(12); w.u64(UInt64(s.uid))
        w.tag(13); w.u64(UInt64(s.gid))
        w.tag(14); w.u32(UInt32(s.additionalGids.count)); for g in s.additionalGids { w.u64(UInt64(g)) }
        w.tag(15); w.u64(s.capabilities.bounding)
        w.tag(16); w.u64(s.capabilities.effective)
        w.tag(17); w.u64(s.capabilities.permitted)
        w.tag(18); w.u64(s.capabilities.inheritable)
        w.tag(19); w.u64(s.capabilities.ambient)
        w.tag(20); w.flag(s.noNewPrivileges)
        w.tag(21); w.u32(UInt32(s.rlimits.count))
        for l in s.rlimits { w.u64(UInt64(l.resource)); w.u64(l.soft); w.u64(l.hard) }
        w.tag(35); w.u64(UInt64(s.umask))
        w.tag(37); w.flag(s.terminal)
        return w.out
    }
}
