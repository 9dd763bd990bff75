import BerthModel

extension ObjectDecoder {
    static let capabilityNames: Set<String> = [
        "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
        "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
        "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
        "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT",
        "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE",
        "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM", "ALL",
    ]

    static let fieldRefPaths = ["metadata.name", "metadata.namespace", "status.podIP", "spec.nodeName"]

    static func podTemplate(_ r: MapReader) -> PodTemplateSpec {
        var t = PodTemplateSpec()
        r.object("metadata") { m in
            m.ignore("name", "namespace", "generateName", "creationTimestamp", "uid", "finalizers", "ownerReferences")
            t.labels = labels(m, "labels")
            t.annotations = annotations(m)
        }
        t.spec = r.object("spec", required: true) { podSpec($0) } ?? PodSpec()
        return t
    }

    static func podSpec(_ r: MapReader) -> PodSpec {
        var p = PodSpec()
        r.ignore("serviceAccountName", "serviceAccount", "automountServiceAccountToken", "hostNetwork", "hostPID",
                 "hostIPC", "dnsPolicy", "dnsConfig", "priorityClassName",
                 "priority", "schedulerName", "topologySpreadConstraints", "hostAliases", "hostname", "subdomain",
                 "shareProcessNamespace", "enableServiceLinks", "preemptionPolicy", "runtimeClassName", "overhead",
                 "readinessGates", "activeDeadlineSeconds", "nodeName", "os", "setHostnameAsFQDN",
                 "ephemeralContainers", "schedulingGates", "resourceClaims", "hostUsers")
        p.volumes = r.objects("volumes") { volume($0) } ?? []
        p.initContainers = r.objects("initContainers") { container($0, isInit: true) } ?? []
        p.containers = r.objects("containers", required: true) { container($0, isInit: false) } ?? []
        p.nodeSelector = labels(r, "nodeSelector")
        r.object("affinity") { a in
            a.ignore("podAffinity", "podAntiAffinity")
            a.object("nodeAffinity") { n in
                n.ignore("preferredDuringSchedulingIgnoredDuringExecution")
                n.object("requiredDuringSchedulingIgnoredDuringExecution") { req in
                    p.nodeAffinity = req.objects("nodeSelectorTerms", required: true) { nodeSelectorTerm($0) } ?? []
                }
            }
        }
        p.tolerations = r.objects("tolerations") { toleration($0) } ?? []
        p.imagePullSecrets = r.objects("imagePullSecrets") { $0.string("name", required: true) ?? "" }
        p.restartPolicy = r.enumeration("restartPolicy", RestartPolicy.self)
        p.terminationGracePeriodSeconds = r.int("terminationGracePeriodSeconds", min: 0)
        p.securityContext = r.object("securityContext") { s in
            s.ignore("fsGroup", "fsGroupChangePolicy", "supplementalGroups", "supplementalGroupsPolicy", "seccompProfile",
                     "seLinuxOptions", "seLinuxChangePolicy", "sysctls", "windowsOptions", "appArmorProfile")
            var sc = PodSecurityContext()
            sc.runAsUser = s.int("runAsUser", min: 0, max: Int(UInt32.max) - 1)
            sc.runAsGroup = s.int("runAsGroup", min: 0, max: Int(UInt32.max) - 1)
            sc.runAsNonRoot = s.bool("runAsNonRoot")
            return sc
        }
        checkPod(p, r)
        return p
    }

    /// Checks that span the containers and volumes of one pod.
    static func checkPod(_ p: PodSpec, _ r: MapReader) {
        var containerNames: [String: FieldPath] = [:]
        let groups: [(String, [Container])] = [("initContainers", p.initContainers), ("containers", p.containers)]
        for (field, list) in groups {
            for (i, c) in list.enumerated() where !c.name.isEmpty {
                let here = r.path.field(field).index(i).field("name")
                if let first = containerNames[c.name] {
                    r.ctx.error("container name \"\(c.name)\" is used twice (also at \(first))", field: here)
                } else {
                    containerNames[c.name] = here
                }
            }
        }
        var volumeNames = Set<String>()
        for (i, v) in p.volumes.enumerated() where !v.name.isEmpty {
            if !volumeNames.insert(v.name).inserted {
                r.ctx.error("volume name \"\(v.name)\" is used twice", field: r.path.field("volumes").index(i).field("name"))
            }
        }
        for (field, list) in groups {
            for (i, c) in list.enumerated() {
                for (j, m) in c.volumeMounts.enumerated() where !m.name.isEmpty && !volumeNames.contains(m.name) {
                    var message = "volume \"\(m.name)\" is not defined in this pod's volumes"
                    if let near = Names.suggestion(for: m.name, among: volumeNames) { message += " (did you mean \"\(near)\"?)" }
                    r.ctx.error(message, field: r.path.field(field).index(i).field("volumeMounts").index(j).field("name"))
                }
            }
        }
    }

    static func nodeSelectorTerm(_ r: MapReader) -> NodeSelectorTerm {
        var t = NodeSelectorTerm()
        r.ignore("matchFields")
        t.matchExpressions = r.objects("matchExpressions") { e in
            var req = NodeSelectorTerm.Requirement()
            req.key = e.string("key", required: true) ?? ""
            req.op = e.enumeration("operator", NodeSelectorTerm.Operator.self, required: true) ?? .in
            req.values = e.stringList("values") ?? []
            switch req.op {
            case .in, .notIn:
                if req.values.isEmpty { e.error("values", "values must not be empty for operator \(req.op.rawValue)") }
            case .exists, .doesNotExist:
                if !req.values.isEmpty { e.error("values", "values must be empty for operator \(req.op.rawValue)") }
            case .gt, .lt:
                if req.values.count != 1 || Int(req.values[0]) == nil {
                    e.error("values", "operator \(req.op.rawValue) takes exactly one integer value")
                }
            }
            return req
        } ?? []
        return t
    }

