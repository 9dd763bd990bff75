import Synchronization

/// Many watchers of one prefix on one store watch: the servers' node API serves a watch per agent and
/// prefix, and a thousand agents each on a store watch of their own would have the store send every
/// change a thousand times, and the server decode it as often. Each change is tagged once (`tag`, e.g. the
/// node a pod is bound to) and goes to the watchers whose filter takes the tag. The latest `capacity`
/// changes are kept, so that a watcher that starts from a recent revision (an agent that just listed, or
/// one reconnecting) is served from them; one that starts from earlier gets a store watch of its own,
/// which answers `compacted` as any would.
public final class SharedWatch<Tag: Sendable>: Sendable {
    public typealias Events = AsyncThrowingStream<WatchEvent, any Error>
    let store: any Store
    public let prefix: String
    let tag: @Sendable (WatchEvent) -> Tag
    let capacity: Int
    /// A watcher this many changes behind is dropped (it watches again from where it got to).
    let backlog: Int

    private struct Watcher {
        var after: Int64
        var accepts: @Sendable (Tag) -> Bool
        var continuation: Events.Continuation
    }

    private struct State {
        var following: Task<Void, Never>?
        /// Every change after this revision is in `recent` or still to come.
        var from: Int64 = 0
        var recent: [(event: WatchEvent, tag: Tag)] = []
        var head = 0
        var watchers: [Int: Watcher] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// With `seed`, the shared watch starts from a list of the prefix, handed to `seed` before any change
    /// is tagged: `tag` may then keep state of what is under the prefix.
    let seed: (@Sendable ([StoredValue]) -> Void)?

    public init(store: any Store, prefix: String, capacity: Int = 10_000, backlog: Int = 10_000,
                seed: (@Sendable ([StoredValue]) -> Void)? = nil, tag: @escaping @Sendable (WatchEvent) -> Tag) {
        self.store = store
        self.prefix = prefix
        self.capacity = capacity
        self.backlog = backlog
        self.seed = seed
        self.tag = tag
    }

    /// Starts the shared watch if it does not run (again, after it failed).
    public func start() async throws {
        guard state.withLock({ $0.following == nil }) else { return }
        var listed: [StoredValue]?
        let now: Int64
        if seed != nil {
            let (values, revision) = try await store.list(prefix: prefix)
            (listed, now) = (values, revision)
        } else {
            now = try await store.revision
        }
        state.withLock { s in
            guard s.following == nil else { return }
            if let listed { seed?(listed) }
            s.from = now
            s.following = Task { await self.follow(after: now) }
        }
    }

    /// The changes after `revision` whose tag `accepts` takes, then as they happen.
    public func watch(after revision: Int64, accepts: @escaping @Sendable (Tag) -> Bool) async throws -> Events {
        try await start()
        let (stream, continuation) = Events.makeStream(bufferingPolicy: .bufferingOldest(backlog))
        let id: Int? = state.withLock { s in
            guard revision >= s.from, s.following != nil else { return nil }
            for i in 0..<s.recent.count {
                let (event, tag) = s.recent[(s.head + i) % s.recent.count]
                if event.revision > revision && accepts(tag) { continuation.yield(event) }
            }
            defer { s.nextID += 1 }
            s.watchers[s.nextID] = Watcher(after: revision, accepts: accepts, continuation: continuation)
            return s.nextID
        }
        guard let id else { return try await store.watch(prefix: prefix, after: revision) }
        continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.watchers.removeValue(forKey: id) } }
        return stream
    }

    public func stop() {
        let ended = state.withLock { s -> [Events.Continuation] in
            s.following?.cancel()
            return reset(&s)
        }
        for c in ended { c.finish() }
    }

    private func follow(after revision: Int64) async {
        var failure: any Error = StoreError(code: .unavailable, message: "the store ended the watch of \(prefix)")
        do {
            for try await event in try await store.watch(prefix: prefix, after: revision) {
                let t = tag(event)
                let behind = state.withLock { s -> [Events.Continuation] in
                    if s.recent.count < capacity {
                        s.recent.append((event, t))
                    } else {
                        s.from = s.recent[s.head].event.revision
                        s.recent[s.head] = (event, t)
                        s.head = (s.head + 1) % capacity
                    }
                    var behind: [Events.Continuation] = []
                    for (id, w) in s.watchers where event.revision > w.after && w.accepts(t) {
                        if case .dropped = w.continuation.yield(event) {
                            s.watchers[id] = nil
                            behind.append(w.continuation)
                        }
                    }
                    return behind
                }
                for c in behind { c.finish(throwing: StoreError(code: .unavailable, message: "the watch of \(prefix) fell \(backlog) changes behind")) }
            }
        } catch {
            failure = error
        }
        if Task.isCancelled { return }
        // Watchers go on from where they got to, on a new shared watch or a store watch of their own.
        let ended = state.withLock { reset(&$0) }
        for c in ended { c.finish(throwing: failure) }
    }

    private func reset(_ s: inout State) -> [Events.Continuation] {
        let ended = s.watchers.values.map(\.continuation)
        s = State()
        return ended
    }
}
