import Foundation

/// The store for one machine: state in memory, every change appended to a journal before it is
/// acknowledged, and the journal folded into an atomically replaced snapshot when it grows. A kill -9 at
/// any point leaves a journal whose torn tail is dropped on restart; the last acknowledged change survives.
public actor EmbeddedStore: Store {
    public enum Durability: Sendable {
        /// write(2) before acknowledging: survives a crash of the process.
        case process
        /// write(2) and fsync(2): survives a crash of the machine.
        case machine
    }

    public struct Options: Sendable {
        public var durability = Durability.machine
        /// Journal size that triggers a snapshot.
        public var snapshotAfterBytes = 16 << 20
        /// Events kept for watches that start from an older revision.
        public var historyLimit = 10_000
        /// Seconds, for lease deadlines; injectable so tests control time.
        public var clock: @Sendable () -> Double = { ProcessInfo.processInfo.systemUptime }
        public init() {}
    }

    struct Lease {
        var ttl: Double
        var deadline: Double
        var keys: Set<String>
    }

    let directory: String
    let options: Options
    private var values: [String: StoredValue] = [:]
    private var currentRevision: Int64 = 0
    private var leases: [Int64: Lease] = [:]
    private var nextLease: Int64 = 1
    private var history: [WatchEvent] = []
    /// History holds every event after this revision.
    private var historyStart: Int64 = 0
    private var watchers: [Int: (prefix: String, continuation: AsyncThrowingStream<WatchEvent, any Error>.Continuation)] = [:]
    private var nextWatcher = 0
    private let journal: JournalFile

    var journalPath: String { directory + "/journal" }
    var snapshotPath: String { directory + "/snapshot" }

    public init(directory: String, options: Options = Options()) throws {
        self.directory = directory
        self.options = options
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        journal = try JournalFile(path: directory + "/journal")
        let now = options.clock()
        // The snapshot is replaced atomically, so it is whole or absent; anything wrong in it is corruption.
        var snapshotRevision: Int64 = 0
        var snapshotNextLease: Int64 = 1
        if let bytes = try JournalFile.readAll(directory + "/snapshot") {
            var offset = 0
            while offset < bytes.count {
                guard let (r, next) = JournalRecord.decode(bytes, at: offset) else {
                    throw StoreError(code: .corrupt, message: "\(directory)/snapshot is damaged at byte \(offset); refusing to start with a partial state")
                }
                switch r.op {
                case .meta:
                    snapshotRevision = r.revision
                    snapshotNextLease = r.lease
                case .grant:
                    leases[r.lease] = Lease(ttl: Double(r.createRevision) / 1000, deadline: now + Double(r.createRevision) / 1000, keys: [])
                case .put:
                    values[r.key] = StoredValue(key: r.key, value: r.value, createRevision: r.createRevision, modRevision: r.revision,
                                                version: r.version, lease: r.lease == 0 ? nil : LeaseID(r.lease))
                default: break
                }
                offset = next
            }
        }
        currentRevision = snapshotRevision
        nextLease = snapshotNextLease
        // Replay the journal past the snapshot; stop at the first torn record and cut it off.
        let bytes = try JournalFile.readAll(directory + "/journal") ?? []
        var offset = 0
        while offset < bytes.count, let (r, next) = JournalRecord.decode(bytes, at: offset) {
            switch r.op {
            case .put where r.revision > snapshotRevision:
                values[r.key] = StoredValue(key: r.key, value: r.value, createRevision: r.createRevision, modRevision: r.revision,
                                            version: r.version, lease: r.lease == 0 ? nil : LeaseID(r.lease))
                currentRevision = r.revision
            case .delete where r.revision > snapshotRevision:
                values[r.key] = nil
                currentRevision = r.revision
            case .grant where r.lease >= snapshotNextLease:
                let ttl = Double(r.createRevision) / 1000
                leases[r.lease] = Lease(ttl: ttl, deadline: now + ttl, keys: [])
                nextLease = max(nextLease, r.lease + 1)
            case .revoke:
                leases[r.lease] = nil
            default:
                break
            }
            offset = next
        }
        if offset < bytes.count { try journal.truncate(to: offset) }
        for (key, v) in values {
            if let l = v.lease?.raw { leases[l]?.keys.insert(key) }
        }
        historyStart = currentRevision
        // Leases read back from disk run out too, not only those granted by this process.
        if !leases.isEmpty { Task { await self.expireInTime() } }
    }

    // MARK: reads

    public var revision: Int64 { currentRevision }

    public func get(_ key: String) -> StoredValue? {
        values[key]
    }

    public func list(prefix: String) -> (values: [StoredValue], revision: Int64) {
        (values.values.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }, currentRevision)
    }

    // MARK: writes

    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: LeaseID? = nil) throws -> Int64 {
        guard case .swapped(let revision) = try commit([.put(key, value, expected: nil, lease: lease)], comparing: false, fence: nil)[0] else {
            return currentRevision
        }
        return revision
    }

    public func txn(_ writes: [StoreWrite], fence: StoreFence? = nil) throws -> [SwapResult] {
        try commit(writes, comparing: true, fence: fence)
    }

    /// Every write goes through here: one journal append (one fsync) and one revision for the lot; with
    /// `comparing` off (a plain put or delete) the revisions are not checked.
    private func commit(_ writes: [StoreWrite], comparing: Bool, fence: StoreFence?) throws -> [SwapResult] {
        if let fence, values[fence.key]?.modRevision != fence.modRevision {
            throw StoreError(code: .fenced, message: "\(fence.key) is no longer at revision \(fence.modRevision): this writer lost its leadership")
        }
        var results: [SwapResult] = []
        results.reserveCapacity(writes.count)
        var records: [UInt8] = []
        var staged: [WatchEvent] = []
        var seen = Set<String>()
        // As on etcd, the whole transaction is one revision.
        let revision = currentRevision + 1
        for w in writes {
            guard seen.insert(w.key).inserted else {
                throw StoreError(code: .invalid, message: "\(w.key) appears twice in one transaction")
            }
            let current = values[w.key]
            guard !comparing || current?.modRevision == w.expected else {
                results.append(.conflict(current: current))
                continue
            }
            switch w.operation {
            case .put(let value, let lease):
                if let lease, leases[lease.raw] == nil {
                    throw StoreError(code: .unknownLease, message: "lease \(lease) does not exist or has expired")
                }
                let stored = StoredValue(key: w.key, value: value, createRevision: current?.createRevision ?? revision,
                                         modRevision: revision, version: (current?.version ?? 0) + 1, lease: lease)
                records += JournalRecord(op: .put, revision: revision, key: w.key, value: value, lease: lease?.raw ?? 0,
                                         createRevision: stored.createRevision, version: stored.version).encoded()
                staged.append(.put(stored, previous: current))
            case .delete:
                guard let current else {
                    results.append(.conflict(current: nil))
                    continue
                }
                records += JournalRecord(op: .delete, revision: revision, key: w.key).encoded()
                staged.append(.delete(key: w.key, revision: revision, previous: current))
            }
            results.append(.swapped(revision: revision))
        }
        guard !staged.isEmpty else { return results }
        try append(records)
        currentRevision = revision
        for event in staged {
            switch event {
            case .put(let stored, let previous):
                values[stored.key] = stored
                if let old = previous?.lease?.raw, old != stored.lease?.raw { leases[old]?.keys.remove(stored.key) }
                if let l = stored.lease?.raw { leases[l]?.keys.insert(stored.key) }
            case .delete(let key, _, let previous):
                values[key] = nil
                if let l = previous.lease?.raw { leases[l]?.keys.remove(key) }
            }
            publish(event)
        }
        try snapshotIfLarge()
        return results
    }

    @discardableResult
    public func delete(_ key: String, expected: Int64? = nil) throws -> StoredValue? {
        guard let current = values[key] else { return nil }
        let w = StoreWrite(key: key, expected: expected ?? current.modRevision, operation: .delete)
        guard case .swapped = try commit([w], comparing: true, fence: nil)[0] else { return nil }
        return current
    }

    /// Journal first, memory second: a change is acknowledged only once it is in the file.
    private func log(_ record: JournalRecord) throws {
        try append(record.encoded())
    }

    private func append(_ bytes: [UInt8]) throws {
        try journal.append(bytes, sync: options.durability == .machine)
    }

    /// Called after memory holds the change just logged, never between the two.
    private func snapshotIfLarge() throws {
        if journal.size > options.snapshotAfterBytes { try snapshot() }
    }

    /// Folds the state into the snapshot file and empties the journal. A crash between the two leaves
    /// journal records the snapshot already holds; replay skips them by revision and lease id.
    func snapshot() throws {
        var bytes = JournalRecord(op: .meta, revision: currentRevision, lease: nextLease).encoded()
        for (id, l) in leases.sorted(by: { $0.key < $1.key }) {
            bytes += JournalRecord(op: .grant, revision: currentRevision, lease: id, createRevision: Int64(l.ttl * 1000)).encoded()
        }
        for v in values.values.sorted(by: { $0.key < $1.key }) {
            bytes += JournalRecord(op: .put, revision: v.modRevision, key: v.key, value: v.value, lease: v.lease?.raw ?? 0,
                                   createRevision: v.createRevision, version: v.version).encoded()
        }
        try JournalFile.replace(snapshotPath, with: bytes)
        try journal.truncate(to: 0)
    }

    // MARK: leases

    public func grantLease(ttl: Double) throws -> LeaseID {
        let id = nextLease
        try log(JournalRecord(op: .grant, revision: currentRevision, lease: id, createRevision: Int64(ttl * 1000)))
        nextLease += 1
        leases[id] = Lease(ttl: ttl, deadline: options.clock() + ttl, keys: [])
        try snapshotIfLarge()
        expireInTime()
        return LeaseID(id)
    }

    public func keepAlive(_ lease: LeaseID) throws {
        guard var l = leases[lease.raw], l.deadline > options.clock() else {
            throw StoreError(code: .unknownLease, message: "lease \(lease) does not exist or has expired")
        }
        l.deadline = options.clock() + l.ttl
        leases[lease.raw] = l
    }

    public func revokeLease(_ lease: LeaseID) throws {
        guard let l = leases[lease.raw] else { return }
        for key in l.keys.sorted() { try delete(key) }
        try log(JournalRecord(op: .revoke, revision: currentRevision, lease: lease.raw))
        leases[lease.raw] = nil
        try snapshotIfLarge()
    }

    private var expiry: Task<Void, Never>?

    /// Ends leases within 100 ms of their deadline while any exist, as etcd's lessor does.
    private func expireInTime() {
        guard expiry == nil else { return }
        expiry = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                guard let self, await self.expireDue() else { return }
            }
        }
    }

    /// Expires what is due; false (and the timer stops) once no lease is left.
    private func expireDue() -> Bool {
        do {
            try expireLeases()
        } catch {
            // The journal refused the deletions: the next round tries again, and writes report the error.
        }
        if leases.isEmpty { expiry = nil }
        return !leases.isEmpty
    }

    /// Ends the leases whose deadline passed, deleting their keys; returns the leases ended.
    @discardableResult
    public func expireLeases() throws -> [LeaseID] {
        let now = options.clock()
        let expired = leases.filter { $0.value.deadline <= now }.keys.sorted()
        for id in expired { try revokeLease(LeaseID(id)) }
        return expired.map(LeaseID.init)
    }

    /// Forgets the history up to `revision`: a watch from before it answers `compacted`, as on etcd.
    public func compact(to revision: Int64) {
        let cut = min(revision, currentRevision + 1) - 1
        guard cut > historyStart else { return }
        historyStart = cut
        history.removeAll { $0.revision <= cut }
    }

    // MARK: watch

    public func watch(prefix: String, after revision: Int64) throws -> AsyncThrowingStream<WatchEvent, any Error> {
        if revision < historyStart {
            throw StoreError(code: .compacted, message: "revision \(revision) is compacted; the oldest watchable is \(historyStart)")
        }
        let (stream, continuation) = AsyncThrowingStream<WatchEvent, any Error>.makeStream(bufferingPolicy: .unbounded)
        for e in history where e.revision > revision && e.key.hasPrefix(prefix) { continuation.yield(e) }
        let id = nextWatcher
        nextWatcher += 1
        watchers[id] = (prefix, continuation)
        continuation.onTermination = { [weak self] _ in
            Task { await self?.removeWatcher(id) }
        }
        return stream
    }

    private func removeWatcher(_ id: Int) { watchers[id] = nil }

    private func publish(_ event: WatchEvent) {
        history.append(event)
        // Trimmed a quarter at a time: dropping the oldest event on every write would move the whole history each time.
        if history.count > options.historyLimit + options.historyLimit / 4 {
            let drop = history.count - options.historyLimit
            historyStart = history[drop - 1].revision
            history.removeFirst(drop)
        }
        for (_, w) in watchers where event.key.hasPrefix(w.prefix) { w.continuation.yield(event) }
    }
}
