import BerthCluster
import BerthModel
import Testing

/// A node may read the ConfigMaps, Secrets and claims its pods refer to, while they are bound to it.
@Suite struct ConfigGrantsTests {
    func pod(_ name: String, node: String?, secret: String, optionalConfigMap: String? = nil) -> PodRecord {
        var spec = PodSpec()
        var c = Container()
        c.name = "main"
        var e = EnvVar()
        e.name = "KEY"
        var ref = KeySelector()
        ref.name = secret
        ref.key = "key"
        e.valueFrom = .secretKeyRef(ref)
        c.env = [e]
        if let optionalConfigMap {
            var from = EnvFromSource()
            from.source = .configMap(name: optionalConfigMap, optional: true)
            c.envFrom = [from]
        }
        spec.containers = [c]
        var p = PodRecord(namespace: "shop", name: name, ownerKind: "Deployment", ownerName: "web", revisionHash: "h", labels: [:], spec: spec, createdAt: 0)
        p.nodeName = node
        return p
    }

    @Test func grantsFollowThePodsBoundToEachNode() {
        let grants = ConfigGrants()
        let secret = "config/shop/Secret/db", settings = "config/shop/ConfigMap/settings"
        grants.reset([(pod("a", node: "n1", secret: "db", optionalConfigMap: "settings"), 5), (pod("b", node: nil, secret: "other"), 6)])
        #expect(grants.node(ofPod: "shop/a", at: 5) == "n1" && grants.node(ofPod: "shop/a", at: 4) == nil && grants.node(ofPod: "shop/b", at: 6) == nil)
        #expect(grants.allows("n1", secret) && grants.allows("n1", settings))
        #expect(!grants.allows("n2", secret) && !grants.allows("n1", "config/shop/Secret/other") && !grants.allows("n1", "config/default/Secret/db"))
        // Every node reads every Service.
        #expect(grants.allows("n2", "config/shop/Service/web"))
        // Two pods on n1 refer to db: it stays granted until both are gone from n1.
        grants.update(pod: "shop/c", to: pod("c", node: "n1", secret: "db"), revision: 7)
        grants.update(pod: "shop/a", to: pod("a", node: "n2", secret: "db", optionalConfigMap: "settings"), revision: 8)
        #expect(grants.allows("n1", secret) && !grants.allows("n1", settings) && grants.allows("n2", settings))
        grants.update(pod: "shop/c", to: nil, revision: 9)
        #expect(!grants.allows("n1", secret) && grants.allows("n2", secret))
        grants.reset([])
        #expect(!grants.allows("n2", secret))
    }
}
