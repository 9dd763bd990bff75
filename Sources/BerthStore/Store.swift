/// A stored value with etcd's revision bookkeeping.
public struct StoredValue: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]
    /// The store revision that created the key (since its last deletion).
    public var createRevision: Int64
    /// The store revision of the last change to the key.
    public var modRevision: Int64
    /// Changes to the key since it was created (1 on creation).
    public var version: Int64
    /// The lease the key is attached to: it is deleted when the lease ends.
    public var lease: LeaseID?

    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64, version: Int64, lease: LeaseID?) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

public struct LeaseID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let raw: Int64
    public init(_ raw: Int64) { self.raw = raw }
    public var description: String { String(raw) }
    public static func < (a: LeaseID, b: LeaseID) -> Bool { a.raw < b.raw }
}

public enum WatchEvent: Sendable, Hashable {
    case put(StoredValue, previous: StoredValue?)
    case delete(key: String, revision: Int64, previous: StoredValue)

    public var revision: Int64 {
        switch self {
        case .put(let v, _): return v.modRevision
        case .delete(_, let r, _): return r
        }
    }

    public var key: String {
        switch self {
        case .put(let v, _): return v.key
        case .delete(let k, _, _): return k
        }
    }
}

/// The outcome of a compare-and-swap.
public enum SwapResult: Sendable, Hashable {
    /// Written at this store revision.
    case swapped(revision: Int64)
    /// Someone else changed the key first; this is what it holds now (nil: absent).
    case conflict(current: StoredValue?)
}

/// One write of a transaction, applied only if the key's modRevision is still `expected` (nil: only if
/// the key does not exist): no write overwrites a change its writer has not seen.
public struct StoreWrite: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        case put([UInt8], lease: LeaseID?)
        case delete
    }

    public var key: String
    public var expected: Int64?
    public var operation: Operation

    public init(key: String, expected: Int64?, operation: Operation) {
        self.key = key
        self.expected = expected
        self.operation = operation
    }

    public static func put(_ key: String, _ value: [UInt8], expected: Int64?, lease: LeaseID? = nil) -> StoreWrite {
        StoreWrite(key: key, expected: expected, operation: .put(value, lease: lease))
    }

    public static func delete(_ key: String, expected: Int64) -> StoreWrite {
        StoreWrite(key: key, expected: expected, operation: .delete)
    }
}

/// A condition on a whole transaction: `key` must still be at `modRevision`. A leader writes under the
/// fence of its leadership key, so that one that lost it (paused, partitioned) cannot write any more.
public struct StoreFence: Sendable, Hashable {
    public var key: String
    public var modRevision: Int64

    public init(key: String, modRevision: Int64) {
        self.key = key
        self.modRevision = modRevision
    }
}

public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case compacted, unknownLease, corrupt, io, fenced, unavailable, invalid, forbidden
    }
    public var code: Code
    public var message: String
    public var errno: Int32?

    public init(code: Code, message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String { message }
}

/// Cluster state behind one protocol, shaped like etcd's: keyed values with revisions, compare-and-swap,
/// watch from a revision, and leases. The embedded store serves one machine; an etcd one can follow.
public protocol Store: Sendable {
    func get(_ key: String) async throws -> StoredValue?
    /// Every key with the prefix, in key order, and the store revision they were read at.
    func list(prefix: String) async throws -> (values: [StoredValue], revision: Int64)
    /// Writes whatever the key holds: only for keys that one writer owns, such as a lease's.
    @discardableResult
    func put(_ key: String, _ value: [UInt8], lease: LeaseID?) async throws -> Int64
    /// Applies each write whose compare holds, atomically and durably (one fsync on the embedded store,
    /// one Txn on etcd); each write succeeds or conflicts on its own. With a fence that fails nothing is
    /// written and the call throws `fenced`. A key appears at most once in a transaction.
    func txn(_ writes: [StoreWrite], fence: StoreFence?) async throws -> [SwapResult]
    /// Deletes the key (only at `expected` modRevision if given); returns the deleted value.
    @discardableResult
    func delete(_ key: String, expected: Int64?) async throws -> StoredValue?
    /// Changes under the prefix after `revision`, then as they happen, in revision order. Throws
    /// `compacted` (at once or from the stream) when that history is gone: the watcher lists again.
    func watch(prefix: String, after revision: Int64) async throws -> AsyncThrowingStream<WatchEvent, any Error>
    func grantLease(ttl: Double) async throws -> LeaseID
    func keepAlive(_ lease: LeaseID) async throws
    func revokeLease(_ lease: LeaseID) async throws
    /// Drops the history before `revision`; watches from earlier answer `compacted`.
    func compact(to revision: Int64) async throws
    var revision: Int64 { get async throws }
    /// Watches each prefix from the revision given for it and hands every event to `ingest`, in order for
    /// each prefix, until a watch fails: the error is thrown (`compacted`: list again, then follow).
    func follow(_ prefixes: [(prefix: String, after: Int64)],
                ingest: @escaping @Sendable (WatchEvent, _ prefix: String) async -> Void) async throws
}

extension Store {
    /// One compare-and-swap.
    public func compareAndSwap(_ key: String, expected: Int64?, value: [UInt8], lease: LeaseID? = nil) async throws -> SwapResult {
        try await txn([.put(key, value, expected: expected, lease: lease)], fence: nil)[0]
    }

    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) async throws -> Int64 {
        try await put(key, value, lease: nil)
    }
}

extension Store {
    /// One watch per prefix.
    public func follow(_ prefixes: [(prefix: String, after: Int64)],
                       ingest: @escaping @Sendable (WatchEvent, _ prefix: String) async -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (prefix, after) in prefixes {
                let stream = try await watch(prefix: prefix, after: after)
                group.addTask {
                    for try await event in stream { await ingest(event, prefix) }
                }
            }
            try await group.waitForAll()
        }
    }
}
