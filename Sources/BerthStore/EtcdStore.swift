import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// The cluster store on etcd, through its v3 gRPC API. The client knows every member: when the one it
/// talks to dies or loses quorum, calls go to another, and a call that cannot reach any for
/// `requestTimeout` fails with `unavailable`. Writes are transactions whose compares are modRevisions;
/// watches resume from the last revision they delivered; berth compacts the history it wrote.
public final class EtcdStore: Store, Sendable {
    typealias Transport = HTTP2ClientTransport.Posix

    public let options: EtcdOptions
    let client: GRPCClient<Transport>
    let kv: Etcdserverpb_KV.Client<Transport>
    let watchClient: Etcdserverpb_Watch.Client<Transport>
    let leaseClient: Etcdserverpb_Lease.Client<Transport>
    let maintenance: Etcdserverpb_Maintenance.Client<Transport>
    let auth: Etcdserverpb_Auth.Client<Transport>
    private let connections: Task<Void, Never>
    /// The auth token, when a user is given; renewed when etcd says it expired.
    private let token = Mutex<String?>(nil)
    /// The tasks of open watches: closing the store ends them (a graceful shutdown waits for open calls).
    let watches = Mutex<[Int: Task<Void, Never>]>([:])
    let nextWatch = Mutex(0)
    /// Revisions seen over time, for compacting to the one of `keepHistory` ago.
    private let revisionsSeen = Mutex<[(at: ContinuousClock.Instant, revision: Int64)]>([])
    /// etcd's default --max-txn-ops is 128, counted for a nested transaction as its parent's operations
    /// plus its own: larger batches go as several transactions.
    static let maxOpsPerTxn = 100
    /// Transactions of one batch sent at once.
    static let chunksInFlight = 8
    /// etcd's default --max-request-bytes is 1.5 MiB.
    static let maxTxnBytes = 1 << 20
    var endpointList: String { options.endpoints.map(\.description).joined(separator: ",") }

    public init(options: EtcdOptions) throws {
        self.options = options
        // Round robin keeps a connection to every member and uses those that answer, so a dead member
        // costs a retry, not a reconnection; keepalive pings (no more often than etcd's 5 s minimum)
        // notice a member that stopped answering under an open watch.
        let transport = try Transport(target: try Self.target(options.endpoints), transportSecurity: try Self.security(options),
                                      config: .defaults {
                                          $0.backoff = .init(initial: .milliseconds(100), max: .seconds(2), multiplier: 1.6, jitter: 0.2)
                                          $0.connection.keepalive = .init(time: .seconds(10), timeout: .seconds(5), allowWithoutCalls: false)
                                      },
                                      serviceConfig: ServiceConfig(loadBalancingConfig: [.roundRobin]))
        client = GRPCClient(transport: transport)
        kv = Etcdserverpb_KV.Client(wrapping: client)
        watchClient = Etcdserverpb_Watch.Client(wrapping: client)
        leaseClient = Etcdserverpb_Lease.Client(wrapping: client)
        maintenance = Etcdserverpb_Maintenance.Client(wrapping: client)
        auth = Etcdserverpb_Auth.Client(wrapping: client)
        let c = client
        // runConnections returns once the client is shut down; its error then has nowhere to go.
        connections = Task { try? await c.runConnections() }
    }

    /// Ends the open watches and closes every connection; calls in flight fail.
    public func close() async {
        for task in watches.withLock({ w in defer { w = [:] }; return Array(w.values) }) { task.cancel() }
        client.beginGracefulShutdown()
        await connections.value
    }

    deinit { client.beginGracefulShutdown() }

    private static func target(_ endpoints: [EtcdOptions.Endpoint]) throws -> any ResolvableTarget {
        guard !endpoints.isEmpty else { throw StoreError(code: .invalid, message: "no etcd endpoint given") }
        var v4: [(host: String, port: Int)] = []
        var v6: [(host: String, port: Int)] = []
        for e in endpoints {
            if e.host.contains(":") {
                v6.append((e.host, e.port))
            } else if e.host.split(separator: ".").count == 4, e.host.split(separator: ".").allSatisfy({ UInt8($0) != nil }) {
                v4.append((e.host, e.port))
            } else {
                for address in try resolve(e.host) { v4.append((address, e.port)) }
            }
        }
        if !v6.isEmpty && v4.isEmpty { return ResolvableTargets.IPv6(addresses: v6.map { .init(host: $0.host, port: $0.port) }) }
        guard v6.isEmpty else { throw StoreError(code: .invalid, message: "etcd endpoints mix IPv4 and IPv6; give one family") }
        return ResolvableTargets.IPv4(addresses: v4.map { .init(host: $0.host, port: $0.port) })
    }