    static func toleration(_ r: MapReader) -> Toleration {
        var t = Toleration()
        t.key = r.string("key")
        t.op = r.enumeration("operator", Toleration.Operator.self) ?? .equal
        t.value = r.string("value")
        t.effect = r.enumeration("effect", Toleration.Effect.self)
        t.tolerationSeconds = r.int("tolerationSeconds")
        if t.op == .exists, let v = t.value, !v.isEmpty {
            r.error("value", "value must be empty when operator is Exists")
        }
        if (t.key ?? "").isEmpty && t.op != .exists {
            r.error("operator", "operator must be Exists when key is empty")
        }
        if t.tolerationSeconds != nil && t.effect != .noExecute {
            r.error("tolerationSeconds", "tolerationSeconds applies only to effect NoExecute")
        }
        return t
    }

    static func volume(_ r: MapReader) -> Volume {
        var v = Volume()
        r.ignore("nfs", "projected", "csi", "ephemeral", "iscsi", "rbd", "cephfs", "glusterfs",
                 "awsElasticBlockStore", "gcePersistentDisk", "azureDisk", "azureFile", "fc", "flexVolume",
                 "flocker", "gitRepo", "image", "portworxVolume", "quobyte", "scaleIO", "storageos",
                 "vsphereVolume", "photonPersistentDisk", "cinder")
        if let name = r.string("name", required: true) {
            v.name = name
            if let why = Names.dns1123Label(name) { r.error("name", "invalid volume name \"\(name)\": \(why)") }
        }
        let emptyDir = r.object("emptyDir") { e -> Volume.Source in
            let medium = e.string("medium")
            if let medium, medium != "" && medium != "Memory" {
                e.error("medium", "unsupported value \"\(medium)\": must be \"\" or Memory")
            }
            return .emptyDir(medium: medium, sizeLimit: e.quantity("sizeLimit"))
        }
        let configMap = r.object("configMap") { c in Volume.Source.configMap(projected(c, nameField: "name")) }
        let secret = r.object("secret") { c in Volume.Source.secret(projected(c, nameField: "secretName")) }
        let claim = r.object("persistentVolumeClaim") { c in
            Volume.Source.persistentVolumeClaim(claimName: c.string("claimName", required: true) ?? "",
                                                readOnly: c.bool("readOnly") ?? false)
        }
        let hostPath = r.object("hostPath") { h -> Volume.Source in
            let path = h.string("path", required: true) ?? ""
            if !path.isEmpty && !path.hasPrefix("/") { h.error("path", "must be an absolute path") }
            let type = h.string("type")
            let types = ["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"]
            if let type, !types.contains(type) {
                h.error("type", "unsupported value \"\(type)\": must be one of \(types.dropFirst().joined(separator: ", "))")
            }
            return .hostPath(path: path, type: type)
        }
        let downward = r.object("downwardAPI") { d -> Volume.Source in
            var files = DownwardAPIFiles()
            files.defaultMode = d.int("defaultMode", min: 0, max: 0o777)
            files.items = d.objects("items") { i in
                var item = DownwardAPIFiles.Item()
                i.ignore("resourceFieldRef")
                item.path = i.string("path", required: true) ?? ""
                if let why = relativePathProblem(item.path) { i.error("path", why) }
                item.mode = i.int("mode", min: 0, max: 0o777)
                i.object("fieldRef", required: !i.has("resourceFieldRef")) { f in
                    f.ignore("apiVersion")
                    item.fieldPath = f.string("fieldPath", required: true) ?? ""
                    if !item.fieldPath.isEmpty && !DownwardAPIFiles.isSupported(item.fieldPath) {
                        f.error("fieldPath", "unsupported fieldPath \"\(item.fieldPath)\": a downwardAPI volume takes metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations or metadata.labels['KEY'] / metadata.annotations['KEY']")
                    }
                }
                return item
            } ?? []
            return .downwardAPI(files)
        }
        v.source = r.exactlyOne("a volume takes one source",
                                [("emptyDir", emptyDir), ("configMap", configMap), ("secret", secret),
                                 ("persistentVolumeClaim", claim), ("hostPath", hostPath), ("downwardAPI", downward)],
                                noneMessage: "volume has no source berth supports: one of emptyDir, configMap, secret, persistentVolumeClaim, hostPath, downwardAPI")
            ?? v.source
        return v
    }

    static func projected(_ r: MapReader, nameField: String) -> ProjectedKeys {
        var p = ProjectedKeys()
        p.name = r.string(nameField, required: true) ?? ""
        p.optional = r.bool("optional") ?? false
        p.defaultMode = r.int("defaultMode", min: 0, max: 0o777)
        p.items = r.objects("items") { i in
            var item = ProjectedKeys.Item()
            item.key = i.string("key", required: true) ?? ""
            item.path = i.string("path", required: true) ?? ""
            item.mode = i.int("mode", min: 0, max: 0o777)
            if let why = relativePathProblem(item.path) { i.error("path", why) }
            return item
        } ?? []
        return p
    }

    /// A path that must stay inside the directory it is joined to.
    static func relativePathProblem(_ path: String) -> String? {
        if path.isEmpty { return "must not be empty" }
        if path.hasPrefix("/") { return "must be a relative path" }
        if path.split(separator: "/").contains("..") { return "must not contain '..'" }
        return nil
    }
}
