import BerthModel
import Foundation

extension ObjectDecoder {
    static func checkKeys(_ keys: some Sequence<String>, _ r: MapReader, _ field: String) {
        for k in keys {
            if let why = Names.configKey(k) { r.ctx.error("invalid key \"\(k)\": \(why)", field: r.path.field(field).key(k)) }
        }
    }

    /// Kubernetes' base64 (standard alphabet, padded); line breaks are allowed as in a folded block.
    static func base64(_ node: YAMLNode, _ r: MapReader, field: FieldPath) -> [UInt8]? {
        guard let text = MapReader.string(node, ctx: r.ctx, field: field, redact: true) else { return nil }
        let compact = text.filter { $0 != "\n" && $0 != "\r" }
        guard let data = Data(base64Encoded: compact) else {
            r.ctx.error("value is not valid base64", at: node.mark, field: field)
            return nil
        }
        return [UInt8](data)
    }

    static func configMap(_ r: MapReader, meta: ObjectMeta) -> ConfigMap {
        var c = ConfigMap()
        c.metadata = meta
        c.data = r.stringMap("data") ?? [:]
        checkKeys(c.data.keys, r, "data")
        for e in r.entries("binaryData") ?? [] {
            let field = r.path.field("binaryData").key(e.key)
            if let why = Names.configKey(e.key) { r.ctx.error("invalid key \"\(e.key)\": \(why)", at: e.keyMark, field: field) }
            if c.data[e.key] != nil {
                r.ctx.error("key \"\(e.key)\" is in both data and binaryData", at: e.keyMark, field: field)
            }
            if let bytes = base64(e.value, r, field: field) { c.binaryData[e.key] = bytes }
        }
        c.immutable = r.bool("immutable") ?? false
        checkSize(c.data.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } + c.binaryData.reduce(0) { $0 + $1.value.count }, r)
        return c
    }

    static func secret(_ r: MapReader, meta: ObjectMeta) -> Secret {
        var s = Secret()
        s.metadata = meta
        s.type = r.string("type") ?? "Opaque"
        let dataEntries = r.entries("data") ?? []
        for e in dataEntries {
            let field = r.path.field("data").key(e.key)
            if let why = Names.configKey(e.key) { r.ctx.error("invalid key \"\(e.key)\": \(why)", at: e.keyMark, field: field) }
            if let bytes = base64(e.value, r, field: field) { s.data[e.key] = bytes }
        }
        let stringData = r.stringMap("stringData", redact: true) ?? [:]
        checkKeys(stringData.keys, r, "stringData")
        for (k, v) in stringData { s.data[k] = Array(v.utf8) }
        s.immutable = r.bool("immutable") ?? false
        checkSize(s.data.reduce(0) { $0 + $1.key.utf8.count + $1.value.count }, r)
        if s.type == "kubernetes.io/dockerconfigjson", let why = DockerConfigJSON.problem(s.data[".dockerconfigjson"]) {
            // Placed at the key (or the type), never at the value: it holds credentials.
            let key = ".dockerconfigjson"
            if let entry = dataEntries.first(where: { $0.key == key }) {
                r.ctx.error("a kubernetes.io/dockerconfigjson Secret \(why)", at: entry.keyMark, field: r.path.field("data").key(key))
            } else if stringData[key] != nil {
                r.ctx.error("a kubernetes.io/dockerconfigjson Secret \(why)", at: r.mark("stringData"), field: r.path.field("stringData").key(key))
            } else {
                r.error("type", "a kubernetes.io/dockerconfigjson Secret \(why)")
            }
        }
        return s
    }

    static func checkSize(_ total: Int, _ r: MapReader) {
        if total > 1 << 20 {
            r.ctx.error("data totals \(total) bytes, more than the limit of 1 MiB", at: r.node.mark, field: .root)
        }
    }

    static func service(_ r: MapReader) -> Service {
        var s = Service()
        r.ignore("clusterIPs", "externalIPs", "sessionAffinity", "sessionAffinityConfig", "externalTrafficPolicy",
                 "internalTrafficPolicy", "ipFamilies", "ipFamilyPolicy", "loadBalancerIP", "loadBalancerSourceRanges",
                 "externalName", "publishNotReadyAddresses", "healthCheckNodePort", "allocateLoadBalancerNodePorts",
                 "loadBalancerClass", "trafficDistribution")
        if let type = r.string("type") {
            if let t = Service.ServiceType(rawValue: type) {
                s.type = t
            } else if type == "LoadBalancer" || type == "ExternalName" {
                r.error("type", "Service type \(type) is not supported by berth; use ClusterIP or NodePort")
            } else {
                r.error("type", "unsupported value \"\(type)\": must be ClusterIP or NodePort")
            }
        }
        s.selector = labels(r, "selector")
        if let ip = r.string("clusterIP"), !ip.isEmpty {
            s.clusterIP = ip
            if ip != "None" && !isIPv4(ip) { r.error("clusterIP", "\"\(ip)\" is not an IPv4 address or None") }
        }
        s.ports = r.objects("ports", required: true) { servicePort($0, type: s.type) } ?? []
        var names = Set<String>()
        var numbers = Set<String>()
        for (i, p) in s.ports.enumerated() {
            let here = r.path.field("ports").index(i)
            if s.ports.count > 1 && p.name == nil {
                r.ctx.error("ports need names when a Service has more than one", field: here)
            }
            if let n = p.name, !names.insert(n).inserted {
                r.ctx.error("port name \"\(n)\" is used twice", field: here.field("name"))
            }
            if p.port > 0 && !numbers.insert("\(p.port)/\(p.protocol.rawValue)").inserted {
                r.ctx.error("port \(p.port)/\(p.protocol.rawValue) is used twice", field: here.field("port"))
            }
        }
        return s
    }

    static func servicePort(_ r: MapReader, type: Service.ServiceType) -> Service.Port {
        var p = Service.Port()
        r.ignore("appProtocol")
        if let name = r.string("name") {
            p.name = name
            if let why = Names.dns1123Label(name) { r.error("name", "invalid port name \"\(name)\": \(why)") }
        }
        p.port = r.int("port", required: true, min: 1, max: 65535) ?? 0
        p.protocol = r.enumeration("protocol", PortProtocol.self) ?? .tcp
        if let t = r.intOrString("targetPort") {
            switch t {
            case .int(let n) where n < 1 || n > 65535:
                r.error("targetPort", "must be between 1 and 65535, not \(n)")
            case .string(let name) where Names.portName(name) != nil:
                if let n = Int(name) {
                    r.error("targetPort", "\"\(name)\" is a quoted number; write it unquoted (\(n)) or use a port name")
                } else {
                    r.error("targetPort", "invalid port name \"\(name)\": \(Names.portName(name)!)")
                }
            default:
                p.targetPort = t
            }
        }
        p.nodePort = r.int("nodePort", min: 30000, max: 32767)
        if p.nodePort != nil && type != .nodePort {
            r.error("nodePort", "nodePort may be set only when the Service type is NodePort")
        }
        return p
    }

    static func isIPv4(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in
            guard let n = Int(p), p.count <= 3, p.allSatisfy(\.isASCII) else { return false }
            return (0...255).contains(n) && !(p.count > 1 && p.hasPrefix("0"))
        }
    }

    static func persistentVolumeClaim(_ r: MapReader) -> PersistentVolumeClaim {
        var c = PersistentVolumeClaim()
        r.ignore("storageClassName", "volumeMode", "volumeName", "selector", "dataSource", "dataSourceRef",
                 "volumeAttributesClassName")
        c.accessModes = (r.sequence("accessModes", required: true) ?? []).enumerated().compactMap { i, node in
            let field = r.path.field("accessModes").index(i)
            guard let s = MapReader.string(node, ctx: r.ctx, field: field) else { return nil }
            guard let mode = PersistentVolumeClaim.AccessMode(rawValue: s) else {
                let allowed = PersistentVolumeClaim.AccessMode.allCases.map(\.rawValue)
                r.ctx.error("unsupported value \"\(s)\": must be one of \(allowed.joined(separator: ", "))", at: node.mark, field: field)
                return nil
            }
            return mode
        }
        r.object("resources", required: true) { res in
            res.ignore("limits")
            res.object("requests", required: true) { req in
                c.storage = req.quantity("storage", required: true) ?? c.storage
            }
        }
        return c
    }

    static func autoscaler(_ r: MapReader) -> HorizontalPodAutoscaler {
        var h = HorizontalPodAutoscaler()
        h.scaleTarget = r.object("scaleTargetRef", required: true) { t in
            var target = HorizontalPodAutoscaler.ScaleTarget()
            target.apiVersion = t.string("apiVersion") ?? ""
            target.kind = t.string("kind", required: true) ?? ""
            target.name = t.string("name", required: true) ?? ""
            if !target.kind.isEmpty && target.kind != "Deployment" {
                t.error("kind", "berth scales Deployments only, not \(target.kind)")
            } else if !target.apiVersion.isEmpty && target.apiVersion != "apps/v1" {
                t.error("apiVersion", "a Deployment's apiVersion is apps/v1, not \(target.apiVersion)")
            }
            return target
        } ?? h.scaleTarget
        h.minReplicas = r.int("minReplicas", min: 1) ?? 1
        h.maxReplicas = r.int("maxReplicas", required: true, min: 1) ?? 0
        if h.maxReplicas > 0 && h.maxReplicas < h.minReplicas {
            r.error("maxReplicas", "maxReplicas (\(h.maxReplicas)) must not be less than minReplicas (\(h.minReplicas))")
        }
        let metrics = r.objects("metrics") { m -> Int? in
            m.ignore("pods", "object", "external", "containerResource")
            guard let type = m.string("type", required: true) else { return nil }
            guard type == "Resource" else {
                m.error("type", "berth supports metrics of type Resource (cpu), not \(type)")
                return nil
            }
            return m.object("resource", required: true) { res -> Int? in
                let name = res.string("name", required: true)
                if let name, name != "cpu" { res.error("name", "berth autoscales on cpu only, not \(name)") }
                return res.object("target", required: true) { t -> Int? in
                    t.ignore("averageValue", "value")
                    let type = t.string("type", required: true)
                    if let type, type != "Utilization" {
                        t.error("type", "berth supports target type Utilization, not \(type)")
                        return nil
                    }
                    return t.int("averageUtilization", required: true, min: 1)
                } ?? nil
            } ?? nil
        } ?? []
        if metrics.count > 1 { r.error("metrics", "berth supports one metric (cpu utilization)") }
        if let first = metrics.first, let target = first { h.targetCPUUtilization = target }
        r.object("behavior") { b in
            h.scaleUp = b.object("scaleUp") { scalingRules($0) }
            h.scaleDown = b.object("scaleDown") { scalingRules($0) }
        }
        return h
    }

    static func scalingRules(_ r: MapReader) -> HorizontalPodAutoscaler.ScalingRules {
        var rules = HorizontalPodAutoscaler.ScalingRules()
        rules.stabilizationWindowSeconds = r.int("stabilizationWindowSeconds", min: 0, max: 3600)
        rules.selectPolicy = r.enumeration("selectPolicy", HorizontalPodAutoscaler.ScalingRules.SelectPolicy.self) ?? .max
        rules.policies = r.objects("policies") { p in
            var policy = HorizontalPodAutoscaler.ScalingPolicy()
            policy.type = p.enumeration("type", HorizontalPodAutoscaler.ScalingPolicy.PolicyType.self, required: true) ?? .pods
            policy.value = p.int("value", required: true, min: 1) ?? 0
            policy.periodSeconds = p.int("periodSeconds", required: true, min: 1, max: 1800) ?? 0
            return policy
        } ?? []
        return rules
    }
}
