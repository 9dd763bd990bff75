import BerthCluster
import BerthStore
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The servers' API for agents (DESIGN §1): over TLS with the cluster CA, a node joins with the join
/// secret and gets a credential of its own; with it, it makes the store calls of `NodeAPIStore`, each
/// checked against `NodeAccess`. A refused call answers 403 and changes nothing.
public final class NodeAPI: Sendable {
    let store: any Store
    public let ca: ClusterCA
    let logger: Logger
    /// Leases granted through this server, by node: a node keeps alive and revokes only its own.
    private let granted = Mutex<[Int64: String]>([:])
    /// Credential hashes read from the store, with when (a removed node is refused within seconds).
    private let credentials = Mutex<[String: (hash: String, at: ContinuousClock.Instant)]>([:])
    /// How often a watch says it is alive when nothing changes.
    let progressInterval: Duration
    /// The agents' watches of each prefix they follow share one store watch; a pod change is decoded
    /// once, for the nodes it was and is bound to.
    let shared: [String: SharedWatch<Binding>]
    /// The ConfigMaps, Secrets and claims each node may read, kept by the pods' shared watch.
    let grants = ConfigGrants()

    /// Whom a change concerns: a pod's, the node it is bound to and the one it was (which drops it); a
    /// config's other than a Service's, the nodes its grants name; anything else, every node.
    struct Binding: Sendable {
        var pod = false
        var now: String?
        var before: String?
        var config: String?
    }

    public init(store: any Store, ca: ClusterCA, logger: Logger, progressInterval: Duration = .seconds(5)) {
        self.store = store
        self.ca = ca
        self.logger = logger
        self.progressInterval = progressInterval
        let grants = grants
        var shared: [String: SharedWatch<Binding>] = [:]
        for prefix in NodeAccess.readable where prefix != ClusterKey.pods {
            shared[prefix.path] = SharedWatch(store: store, prefix: prefix.path) { Self.binding($0) }
        }
        // The pods' watch keeps the grants: a node hears of a pod bound to it only once its configs are granted.
        shared[ClusterKey.pods.path] = SharedWatch(store: store, prefix: ClusterKey.pods.path, seed: { values in
            grants.reset(values.compactMap { v in Self.pod(v.value).map { ($0, v.modRevision) } })
        }, tag: { e in
            guard let key = Self.podKey(e.key) else { return Binding() }
            var record: PodRecord?
            if case .put(let v, _) = e { record = Self.pod(v.value) }
            // The grants had the pod's previous version: it is not decoded again.
            let before = grants.update(pod: key, to: record, revision: e.revision)
            return Binding(pod: true, now: record?.nodeName, before: before)
        })
        self.shared = shared
    }

    /// Ends the shared watches (the server stops).
    public func stop() {
        for s in shared.values { s.stop() }
    }

    /// Whom the change concerns.
    static func binding(_ e: WatchEvent) -> Binding {
        if e.key.hasPrefix(ClusterKey.pods.path) {
            switch e {
            case .put(let v, let previous):
                return Binding(pod: true, now: pod(v.value)?.nodeName, before: previous.flatMap { pod($0.value)?.nodeName })
            case .delete(_, _, let previous):
                return Binding(pod: true, now: nil, before: pod(previous.value)?.nodeName)
            }
        }
        if e.key.hasPrefix(ClusterKey.configs.path) && !NodeAccess.isShared(config: e.key) { return Binding(config: e.key) }
        return Binding()
    }

    func visible(_ b: Binding, to node: String) -> Bool {
        if b.pod { return b.now == node || b.before == node }
        if let config = b.config { return grants.allows(node, config) }
        return true
    }

    /// A value a node may read: a pod bound to it, a config its pods refer to, anything else readable.
    /// A pod the grants have at this revision is not decoded again (an agent lists every pod).
    func visible(_ v: StoredValue, to node: String) -> Bool {
        if v.key.hasPrefix(ClusterKey.pods.path) {
            if let key = Self.podKey(v.key), let bound = grants.node(ofPod: key, at: v.modRevision) { return bound == node }
            return Self.pod(v.value)?.nodeName == node
        }
        if v.key.hasPrefix(ClusterKey.configs.path) { return grants.allows(node, v.key) }
        return true
    }

