import BerthCluster
import BerthConcurrency
import BerthModel
import BerthStore
import Foundation

/// A node's input, as kubelet's and kube-proxy's are: a list, then a watch, of the pods bound to this node,
/// of what they need (ConfigMaps, Secrets, claims, Services with their addresses) and of the Services'
/// endpoints, all from the store. A compacted history lists again. Nothing else tells a node what to run.
public actor NodeFeed {
    let store: any Store
    public let nodeName: String
    private let decoder = JSONDecoder()
    private var bound: [ClusterKey: PodRecord] = [:]
    private var configs: [ClusterKey: ConfigRecord] = [:]
    private var endpoints: [ClusterKey: EndpointsRecord] = [:]
    private var podCIDRs: [ClusterKey: PodCIDRRecord] = [:]
    private var nodes: [ClusterKey: NodeRecord] = [:]
    private var settings: NetworkSettingsRecord?
    private var followed: [ClusterKey.Prefix: Int64] = [:]
    private var listed = false
    /// The revision each config's value (or removal) was read at.
    private var configRevisions: [ClusterKey: Int64] = [:]
    private var fetching: Task<Void, Never>?
    private let fetchWake = WakeSignal()
    /// Bumped by every change of what the node should run.
    public private(set) var version = 0
    private var following: Task<Void, Never>?
    private let changed: @Sendable () -> Void

    /// `changed` is called after each change (to wake the agent's loop).
    public init(store: any Store, nodeName: String, changed: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.nodeName = nodeName
        self.changed = changed
    }

    public func start() {
        guard following == nil else { return }
        following = Task { await self.follow() }
    }

    public func stop() {
        following?.cancel()
        following = nil
        fetching?.cancel()
        fetching = nil
    }

    /// The pods bound here that should run, and what they refer to; nil until the first list is read.
    public func desired() -> (pods: [Pod], view: ClusterView)? {
        guard listed else { return nil }
        let pods = bound.values.filter { !$0.terminating }.sorted { $0.key < $1.key }.map(Self.pod(from:))
        var view = ClusterView()
        for record in configs.values {
            switch record {
            case .configMap(let c): view.configMaps[ClusterView.key(c.metadata)] = c
            case .secret(let s): view.secrets[ClusterView.key(s.metadata)] = s
            case .claim(let c): view.claims[ClusterView.key(c.metadata)] = c
            case .service(let s): view.services.append(s)
            }
        }
        view.services.sort { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        for e in endpoints.values { view.endpoints[e.namespace + "/" + e.name] = e }
        return (pods, view)
    }

    /// The pod CIDR the control plane gave this node, or why it has none; nil until it decided.
    public func podCIDR() -> PodCIDRRecord? { podCIDRs[.podCIDR(nodeName)] }

    /// How pods reach other nodes, as the servers chose it; nil: routed.
    public func networkSettings() -> NetworkSettingsRecord? { settings }

    /// The other nodes' pod CIDRs and the addresses they are reached at (CIDR → address).
    public func peerRoutes() -> [String: String] {
        var out: [String: String] = [:]
        for r in podCIDRs.values where r.node != nodeName {
            if let cidr = r.cidr, let address = nodes[.node(r.node)]?.address { out[cidr] = address }
        }
        return out
    }

    /// Every pod bound here, those being stopped too (their node reports when they are gone).
    public func boundPods() -> [PodRecord] { bound.values.sorted { $0.key < $1.key } }

    static func pod(from r: PodRecord) -> Pod {
        var p = Pod()
        p.metadata = ObjectMeta(name: r.name, namespace: r.namespace, labels: r.labels)
        p.spec = r.spec
        return p
    }

    // MARK: following

    private func follow() async {
        while !Task.isCancelled {
            do {
                if !listed { try await list() }
                try await store.follow(Self.prefixes.map { ($0.path, followed[$0] ?? 0) }) { event, path in
                    guard let prefix = Self.prefixes.first(where: { $0.path == path }) else { return }
                    await self.ingest(event, under: prefix)
                }
            } catch let e as StoreError where e.code == .compacted {
                listed = false
            } catch {
                // The store is unreachable: pods keep running as they are; the watch resumes where it was.
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private static let prefixes = [ClusterKey.pods, ClusterKey.configs, ClusterKey.allEndpoints, ClusterKey.podCIDRs, ClusterKey.nodes, ClusterKey.network]

    private func list() async throws {
        let (pods, podsAt) = try await store.list(prefix: ClusterKey.pods.path)
        let (records, configsAt) = try await store.list(prefix: ClusterKey.configs.path)
        let (backends, endpointsAt) = try await store.list(prefix: ClusterKey.allEndpoints.path)
        let (networks, podCIDRsAt) = try await store.list(prefix: ClusterKey.podCIDRs.path)
        let (peers, nodesAt) = try await store.list(prefix: ClusterKey.nodes.path)
        let (networkValues, networkAt) = try await store.list(prefix: ClusterKey.network.path)
        settings = networkValues.first { $0.key == ClusterKey.networkSettings.path }.flatMap { try? decoder.decode(NetworkSettingsRecord.self, from: Data($0.value)) }
        bound = [:]
        for v in pods {
            // A record that does not decode is not the control plane's: it is left alone.
            if let p = try? decoder.decode(PodRecord.self, from: Data(v.value)), p.nodeName == nodeName { bound[p.key] = p }
        }
        configs = [:]
        configRevisions = [:]
        for v in records {
            if let r = try? decoder.decode(ConfigRecord.self, from: Data(v.value)) {
                configs[r.key] = r
                configRevisions[r.key] = v.modRevision
            }
        }
        endpoints = [:]
        for v in backends {
            if let e = try? decoder.decode(EndpointsRecord.self, from: Data(v.value)) { endpoints[e.key] = e }
        }
        podCIDRs = [:]
        for v in networks {
            if let r = try? decoder.decode(PodCIDRRecord.self, from: Data(v.value)) { podCIDRs[r.key] = r }
        }
        nodes = [:]
        for v in peers {
            if let r = try? decoder.decode(NodeRecord.self, from: Data(v.value)) { nodes[r.key] = r }
        }
        followed = [ClusterKey.pods: podsAt, ClusterKey.configs: configsAt, ClusterKey.allEndpoints: endpointsAt, ClusterKey.podCIDRs: podCIDRsAt,
                    ClusterKey.nodes: nodesAt, ClusterKey.network: networkAt]
        listed = true
        version += 1
        changed()
        fetchMissingConfigs()
    }

    private func ingest(_ event: WatchEvent, under prefix: ClusterKey.Prefix) {
        followed[prefix] = max(followed[prefix] ?? 0, event.revision)
        guard let key = ClusterKey(stored: event.key) else { return }
        var moved = false
        switch event {
        case .put(let value, _) where prefix == ClusterKey.pods:
            let p = try? decoder.decode(PodRecord.self, from: Data(value.value))
            let mine = p?.nodeName == nodeName ? p : nil
            moved = bound[key] != mine
            bound[key] = mine
        case .put(let value, _) where prefix == ClusterKey.podCIDRs:
            let r = try? decoder.decode(PodCIDRRecord.self, from: Data(value.value))
            moved = podCIDRs[key] != r
            podCIDRs[key] = r
        case .delete where prefix == ClusterKey.podCIDRs:
            moved = podCIDRs.removeValue(forKey: key) != nil
        case .put(let value, _) where prefix == ClusterKey.nodes:
            // Only a node's address matters here (routes); its heartbeat-free record rarely changes.
            let r = try? decoder.decode(NodeRecord.self, from: Data(value.value))
            moved = nodes[key]?.address != r?.address
            nodes[key] = r
        case .delete where prefix == ClusterKey.nodes:
            moved = nodes.removeValue(forKey: key)?.address != nil
        case .put(let value, _) where prefix == ClusterKey.network:
            guard key == .networkSettings else { return }
            let r = try? decoder.decode(NetworkSettingsRecord.self, from: Data(value.value))
            moved = settings != r
            settings = r
        case .delete where prefix == ClusterKey.network:
            moved = settings != nil
            settings = nil
        case .put(let value, _) where prefix == ClusterKey.allEndpoints:
            let e = try? decoder.decode(EndpointsRecord.self, from: Data(value.value))
            moved = endpoints[key] != e
            endpoints[key] = e
        case .put(let value, _):
            moved = takeConfig(key, value)
        case .delete where prefix == ClusterKey.pods:
            moved = bound.removeValue(forKey: key) != nil
        case .delete where prefix == ClusterKey.allEndpoints:
            moved = endpoints.removeValue(forKey: key) != nil
        case .delete:
            configRevisions[key] = event.revision
            moved = configs.removeValue(forKey: key) != nil
        }
        if prefix == ClusterKey.pods && moved { fetchMissingConfigs() }
        if moved {
            version += 1
            changed()
        }
    }

    /// A config's value, unless the feed has a later one (a read and the watch may cross).
    private func takeConfig(_ key: ClusterKey, _ value: StoredValue) -> Bool {
        guard value.modRevision > configRevisions[key] ?? 0 else { return false }
        configRevisions[key] = value.modRevision
        let r = try? decoder.decode(ConfigRecord.self, from: Data(value.value))
        defer { configs[key] = r }
        return configs[key] != r
    }

    // MARK: configs of newly bound pods
    // The servers send a node the changes of a ConfigMap or Secret only while a pod bound to it refers to
    // it: one made before is read here, when the pod arrives.

    /// The ConfigMaps, Secrets and claims the bound pods refer to.
    private var wantedConfigs: Set<ClusterKey> {
        Set(bound.values.flatMap { NodeAccess.configs(of: $0) }.compactMap(ClusterKey.init(stored:)))
    }

    /// Drops the configs no bound pod refers to any more (the servers stop sending their changes, so a pod
    /// that refers to one later reads it afresh), and reads those missing.
    private func fetchMissingConfigs() {
        guard listed else { return }
        let wanted = wantedConfigs
        for key in Set(configs.keys).union(configRevisions.keys) where !wanted.contains(key) && !NodeAccess.isShared(config: key.path) {
            configs[key] = nil
            configRevisions[key] = nil
        }
        guard fetching == nil else {
            let wake = fetchWake
            Task { await wake.signal() }
            return
        }
        fetching = Task { await self.fetchConfigs() }
    }

    private func fetchConfigs() async {
        defer { fetching = nil }
        var retry: [ClusterKey: (at: ContinuousClock.Instant, delay: Duration)] = [:]
        while !Task.isCancelled {
            let missing = wantedConfigs.subtracting(configs.keys).sorted { $0.path < $1.path }
            retry = retry.filter { missing.contains($0.key) }
            guard !missing.isEmpty else { return }
            var moved = false
            for key in missing where (retry[key]?.at ?? .now) <= .now {
                if let value = try? await store.get(key.path), takeConfig(key, value) {
                    moved = true
                    retry[key] = nil
                } else {
                    // Not there (yet, or the server has not granted it yet): again later, less often.
                    let delay = min((retry[key]?.delay ?? .milliseconds(100)) * 2, .seconds(30))
                    retry[key] = (.now + delay, delay)
                }
            }
            if moved {
                version += 1
                changed()
            }
            // Until the next retry, or a newly bound pod.
            await fetchWake.wait(upTo: (retry.values.map(\.at).min() ?? .now) - .now)
        }
    }
}
