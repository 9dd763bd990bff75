import Foundation
import GRPCCore
import Synchronization

extension EtcdStore {
    /// One watch stream per call. A stream that breaks (its member died, the connection dropped) is
    /// opened again on whichever member answers, from the revision after the last one delivered, so the
    /// watcher sees every change once and in order; if that history is compacted the stream ends with
    /// `compacted` and the watcher lists again.
    public func watch(prefix: String, after revision: Int64) async throws -> AsyncThrowingStream<WatchEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<WatchEvent, any Error>.makeStream()
        let task = Task { [self] in
            // Shared with the response handler, which runs in its own task.
            let next = Mutex(revision + 1)
            var delay = Duration.milliseconds(50)
            while !Task.isCancelled {
                let opened = ContinuousClock.now
                do {
                    try await watchOnce(prefix: prefix, from: next.withLock { $0 }) { events, progress in
                        for e in events { continuation.yield(e) }
                        next.withLock { $0 = max($0, progress + 1) }
                    }
                } catch let e as StoreError where e.code == .compacted || e.code == .invalid {
                    continuation.finish(throwing: e)
                    return
                } catch {
                    if Task.isCancelled { break }
                }
                // A stream that lived a while broke by accident: open it again at once.
                if ContinuousClock.now - opened > .seconds(5) { delay = .milliseconds(50) }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
            continuation.finish()
        }
        let id = nextWatch.withLock { n in defer { n += 1 }; return n }
        watches.withLock { $0[id] = task }
        continuation.onTermination = { [weak self] _ in
            task.cancel()
            self?.watches.withLock { _ = $0.removeValue(forKey: id) }
        }
        return stream
    }

    /// Opens a watch from `start` and hands over each response's events and the revision they reach;
    /// returns or throws when the stream ends.
    private func watchOnce(prefix: String, from start: Int64,
                           deliver: @escaping @Sendable ([WatchEvent], Int64) -> Void) async throws {
        var create = Etcdserverpb_WatchCreateRequest()
        create.key = Data(prefix.isEmpty ? [0] : Array(prefix.utf8))
        create.rangeEnd = Data(Self.rangeEnd(prefix))
        create.startRevision = start
        create.prevKv = true
        create.progressNotify = true
        var request = Etcdserverpb_WatchRequest()
        request.createRequest = create
        let first = request
        var callOptions = CallOptions.defaults
        callOptions.waitForReady = true
        callOptions.maxResponseMessageBytes = 64 << 20
        let metadata = try await call("watch \(prefix)") { m, _ in m }
        try await watchClient.watch(metadata: metadata, options: callOptions, requestProducer: { writer in
            try await writer.write(first)
            // The request side stays open for the life of the watch: etcd ends a watch whose client closed it.
            try await Task.sleep(for: .seconds(86_400 * 365))
        }, onResponse: { response in
            for try await message in response.messages {
                if message.canceled {
                    if message.compactRevision > 0 {
                        throw StoreError(code: .compacted, message: "watch of \(prefix) from revision \(start): history before \(message.compactRevision) is compacted")
                    }
                    if message.cancelReason.contains("invalid auth token") {
                        // The token ran out before the watch was opened: the stream opens again with a new one.
                        self.forgetToken()
                        throw TokenExpired()
                    }
                    throw StoreError(code: .invalid, message: "etcd cancelled the watch of \(prefix): \(message.cancelReason)")
                }
                let events = message.events.map(Self.event)
                deliver(events, max(message.header.revision, events.last?.revision ?? 0))
            }
        })
    }

    private struct TokenExpired: Error {}

    static func event(_ e: Etcdserverpb_Event) -> WatchEvent {
        let kv = stored(e.kv)
        let previous = e.hasPrevKv ? stored(e.prevKv) : nil
        switch e.type {
        case .delete:
            return .delete(key: kv.key, revision: e.kv.modRevision,
                           previous: previous ?? StoredValue(key: kv.key, value: [], createRevision: 0, modRevision: 0, version: 0, lease: nil))
        default:
            return .put(kv, previous: previous)
        }
    }

    // MARK: leases

    public func grantLease(ttl: Double) async throws -> LeaseID {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = max(1, Int64(ttl.rounded(.up)))
        let response = try await call("grant a lease") { m, o in try await leaseClient.leaseGrant(request, metadata: m, options: o) }
        guard response.error.isEmpty else { throw StoreError(code: .io, message: "etcd refused a lease: \(response.error)") }
        return LeaseID(response.id)
    }

    /// One renewal over a keep-alive stream; etcd answers TTL 0 for a lease that has ended.
    public func keepAlive(_ lease: LeaseID) async throws {
        var request = Etcdserverpb_LeaseKeepAliveRequest()
        request.id = lease.raw
        let sent = request
        let ttl = try await call("renew lease \(lease)") { m, o in
            try await leaseClient.leaseKeepAlive(metadata: m, options: o, requestProducer: { writer in
                try await writer.write(sent)
                try await Task.sleep(for: .seconds(3600))
            }, onResponse: { response in
                for try await message in response.messages { return message.ttl }
                return Int64(0)
            })
        }
        guard ttl > 0 else { throw StoreError(code: .unknownLease, message: "lease \(lease) does not exist or has expired") }
    }

    public func revokeLease(_ lease: LeaseID) async throws {
        var request = Etcdserverpb_LeaseRevokeRequest()
        request.id = lease.raw
        do {
            _ = try await call("revoke lease \(lease)") { m, o in try await leaseClient.leaseRevoke(request, metadata: m, options: o) }
        } catch let e as StoreError where e.code == .unknownLease {
            // Already gone: what revoking wanted.
        }
    }
}