    /// Reads of configs are answered once the grants are known (the pods' shared watch started).
    func readyToGrant(_ path: String) async throws(Refused) {
        guard path.hasPrefix(ClusterKey.configs.path) || ClusterKey.configs.path.hasPrefix(path) else { return }
        try await storeCall { try await self.shared[ClusterKey.pods.path]?.start() }
    }

    struct Refused: Error {
        var status: HTTPResponse.Status
        var failure: NodeAPIWire.Failure
        init(_ status: HTTPResponse.Status, _ code: StoreError.Code, _ message: String) {
            self.status = status
            failure = NodeAPIWire.Failure(code: code.rawValue, message: message)
        }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/cacerts") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/x-pem-file"], body: .init(byteBuffer: ByteBuffer(string: self.ca.secrets.caCertificatePEM)))
        }
        let p = NodeAPIWire.prefix
        router.post(RouterPath(p + "/join")) { request, _ in
            try await self.answer { () async throws(Refused) in try await self.join(try await Self.decode(request, NodeAPIWire.Join.self)) }
        }
        router.get(RouterPath(p + "/list")) { request, _ in
            try await self.answer { () async throws(Refused) in
                let node = try await self.authenticate(request)
                let prefix = request.uri.queryParameters["prefix"].map(String.init) ?? ""
                try Self.checkRead(prefix, by: node)
                try await self.readyToGrant(prefix)
                let (values, revision) = try await self.storeCall { try await self.store.list(prefix: prefix) }
                return NodeAPIWire.List(values: values.filter { self.visible($0, to: node) }.map(NodeAPIWire.Value.init), revision: revision)
            }
        }
        router.get(RouterPath(p + "/get")) { request, _ in
            try await self.answer { () async throws(Refused) in
                let node = try await self.authenticate(request)
                let key = request.uri.queryParameters["key"].map(String.init) ?? ""
                try Self.checkRead(key, by: node)
                try await self.readyToGrant(key)
                let value = try await self.storeCall { try await self.store.get(key) }
                return NodeAPIWire.Got(value: value.flatMap { self.visible($0, to: node) ? NodeAPIWire.Value($0) : nil })
            }
        }
        router.get(RouterPath(p + "/revision")) { request, _ in
            try await self.answer { () async throws(Refused) in
                _ = try await self.authenticate(request)
                return NodeAPIWire.Revision(revision: try await self.storeCall { try await self.store.revision })
            }
        }
        router.post(RouterPath(p + "/txn")) { request, _ in
            try await self.answer { () async throws(Refused) in
                let node = try await self.authenticate(request)
                let txn = try await Self.decode(request, NodeAPIWire.Txn.self)
                for w in txn.writes { try await self.checkWrite(w.key, w.value, lease: w.lease, by: node) }
                let results = try await self.storeCall { try await self.store.txn(txn.writes.map(\.write), fence: nil) }
                return NodeAPIWire.TxnAnswer(results: results.map(NodeAPIWire.Swap.init))
            }
        }
        router.post(RouterPath(p + "/put")) { request, _ in
            try await self.answer { () async throws(Refused) in
                let node = try await self.authenticate(request)
                let put = try await Self.decode(request, NodeAPIWire.Put.self)
                guard case .success(.lease) = NodeAccess.target(write: put.key, by: node) else {
                    throw Refused(.forbidden, .forbidden, "node \(node) may write \(put.key) only by compare-and-swap")
                }
                try await self.checkWrite(put.key, put.value, lease: put.lease, by: node)
                let revision = try await self.storeCall { try await self.store.put(put.key, Array(put.value), lease: put.lease.map(LeaseID.init)) }
                return NodeAPIWire.Revision(revision: revision)
            }
        }
        router.post(RouterPath(p + "/lease/grant")) { request, _ in
            try await self.answer { () async throws(Refused) in
                let node = try await self.authenticate(request)
                let ttl = try await Self.decode(request, NodeAPIWire.Lease.self).ttl ?? 0
                guard (1...300).contains(ttl) else { throw Refused(.badRequest, .invalid, "a node's lease lasts 1 to 300 s, not \(ttl)") }
                let lease = try await self.storeCall { try await self.store.grantLease(ttl: ttl) }
                self.granted.withLock { $0[lease.raw] = node }
                return NodeAPIWire.Lease(id: lease.raw)
            }
        }
        for action in ["keepalive", "revoke"] {
            router.post(RouterPath(p + "/lease/" + action)) { request, _ in
                try await self.answer { () async throws(Refused) in
                    let node = try await self.authenticate(request)
                    let id = try await Self.decode(request, NodeAPIWire.Lease.self).id ?? 0
                    try await self.checkLease(id, of: node)
                    if action == "revoke" {
                        try await self.storeCall { try await self.store.revokeLease(LeaseID(id)) }
                        self.granted.withLock { _ = $0.removeValue(forKey: id) }
                    } else {
                        try await self.storeCall { try await self.store.keepAlive(LeaseID(id)) }
                    }
                    return NodeAPIWire.Lease(id: id)
                }
            }
        }
        router.get(RouterPath(p + "/watch")) { request, _ -> Response in
            let q = request.uri.queryParameters
            return await self.watch([.init(prefix: q["prefix"].map(String.init) ?? "", after: q["after"].flatMap { Int64($0) } ?? 0)], request)
        }
        router.post(RouterPath(p + "/follow")) { request, _ -> Response in
            do {
                let follow = try await Self.decode(request, NodeAPIWire.Follow.self)
                guard (1...16).contains(follow.prefixes.count) else { throw Refused(.badRequest, .invalid, "follow 1 to 16 prefixes, not \(follow.prefixes.count)") }
                return await self.watch(follow.prefixes, request)
            } catch let refused as Refused {
                return Self.refusal(refused)
            }
        }
        return router
    }

    // MARK: joining and credentials

    /// The join secret is read from the store each time: a rotation by any server holds at once.
    func join(_ j: NodeAPIWire.Join) async throws(Refused) -> NodeAPIWire.Credential {
        guard Self.validNodeName(j.node) else {
            throw Refused(.badRequest, .invalid, "node name \"\(j.node.prefix(80))\" is not a DNS subdomain (lower case letters, digits, '-' and '.', at most 253)")
        }
        let current = try await storeCall { try await ClusterCA.load(from: self.store) }
        guard Webhook.constantTimeEqual(Array(j.secret.utf8), Array(current.secrets.joinSecret.utf8)) else {
            logger.warning("node \(j.node) refused: wrong join token")
            throw Refused(.unauthorized, .forbidden, "the join token is not this cluster's (it may have been rotated: `berth token rotate` prints the new one)")
        }
        let credential = NodeAPIWire.randomSecret()
        let record = NodeCredentialRecord(node: j.node, secretHash: NodeAPIWire.sha256(credential), issuedAt: Date().timeIntervalSince1970)
        let data = (try? JSONEncoder().encode(record)) ?? Data()
        // Joining again under a name (a wiped machine) replaces its credential: the old one stops working.
        _ = try await storeCall { try await self.store.put(record.key.path, Array(data), lease: nil) }
        credentials.withLock { _ = $0.removeValue(forKey: j.node) }
        logger.info("node \(j.node) joined")
        return NodeAPIWire.Credential(node: j.node, credential: credential)
    }

    /// The node the request's credential belongs to (`Authorization: Bearer node:NAME:SECRET`).
    func authenticate(_ request: Request) async throws(Refused) -> String {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer node:") else {
            throw Refused(.unauthorized, .forbidden, "a node credential is needed (berth agent joins with --token)")
        }
        let parts = header.dropFirst("Bearer node:".count).split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { throw Refused(.unauthorized, .forbidden, "a malformed node credential") }
        let node = String(parts[0]), secret = String(parts[1])
        let cached = credentials.withLock { c -> String? in
            guard let entry = c[node], ContinuousClock.now - entry.at < .seconds(5) else { return nil }
            return entry.hash
        }
        var expected = cached
        if expected == nil {
            let stored = try await storeCall { try await self.store.get(ClusterKey.nodeCredential(node).path) }
            expected = stored.flatMap { try? JSONDecoder().decode(NodeCredentialRecord.self, from: Data($0.value)) }?.secretHash
            if let expected { credentials.withLock { $0[node] = (expected, .now) } }
        }
        guard let expected, Webhook.constantTimeEqual(Array(NodeAPIWire.sha256(secret).utf8), Array(expected.utf8)) else {
            throw Refused(.unauthorized, .forbidden, "node \(node)'s credential is not valid (removed, or replaced by a new join): join again")
        }
        return node
    }

    static func validNodeName(_ name: String) -> Bool {
        guard let first = name.first, let last = name.last, name.count <= 253 else { return false }
        let alphanumeric: (Character) -> Bool = { $0.isASCII && ($0.isLowercase || $0.isNumber) }
        return alphanumeric(first) && alphanumeric(last) && name.allSatisfy { alphanumeric($0) || $0 == "-" || $0 == "." }
    }

    // MARK: rights

    static func checkRead(_ path: String, by node: String) throws(Refused) {
        if let why = NodeAccess.refusal(read: path, by: node) { throw Refused(.forbidden, .forbidden, why) }
    }

    /// "namespace/name" of a pod's key.
    static func podKey(_ path: String) -> String? {
        guard let parts = ClusterKey(stored: path)?.components(under: ClusterKey.pods), parts.count == 2 else { return nil }
        return parts[0] + "/" + parts[1]
    }

    static func pod(_ bytes: [UInt8]) -> PodRecord? {
        try? JSONDecoder().decode(PodRecord.self, from: Data(bytes))
    }

    /// A write is the node's own: its node record and lease under its name, the status of a pod bound to it.
    func checkWrite(_ key: String, _ value: Data?, lease: Int64?, by node: String) async throws(Refused) {
        let target: NodeAccess.Target
        switch NodeAccess.target(write: key, by: node) {
        case .success(let t): target = t
        case .failure(let refusal): throw Refused(.forbidden, .forbidden, refusal.message)
        }
        guard let value else { throw Refused(.forbidden, .forbidden, "node \(node) may not delete \(key)") }
        let decoder = JSONDecoder()
        switch target {
        case .node:
            guard let r = try? decoder.decode(NodeRecord.self, from: value), r.name == node else {
                throw Refused(.forbidden, .forbidden, "node \(node) wrote a node record that is not its own")
            }
        case .lease:
            guard let r = try? decoder.decode(NodeLeaseRecord.self, from: value), r.node == node, let lease else {
                throw Refused(.forbidden, .forbidden, "node \(node)'s lease record must name it and live on its lease")
            }
            try await checkLease(lease, of: node)
        case .podStatus(let namespace, let name):
            guard let r = try? decoder.decode(PodStatusRecord.self, from: value), r.node == node, r.namespace == namespace, r.name == name else {
                throw Refused(.forbidden, .forbidden, "node \(node) wrote a status of \(namespace)/\(name) that is not its own")
            }
            let pod = try await storeCall { try await self.store.get(ClusterKey.pod(namespace: namespace, name: name).path) }
            guard let pod, Self.pod(pod.value)?.nodeName == node else {
                throw Refused(.forbidden, .forbidden, "pod \(namespace)/\(name) is not bound to node \(node)")
            }
        }
    }

    /// A lease this node was granted (through this server, or another: then its lease record is on it).
    func checkLease(_ id: Int64, of node: String) async throws(Refused) {
        if granted.withLock({ $0[id] }) == node { return }
        let record = try await storeCall { try await self.store.get(ClusterKey.nodeLease(node).path) }
        guard record?.lease?.raw == id else { throw Refused(.forbidden, .forbidden, "lease \(id) is not node \(node)'s") }
        granted.withLock { $0[id] = node }
    }

    // MARK: answers

    func storeCall<T: Sendable>(_ body: () async throws -> T) async throws(Refused) -> T {
        do {
            return try await body()
        } catch let e as StoreError {
            let status: HTTPResponse.Status = switch e.code {
            case .compacted: .gone
            case .unknownLease: .notFound
            case .forbidden: .forbidden
            case .invalid: .badRequest
            default: .serviceUnavailable
            }
            throw Refused(status, e.code, e.message)
        } catch {
            throw Refused(.serviceUnavailable, .unavailable, "the store: \(error)")
        }
    }

    static func decode<T: Decodable>(_ request: Request, _ type: T.Type) async throws(Refused) -> T {
        var request = request
        do {
            let body = try await request.collectBody(upTo: 16 << 20)
            return try JSONDecoder().decode(type, from: Data(body.readableBytesView))
        } catch {
            throw Refused(.badRequest, .invalid, "the request body is not a \(type): \(error)")
        }
    }

    func answer<T: Encodable>(_ body: () async throws(Refused) -> T) async throws -> Response {
        let value: T
        do throws(Refused) { value = try await body() } catch { return Self.refusal(error) }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(value))))
    }

    static func refusal(_ r: Refused) -> Response {
        let data = (try? JSONEncoder().encode(r.failure)) ?? Data()
        return Response(status: r.status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Watches of the prefixes, each from its revision, on one answer: the shared watch of a prefix agents
    /// follow, else a store watch of the node's own.
    func watch(_ prefixes: [NodeAPIWire.Follow.From], _ request: Request) async -> Response {
        do {
            let node = try await authenticate(request)
            var streams: [(String, AsyncThrowingStream<WatchEvent, any Error>)] = []
            for from in prefixes {
                try Self.checkRead(from.prefix, by: node)
                try await readyToGrant(from.prefix)
                streams.append((from.prefix, try await storeCall {
                    if let hub = self.shared[from.prefix] { return try await hub.watch(after: from.after) { self.visible($0, to: node) } }
                    return try await self.store.watch(prefix: from.prefix, after: from.after)
                }))
            }
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: watchBody(streams, node: node))
        } catch let refused as Refused {
            return Self.refusal(refused)
        } catch {
            return Self.refusal(Refused(.serviceUnavailable, .unavailable, "\(error)"))
        }
    }

    /// The watches as lines of JSON, with a progress mark whenever nothing was sent for a while, so that
    /// the agent tells a quiet watch from a dead link. The first watch to end ends the answer.
    func watchBody(_ streams: [(prefix: String, events: AsyncThrowingStream<WatchEvent, any Error>)], node: String) -> ResponseBody {
        // An agent that reads slower than changes come is cut off, rather than held in memory here: it
        // watches again from where it got to.
        let (lines, out) = AsyncStream.makeStream(of: NodeAPIWire.Event.self, bufferingPolicy: .bufferingOldest(10_000))
        let pump = Task {
            await withTaskGroup(of: Void.self) { group in
                for (prefix, events) in streams {
                    group.addTask {
                        do {
                            for try await e in events {
                                // A pod that moved away reaches its old node too, which drops it. (The shared
                                // watches filtered already; a store watch of the node's own did not.)
                                if !self.visible(Self.binding(e), to: node) { continue }
                                if case .dropped = out.yield(NodeAPIWire.Event(e)) { break }
                            }
                            out.yield(NodeAPIWire.Event(error: .init(code: StoreError.Code.unavailable.rawValue, message: "the store ended the watch of \(prefix)")))
                        } catch {
                            out.yield(NodeAPIWire.Event(error: .init((error as? StoreError) ?? StoreError(code: .unavailable, message: "\(error)"))))
                        }
                        out.finish()
                    }
                }
            }
        }
        let interval = progressInterval
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                out.yield(NodeAPIWire.Event(progress: 0))
            }
        }
        out.onTermination = { _ in
            pump.cancel()
            ticker.cancel()
        }
        return ResponseBody { writer in
            defer {
                pump.cancel()
                ticker.cancel()
            }
            let encoder = JSONEncoder()
            for await line in lines {
                var bytes = try encoder.encode(line)
                bytes.append(UInt8(ascii: "\n"))
                try await writer.write(ByteBuffer(bytes: bytes))
                if line.error != nil { break }
            }
            try await writer.finish(nil)
        }
    }
}

extension NodeAPI {
    /// The node API's HTTPS server, on its own address: agents reach it across the network, while the
    /// berth API stays on loopback.
    public func service(host: String, port: Int, tls: TLSConfiguration) throws -> any ServiceLifecycle.Service {
        Application(router: router(), server: try .tls(.http1(), tlsConfiguration: tls),
                    configuration: .init(address: .hostname(host, port: port), serverName: "berth"), logger: logger)
    }
}
