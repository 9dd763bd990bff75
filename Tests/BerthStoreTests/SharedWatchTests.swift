@testable import BerthStore
import Foundation
import Testing

/// The next `n` changes of a watch, or what came before it went quiet for 5 s.
func take(_ n: Int, from events: AsyncThrowingStream<WatchEvent, any Error>) async throws -> [String] {
    try await withThrowingTaskGroup(of: [String].self) { group in
        group.addTask {
            var out: [String] = []
            for try await e in events {
                out.append("\(e.key)@\(e.revision)")
                if out.count == n { break }
            }
            return out
        }
        group.addTask {
            try await Task.sleep(for: .seconds(5))
            return []
        }
        let first = try await group.next() ?? []
        group.cancelAll()
        return first
    }
}

@Suite struct SharedWatchTests {
    /// Watchers on one shared watch each get the changes after their revision that their filter takes, in
    /// order: those already seen from the kept ones, the rest as they happen.
    @Test func watchersGetTheChangesAfterTheirRevisionThatTheyTake() async throws {
        try await withStoreDirectory { dir in
            let store = try EmbeddedStore(directory: dir)
            try await store.put("other/x", bytes("x"))
            let shared = SharedWatch(store: store, prefix: "pods/") { String(decoding: $0.key.utf8.suffix(1), as: UTF8.self) }
            defer { shared.stop() }
            let everything = try await shared.watch(after: 1) { _ in true }
            for name in ["a", "b", "a", "c"] { try await store.put("pods/" + name, bytes(name)) }
            #expect(try await take(4, from: everything) == ["pods/a@2", "pods/b@3", "pods/a@4", "pods/c@5"])
            // A later watcher from revision 2: the kept changes after it, then new ones.
            let onlyA = try await shared.watch(after: 2) { $0 == "a" }
            try await store.put("pods/a", bytes("again"))
            #expect(try await take(2, from: onlyA) == ["pods/a@4", "pods/a@6"])
            #expect(try await take(1, from: everything) == ["pods/a@6"])
        }
    }

    /// A watcher from before the kept changes gets a store watch of its own: nothing is missed; with the
    /// history compacted, it hears `compacted` as from the store.
    @Test func aWatcherFromBeforeTheKeptChangesIsServedByTheStore() async throws {
        try await withStoreDirectory { dir in
            let store = try EmbeddedStore(directory: dir)
            let shared = SharedWatch(store: store, prefix: "pods/", capacity: 2) { _ in () }
            defer { shared.stop() }
            _ = try await shared.watch(after: 0) { _ in true }
            for i in 1...5 { try await store.put("pods/p\(i)", bytes("\(i)")) }
            // Only the last two are kept; from revision 1 the store answers.
            let late = try await shared.watch(after: 1) { _ in true }
            #expect(try await take(4, from: late) == ["pods/p2@2", "pods/p3@3", "pods/p4@4", "pods/p5@5"])
            try await store.compact(to: 4)
            await #expect(throws: StoreError.self) { _ = try await take(1, from: try await shared.watch(after: 1) { _ in true }) }
        }
    }

    /// A watcher that does not read is dropped once it is `backlog` changes behind, with an error; it
    /// watches again from where it got to and misses nothing.
    @Test func aWatcherTooFarBehindIsDroppedAndResumes() async throws {
        try await withStoreDirectory { dir in
            let store = try EmbeddedStore(directory: dir)
            let shared = SharedWatch(store: store, prefix: "pods/", backlog: 3) { _ in () }
            defer { shared.stop() }
            let stalled = try await shared.watch(after: 0) { _ in true }
            let reader = try await shared.watch(after: 0) { _ in true }
            var next = reader.makeAsyncIterator()
            for i in 1...6 {
                try await store.put("pods/p\(i)", bytes("\(i)"))
                // Delivered to the reader, so to every watcher: the stalled one has it, or was dropped.
                #expect(try await next.next()?.revision == Int64(i))
            }
            var got: [Int64] = []
            await #expect(throws: StoreError.self) {
                for try await e in stalled { got.append(e.revision) }
            }
            #expect(got == [1, 2, 3])
            let resumed = try await shared.watch(after: got.last ?? 0) { _ in true }
            #expect(try await take(3, from: resumed) == ["pods/p4@4", "pods/p5@5", "pods/p6@6"])
        }
    }
}
