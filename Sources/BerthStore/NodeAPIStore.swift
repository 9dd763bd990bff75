import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// The store as an agent sees it: every call goes to a server's node API over HTTPS (the cluster CA
/// pinned, the node's credential as bearer token), which checks the node's right to it. The servers are
/// tried in turn: one that cannot be reached is skipped until the next failure. Agents never reach etcd.
public final class NodeAPIStore: Store {
    public let servers: [String]
    let node: String
    let authorization: String
    let client: HTTPClient
    /// The server that answered last.
    private let current = Mutex(0)
    /// A watch whose server says nothing (not even its progress marks) for this long is broken.
    let watchSilence: Duration
    /// A lease call that takes longer gives up, so that the next try goes out on a new connection: one
    /// stuck on a link that was down would otherwise wait for TCP's retransmissions past the lease.
    let leaseCallTimeout = TimeAmount.seconds(2)

    public init(servers: [String], caPEM: String, node: String, credential: String, watchSilence: Duration = .seconds(15)) throws {
        guard !servers.isEmpty else { throw StoreError(code: .invalid, message: "no server to reach") }
        self.servers = servers.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.node = node
        authorization = "Bearer node:\(node):\(credential)"
        self.watchSilence = watchSilence
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: try Self.configuration(caPEM: caPEM))
    }

    /// TLS that trusts the cluster CA only.
    static func configuration(caPEM: String) throws -> HTTPClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        var config = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                              timeout: .init(connect: .seconds(2), read: .seconds(10)))
        config.connectionPool.retryConnectionEstablishment = false
        return config
    }

    public func close() async {
        try? await client.shutdown()
    }

    // MARK: Store

    public func get(_ key: String) async throws -> StoredValue? {
        let got: NodeAPIWire.Got = try await call(.GET, "/get", query: ["key": key])
        return got.value?.stored
    }

    public func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64) {
        let l: NodeAPIWire.List = try await call(.GET, "/list", query: ["prefix": prefix])
        return (l.values.map(\.stored), l.revision)
    }

    public func put(_ key: String, _ value: [UInt8], lease: LeaseID?) async throws -> Int64 {
        let r: NodeAPIWire.Revision = try await call(.POST, "/put", body: NodeAPIWire.Put(key: key, value: Data(value), lease: lease?.raw))
        return r.revision
    }

    public func txn(_ writes: [StoreWrite], fence: StoreFence?) async throws -> [SwapResult] {
        guard fence == nil else { throw StoreError(code: .forbidden, message: "a node writes without a fence") }
        let a: NodeAPIWire.TxnAnswer = try await call(.POST, "/txn", body: NodeAPIWire.Txn(writes: writes.map(NodeAPIWire.Write.init)))
        guard a.results.count == writes.count else { throw StoreError(code: .corrupt, message: "the server answered \(a.results.count) results for \(writes.count) writes") }
        return a.results.map(\.result)
    }

    public func delete(_ key: String, expected: Int64?) async throws -> StoredValue? {
        throw StoreError(code: .forbidden, message: "node \(node) may not delete \(key)")
    }

    public func grantLease(ttl: Double) async throws -> LeaseID {
        let l: NodeAPIWire.Lease = try await call(.POST, "/lease/grant", body: NodeAPIWire.Lease(ttl: ttl), timeout: leaseCallTimeout)
        guard let id = l.id else { throw StoreError(code: .corrupt, message: "the server granted no lease") }
        return LeaseID(id)
    }

    public func keepAlive(_ lease: LeaseID) async throws {
        let _: NodeAPIWire.Lease = try await call(.POST, "/lease/keepalive", body: NodeAPIWire.Lease(id: lease.raw), timeout: leaseCallTimeout)
    }

    public func revokeLease(_ lease: LeaseID) async throws {
        let _: NodeAPIWire.Lease = try await call(.POST, "/lease/revoke", body: NodeAPIWire.Lease(id: lease.raw))
    }

    public func compact(to revision: Int64) async throws {
        throw StoreError(code: .forbidden, message: "node \(node) may not compact the store")
    }

    public var revision: Int64 {
        get async throws {
            let r: NodeAPIWire.Revision = try await call(.GET, "/revision")
            return r.revision
        }
    }

    public func watch(prefix: String, after revision: Int64) async throws -> AsyncThrowingStream<WatchEvent, any Error> {
        let response = try await send(.GET, "/watch", query: ["prefix": prefix, "after": String(revision)], body: nil, deadline: .now() + .hours(24 * 365))
        return events(of: response, what: prefix)
    }

    /// Every prefix on one stream (one connection rather than one per prefix); each event goes to the
    /// longest prefix its key is under.
    public func follow(_ prefixes: [(prefix: String, after: Int64)],
                       ingest: @escaping @Sendable (WatchEvent, _ prefix: String) async -> Void) async throws {
        let body = try JSONEncoder().encode(NodeAPIWire.Follow(prefixes: prefixes.map { .init(prefix: $0.prefix, after: $0.after) }))
        let response = try await send(.POST, "/follow", query: [:], body: body, deadline: .now() + .hours(24 * 365))
        let byLength = prefixes.map(\.prefix).sorted { $0.count > $1.count }
        for try await event in events(of: response, what: byLength.joined(separator: ", ")) {
            guard let prefix = byLength.first(where: { event.key.hasPrefix($0) }) else {
                throw StoreError(code: .corrupt, message: "the server sent \(event.key), under none of the prefixes followed")
            }
            await ingest(event, prefix)
        }
    }

    /// The events of a watch answer, lines of JSON; the stream ends with an error when the server reports
    /// one, ends the answer, or says nothing (not even its progress marks) for `watchSilence`.
    private func events(of response: HTTPClientResponse, what: String) -> AsyncThrowingStream<WatchEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchEvent.self)
        let silence = watchSilence
        let reader = Task {
            let lastHeard = Mutex(ContinuousClock.now)
            // The server marks progress every few seconds: a stream silent for longer is a dead link.
            let watchdog = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if ContinuousClock.now - lastHeard.withLock({ $0 }) > silence {
                        continuation.finish(throwing: StoreError(code: .unavailable, message: "the watch of \(what) went silent"))
                        return
                    }
                }
            }
            defer { watchdog.cancel() }
            var line: [UInt8] = []
            do {
                for try await buffer in response.body {
                    lastHeard.withLock { $0 = .now }
                    for byte in buffer.readableBytesView {
                        guard byte == UInt8(ascii: "\n") else {
                            line.append(byte)
                            guard line.count <= 64 << 20 else { throw StoreError(code: .corrupt, message: "a watch line over 64 MiB") }
                            continue
                        }
                        let e = try JSONDecoder().decode(NodeAPIWire.Event.self, from: Data(line))
                        line.removeAll(keepingCapacity: true)
                        if let failure = e.error { throw failure.storeError }
                        if let event = e.event { continuation.yield(event) }
                    }
                }
                continuation.finish(throwing: StoreError(code: .unavailable, message: "the server ended the watch of \(what)"))
            } catch {
                continuation.finish(throwing: error as? StoreError ?? StoreError(code: .unavailable, message: "the watch of \(what): \(error)"))
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return stream
    }

    // MARK: calls

    private func call<Answer: Decodable>(_ method: HTTPMethod, _ path: String, query: [String: String] = [:]) async throws -> Answer {
        try await call(method, path, query: query, body: Optional<NodeAPIWire.Revision>.none)
    }

    private func call<Body: Encodable, Answer: Decodable>(_ method: HTTPMethod, _ path: String, query: [String: String] = [:], body: Body?,
                                                         timeout: TimeAmount = .seconds(15)) async throws -> Answer {
        let data = try body.map { try JSONEncoder().encode($0) }
        let response = try await send(method, path, query: query, body: data, deadline: .now() + timeout)
        let bytes = try await response.body.collect(upTo: 64 << 20)
        do {
            return try JSONDecoder().decode(Answer.self, from: Data(bytes.readableBytesView))
        } catch {
            throw StoreError(code: .corrupt, message: "the answer to \(path) does not decode: \(error)")
        }
    }

    /// Sends to the server that answered last, then to the others; an HTTP error answer is the store's.
    private func send(_ method: HTTPMethod, _ path: String, query: [String: String], body: Data?, deadline: NIODeadline) async throws -> HTTPClientResponse {
        let first = current.withLock { $0 }
        var failures: [String] = []
        for i in 0..<servers.count {
            let index = (first + i) % servers.count
            var components = URLComponents(string: servers[index] + NodeAPIWire.prefix + path)
            if !query.isEmpty { components?.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) } }
            guard let url = components?.url?.absoluteString else { throw StoreError(code: .invalid, message: "bad server URL \(servers[index])") }
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers.add(name: "Authorization", value: authorization)
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, deadline: deadline)
            } catch {
                failures.append("\(servers[index]): \(error)")
                continue
            }
            current.withLock { $0 = index }
            guard (200..<300).contains(response.status.code) else {
                let bytes = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
                if let failure = try? JSONDecoder().decode(NodeAPIWire.Failure.self, from: Data(bytes.readableBytesView)) { throw failure.storeError }
                throw StoreError(code: .unavailable, message: "\(servers[index]) answered \(response.status.code) to \(path)")
            }
            return response
        }
        throw StoreError(code: .unavailable, message: "no server answered: " + failures.joined(separator: "; "))
    }
}