    /// A member's host name to its IPv4 addresses, once at start (the members of a cluster are fixed).
    private static func resolve(_ host: String) throws -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0, let first = list else {
            throw StoreError(code: .unavailable, message: "etcd host \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let a = p {
            if let sa = a.pointee.ai_addr {
                var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                if inet_ntop(AF_INET, &addr, &buf, socklen_t(buf.count)) != nil {
                    let s = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    if !out.contains(s) { out.append(s) }
                }
            }
            p = a.pointee.ai_next
        }
        return out
    }

    private static func security(_ o: EtcdOptions) throws -> Transport.TransportSecurity {
        guard o.tls || o.caFile != nil else {
            guard o.certFile == nil else { throw StoreError(code: .invalid, message: "a client certificate needs TLS: use etcds://") }
            return .plaintext
        }
        var tls = Transport.TransportSecurity.TLS.defaults
        if let ca = o.caFile { tls.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
        switch (o.certFile, o.keyFile) {
        case (let cert?, let key?):
            tls.certificateChain = [.file(path: cert, format: .pem)]
            tls.privateKey = .file(path: key, format: .pem)
        case (nil, nil):
            break
        default:
            throw StoreError(code: .invalid, message: "give both --etcd-cert and --etcd-key, or neither")
        }
        return .tls(tls)
    }

    // MARK: calls

    /// Runs one call, retrying while no member can serve it (dead member, election, no quorum) until
    /// `requestTimeout`, and authenticating again whenever the token expired (once right away, then
    /// with the same backoff: a token can run out again before a slow call reaches etcd).
    func call<T: Sendable>(_ what: String, _ body: (Metadata, CallOptions) async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + options.requestTimeout
        var delay = Duration.milliseconds(50)
        var reauthenticated = false
        while true {
            var callOptions = CallOptions.defaults
            callOptions.waitForReady = true
            callOptions.timeout = max(.milliseconds(100), deadline - ContinuousClock.now)
            callOptions.maxResponseMessageBytes = 64 << 20
            do {
                return try await body(try await metadata(), callOptions)
            } catch let e as RPCError {
                switch e.code {
                case .unauthenticated where options.username != nil && !reauthenticated:
                    reauthenticated = true
                    forgetToken()
                    continue
                case .unauthenticated where options.username != nil && e.message.contains("invalid auth token"):
                    guard ContinuousClock.now + delay < deadline else { throw Self.storeError(e, what) }
                    forgetToken()
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(1))
                case _ where Self.transient(e):
                    guard ContinuousClock.now + delay < deadline else {
                        throw StoreError(code: .unavailable, message: "etcd at \(endpointList): \(what) failed for \(options.requestTimeout): \(e.message)")
                    }
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(1))
                default:
                    throw Self.storeError(e, what)
                }
            }
        }
    }

    /// Errors that another try (possibly on another member) can cure.
    static func transient(_ e: RPCError) -> Bool {
        switch e.code {
        case .unavailable, .deadlineExceeded: return true
        case .unknown: return e.message.contains("leader changed") || e.message.contains("timed out") || e.message.contains("no leader")
        default: return false
        }
    }

    static func storeError(_ e: RPCError, _ what: String) -> StoreError {
        switch e.code {
        case .outOfRange where e.message.contains("compacted"):
            return StoreError(code: .compacted, message: "\(what): \(e.message)")
        case .notFound where e.message.contains("lease"):
            return StoreError(code: .unknownLease, message: "\(what): \(e.message)")
        case .invalidArgument, .failedPrecondition, .resourceExhausted:
            return StoreError(code: .invalid, message: "\(what): \(e.message)")
        case .unauthenticated, .permissionDenied:
            return StoreError(code: .invalid, message: "\(what): etcd refused the credentials: \(e.message)")
        default:
            return StoreError(code: .io, message: "\(what): etcd answered \(e.code): \(e.message)")
        }
    }

    /// Drops the token, so that the next call authenticates again.
    func forgetToken() { token.withLock { $0 = nil } }

    private func metadata() async throws -> Metadata {
        guard let user = options.username else { return [:] }
        if let t = token.withLock({ $0 }) { return ["token": "\(t)"] }
        var request = Etcdserverpb_AuthenticateRequest()
        request.name = user
        request.password = options.password ?? ""
        var callOptions = CallOptions.defaults
        callOptions.waitForReady = true
        callOptions.timeout = options.requestTimeout
        let t: String
        do {
            t = try await auth.authenticate(request, options: callOptions).token
        } catch let e as RPCError where !Self.transient(e) {
            throw StoreError(code: .invalid, message: "etcd at \(endpointList): authentication as \(user) failed: \(e.message)")
        }
        // A transient failure (no member answered in time) goes back to `call`, which tries again.
        token.withLock { $0 = t }
        return ["token": "\(t)"]
    }

    // MARK: keys

    /// The end of the range of keys with this prefix, etcd's way: the prefix with its last byte + 1.
    static func rangeEnd(_ prefix: String) -> [UInt8] {
        var end = Array(prefix.utf8)
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    static func stored(_ kv: Etcdserverpb_KeyValue) -> StoredValue {
        StoredValue(key: String(decoding: kv.key, as: UTF8.self), value: Array(kv.value), createRevision: kv.createRevision,
                    modRevision: kv.modRevision, version: kv.version, lease: kv.lease == 0 ? nil : LeaseID(kv.lease))
    }

    public var revision: Int64 {
        get async throws {
            var request = Etcdserverpb_RangeRequest()
            request.key = Data("\u{0}".utf8)
            request.countOnly = true
            return try await call("read the revision") { m, o in try await kv.range(request, metadata: m, options: o).header.revision }
        }
    }

    public func get(_ key: String) async throws -> StoredValue? {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(key.utf8)
        let response = try await call("get \(key)") { m, o in try await kv.range(request, metadata: m, options: o) }
        noteRevision(response.header.revision)
        return response.kvs.first.map(Self.stored)
    }

    /// Pages of 1,000 keys, all read at the revision of the first page.
    public func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64) {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(prefix.isEmpty ? [0] : Array(prefix.utf8))
        request.rangeEnd = Data(Self.rangeEnd(prefix))
        request.limit = 1000
        var values: [StoredValue] = []
        var revision: Int64 = 0
        while true {
            let page = request
            let response = try await call("list \(prefix)") { m, o in try await kv.range(page, metadata: m, options: o) }
            if revision == 0 {
                revision = response.header.revision
                request.revision = revision
            }
            values += response.kvs.map(Self.stored)
            guard response.more, let last = response.kvs.last else { break }
            request.key = last.key + Data([0])
        }
        noteRevision(revision)
        return (values, revision)
    }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: LeaseID?) async throws -> Int64 {
        var request = Etcdserverpb_PutRequest()
        request.key = Data(key.utf8)
        request.value = Data(value)
        request.lease = lease?.raw ?? 0
        let revision = try await call("put \(key)") { m, o in try await kv.put(request, metadata: m, options: o).header.revision }
        noteRevision(revision)
        return revision
    }

    @discardableResult
    public func delete(_ key: String, expected: Int64?) async throws -> StoredValue? {
        var request = Etcdserverpb_DeleteRangeRequest()
        request.key = Data(key.utf8)
        request.prevKv = true
        guard let expected else {
            let response = try await call("delete \(key)") { m, o in try await kv.deleteRange(request, metadata: m, options: o) }
            noteRevision(response.header.revision)
            return response.prevKvs.first.map(Self.stored)
        }
        var op = Etcdserverpb_RequestOp()
        op.request = .requestDeleteRange(request)
        var txn = Etcdserverpb_TxnRequest()
        txn.compare = [Self.modRevision(of: key, is: expected)]
        txn.success = [op]
        let sent = txn
        let response = try await call("delete \(key)") { m, o in try await kv.txn(sent, metadata: m, options: o) }
        noteRevision(response.header.revision)
        guard response.succeeded, case .responseDeleteRange(let deleted)? = response.responses.first?.response else { return nil }
        return deleted.prevKvs.first.map(Self.stored)
    }

    /// Each write is a nested transaction (compare its modRevision; put or delete; else read the key),
    /// all of them inside one transaction whose compare is the fence. etcd limits a transaction to 128
    /// operations (nested ones included) and 1.5 MiB by default, so a larger batch goes as several, each under the fence.
    public func txn(_ writes: [StoreWrite], fence: StoreFence?) async throws -> [SwapResult] {
        var seen = Set<String>()
        for w in writes where !seen.insert(w.key).inserted {
            throw StoreError(code: .invalid, message: "\(w.key) appears twice in one transaction")
        }
        var chunks: [Range<Int>] = []
        var start = 0
        while start < writes.count {
            var end = start
            var bytes = 0
            while end < writes.count && end - start < Self.maxOpsPerTxn {
                let size = writes[end].key.utf8.count * 3 + { if case .put(let v, _) = writes[end].operation { v.count } else { 0 } }()
                if end > start && bytes + size > Self.maxTxnBytes { break }
                bytes += size
                end += 1
            }
            chunks.append(start..<end)
            start = end
        }
        if chunks.count == 1 { return try await txnChunk(writes[chunks[0]], fence: fence) }
        // Chunks are independent (each write stands on its own), so several are in flight at once: etcd
        // commits concurrent proposals together, one fsync for many.
        var results = [[SwapResult]](repeating: [], count: chunks.count)
        try await withThrowingTaskGroup(of: (Int, [SwapResult]).self) { group in
            var next = 0
            func submit() {
                let i = next
                next += 1
                let slice = writes[chunks[i]]
                group.addTask { (i, try await self.txnChunk(slice, fence: fence)) }
            }
            while next < min(Self.chunksInFlight, chunks.count) { submit() }
            while let (i, r) = try await group.next() {
                results[i] = r
                if next < chunks.count { submit() }
            }
        }
        return results.flatMap { $0 }
    }

    private func txnChunk(_ writes: ArraySlice<StoreWrite>, fence: StoreFence?) async throws -> [SwapResult] {
        var request = Etcdserverpb_TxnRequest()
        if let fence { request.compare = [Self.modRevision(of: fence.key, is: fence.modRevision)] }
        request.success = writes.map { w in
            var inner = Etcdserverpb_TxnRequest()
            // A key that does not exist has modRevision 0.
            inner.compare = [Self.modRevision(of: w.key, is: w.expected ?? 0)]
            var op = Etcdserverpb_RequestOp()
            switch w.operation {
            case .put(let value, let lease):
                var put = Etcdserverpb_PutRequest()
                put.key = Data(w.key.utf8)
                put.value = Data(value)
                put.lease = lease?.raw ?? 0
                op.request = .requestPut(put)
            case .delete:
                var delete = Etcdserverpb_DeleteRangeRequest()
                delete.key = Data(w.key.utf8)
                op.request = .requestDeleteRange(delete)
            }
            inner.success = [op]
            var read = Etcdserverpb_RangeRequest()
            read.key = Data(w.key.utf8)
            var readOp = Etcdserverpb_RequestOp()
            readOp.request = .requestRange(read)
            inner.failure = [readOp]
            var outer = Etcdserverpb_RequestOp()
            outer.request = .requestTxn(inner)
            return outer
        }
        let sent = request
        let attempts = Mutex(0)
        let response = try await call("write \(writes.count) keys") { m, o in
            attempts.withLock { $0 += 1 }
            return try await kv.txn(sent, metadata: m, options: o)
        }
        guard response.succeeded else {
            throw StoreError(code: .fenced, message: "\(fence?.key ?? "") is no longer at revision \(fence?.modRevision ?? 0): this writer lost its leadership")
        }
        noteRevision(response.header.revision)
        // A try that timed out may still have been applied: then the retry finds this writer's own values.
        let retried = attempts.withLock { $0 } > 1
        return zip(writes, response.responses).map { w, r in
            guard case .responseTxn(let inner)? = r.response else { return .conflict(current: nil) }
            if inner.succeeded { return .swapped(revision: response.header.revision) }
            guard case .responseRange(let read)? = inner.responses.first?.response else { return .conflict(current: nil) }
            let current = read.kvs.first.map(Self.stored)
            if retried {
                switch (w.operation, current) {
                case (.put(let value, let lease), let c?) where c.value == value && c.lease == lease: return .swapped(revision: c.modRevision)
                case (.delete, nil): return .swapped(revision: response.header.revision)
                default: break
                }
            }
            return .conflict(current: current)
        }
    }

    static func modRevision(of key: String, is revision: Int64) -> Etcdserverpb_Compare {
        var c = Etcdserverpb_Compare()
        c.key = Data(key.utf8)
        c.target = .mod
        c.result = .equal
        c.modRevision = revision
        return c
    }

    func noteRevision(_ revision: Int64) {
        guard revision > 0 else { return }
        revisionsSeen.withLock { seen in
            let now = ContinuousClock.now
            if let last = seen.last, now - last.at < .seconds(10) { return }
            seen.append((now, revision))
            if seen.count > 1000 { seen.removeFirst(seen.count - 1000) }
        }
    }

    /// Compacts the history up to the newest revision seen at least `keepHistory` ago, so that etcd's
    /// database holds current values plus minutes of history. Returns the revision compacted to.
    @discardableResult
    public func compactOldHistory() async throws -> Int64? {
        let cutoff = ContinuousClock.now - options.keepHistory
        let target = revisionsSeen.withLock { seen -> Int64? in
            let old = seen.filter { $0.at <= cutoff }
            seen.removeAll { $0.at < (old.last?.at ?? cutoff) }
            return old.last?.revision
        }
        guard let target else { return nil }
        try await compact(to: target)
        return target
    }

    public func compact(to revision: Int64) async throws {
        var request = Etcdserverpb_CompactionRequest()
        request.revision = revision
        do {
            _ = try await call("compact to \(revision)") { m, o in try await kv.compact(request, metadata: m, options: o) }
        } catch let e as StoreError where e.code == .compacted {
            // Another server compacted as far already.
        }
    }

    /// The size of the member's database file, and what of it is in use.
    public func databaseSize() async throws -> (size: Int64, inUse: Int64) {
        let s = try await call("read the status") { m, o in try await maintenance.status(Etcdserverpb_StatusRequest(), metadata: m, options: o) }
        return (s.dbSize, s.dbSizeInUse)
    }
}
