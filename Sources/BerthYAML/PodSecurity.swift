import BerthModel

/// Kubernetes' Pod Security Standards, enforced on every pod a commit would run: each namespace is held to
/// *baseline* unless its Namespace manifest's `pod-security.kubernetes.io/enforce` label says `restricted`
/// or `privileged`. The checks read the manifest as written, so fields berth does not implement (host
/// namespaces, `privileged`, AppArmor, SELinux, sysctls) are held to the standard too.
public enum PodSecurity {
    public enum Level: String, Sendable, CaseIterable { case privileged, baseline, restricted }

    public static let enforceLabel = "pod-security.kubernetes.io/enforce"

    static let safeSysctls: Set<String> = [
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ]
    static let restrictedVolumes: Set<String> = [
        "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
    ]

    struct Finder {
        let level: Level
        var out: [(FieldPath, String)] = []

        mutating func fail(_ at: FieldPath, _ message: String) {
            out.append((at, "violates PodSecurity \"\(level.rawValue)\": \(message)"))
        }
    }

    /// The violations of one object's pod spec at `level`, as (field, message).
    static func check(_ document: YAMLNode, object: KubeObject, level: Level) -> [(FieldPath, String)] {
        guard level != .privileged, let specPath = object.podTemplate?.path.field("spec"), let spec = document.at(specPath) else { return [] }
        var f = Finder(level: level)
        for field in ["hostNetwork", "hostPID", "hostIPC"] where spec.child(field)?.isTrue == true {
            f.fail(specPath.field(field), "\(field)=true is not allowed (host namespaces)")
        }
        let podSC = spec.child("securityContext")
        let podSCPath = specPath.field("securityContext")
        checkCommonSecurityContext(podSC, podSCPath, &f)
        for (i, s) in (podSC?.child("sysctls")?.items ?? []).enumerated() {
            if let name = s.child("name")?.text, !safeSysctls.contains(name) {
                f.fail(podSCPath.field("sysctls").index(i).field("name"), "sysctl \(name) is not in the safe set")
            }
        }
        for (i, v) in (spec.child("volumes")?.items ?? []).enumerated() {
            let types = v.keys.filter { $0 != "name" }
            if types.contains("hostPath") {
                f.fail(specPath.field("volumes").index(i).field("hostPath"), "hostPath volumes are not allowed")
            } else if level == .restricted, let t = types.first(where: { !restrictedVolumes.contains($0) }) {
                f.fail(specPath.field("volumes").index(i).field(t), "volume type \(t) is not allowed")
            }
        }
        let podNonRoot = podSC?.child("runAsNonRoot")?.isTrue == true
        let podSeccomp = podSC?.child("seccompProfile")?.child("type")?.text
        for group in ["initContainers", "containers", "ephemeralContainers"] {
            for (i, c) in (spec.child(group)?.items ?? []).enumerated() {
                let cPath = specPath.field(group).index(i)
                let name = c.child("name")?.text ?? "\(group)[\(i)]"
                for (j, p) in (c.child("ports")?.items ?? []).enumerated() {
                    if let hp = p.child("hostPort"), hp.text != "0" {
                        f.fail(cPath.field("ports").index(j).field("hostPort"), "container \"\(name)\" must not set hostPort")
                    }
                }
                let sc = c.child("securityContext")
                let scPath = cPath.field("securityContext")
                if sc?.child("privileged")?.isTrue == true { f.fail(scPath.field("privileged"), "container \"\(name)\" must not set privileged=true") }
                if let pm = sc?.child("procMount")?.text, pm != "Default" {
                    f.fail(scPath.field("procMount"), "container \"\(name)\" must not set procMount=\(pm)")
                }
                checkCommonSecurityContext(sc, scPath, &f)
                let caps = sc?.child("capabilities")
                let added = (caps?.child("add")?.items ?? []).map { Capabilities.bare($0.text ?? "") }
                for (j, cap) in added.enumerated() {
                    let allowed = level == .restricted ? cap == "NET_BIND_SERVICE" : Capabilities.baseline.contains(cap)
                    if !allowed { f.fail(scPath.field("capabilities").field("add").index(j), "container \"\(name)\" must not add capability \(cap)") }
                }
                let nonRoot = sc?.child("runAsNonRoot")?.isTrue ?? podNonRoot
                let user = sc?.child("runAsUser")?.text ?? podSC?.child("runAsUser")?.text
                if nonRoot && user == "0" {
                    f.fail(scPath.field("runAsUser"), "container \"\(name)\" sets runAsNonRoot=true and runAsUser=0")
                }
                guard level == .restricted else { continue }
                if sc?.child("allowPrivilegeEscalation")?.isFalse != true {
                    f.fail(scPath.field("allowPrivilegeEscalation"), "container \"\(name)\" must set allowPrivilegeEscalation=false")
                }
                let dropsAll = (caps?.child("drop")?.items ?? []).contains { ($0.text ?? "").uppercased() == "ALL" }
                if !dropsAll { f.fail(scPath.field("capabilities").field("drop"), "container \"\(name)\" must drop capabilities [\"ALL\"]") }
                if !nonRoot { f.fail(scPath.field("runAsNonRoot"), "container \"\(name)\" (or the pod) must set runAsNonRoot=true") }
                let seccomp = sc?.child("seccompProfile")?.child("type")?.text ?? podSeccomp
                if seccomp != "RuntimeDefault" && seccomp != "Localhost" {
                    f.fail(scPath.field("seccompProfile"), "container \"\(name)\" (or the pod) must set seccompProfile.type to RuntimeDefault or Localhost")
                }
            }
        }
        return f.out
    }

    /// Checks that apply to the pod's and each container's securityContext alike.
    static func checkCommonSecurityContext(_ sc: YAMLNode?, _ path: FieldPath, _ f: inout Finder) {
        guard let sc else { return }
        if sc.child("seccompProfile")?.child("type")?.text == "Unconfined" {
            f.fail(path.field("seccompProfile").field("type"), "seccompProfile.type=Unconfined is not allowed")
        }
        if let t = sc.child("appArmorProfile")?.child("type")?.text, t != "RuntimeDefault" && t != "Localhost" {
            f.fail(path.field("appArmorProfile").field("type"), "appArmorProfile.type=\(t) is not allowed")
        }
        if let se = sc.child("seLinuxOptions") {
            if let t = se.child("type")?.text, !["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"].contains(t) {
                f.fail(path.field("seLinuxOptions").field("type"), "seLinuxOptions.type=\(t) is not allowed")
            }
            for k in ["user", "role"] where se.child(k) != nil { f.fail(path.field("seLinuxOptions").field(k), "seLinuxOptions.\(k) must not be set") }
        }
    }
}

extension YAMLNode {
    func child(_ key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = value, let p = pairs.last(where: { $0.key.scalarText == key }) else { return nil }
        return p.value.resolved == .null ? nil : p.value
    }
    var items: [YAMLNode] {
        if case .sequence(let list) = value { return list }
        return []
    }
    var keys: [String] {
        if case .mapping(let pairs) = value { return pairs.compactMap { $0.key.scalarText } }
        return []
    }
    var text: String? { scalarText }
    var isTrue: Bool { resolved == .bool(true) }
    var isFalse: Bool { resolved == .bool(false) }
    func at(_ path: FieldPath) -> YAMLNode? {
        var node: YAMLNode? = self
        for c in path.components {
            guard case .field(let name) = c else { return nil }
            node = node?.child(name)
        }
        return node
    }
}
