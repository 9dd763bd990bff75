@testable import BerthStore
import Foundation
import Testing

/// A clock the tests move by hand.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 1000.0
    func now() -> Double { lock.withLock { value } }
    func advance(_ s: Double) { lock.withLock { value += s } }
}

func withStoreDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-store-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try await body(dir)
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Everything a store holds, for comparing two stores.
func dump(_ store: EmbeddedStore) async -> [String] {
    let (values, revision) = await store.list(prefix: "")
    return ["revision \(revision)"] + values.map { "\($0.key)=\(String(decoding: $0.value, as: UTF8.self)) c\($0.createRevision) m\($0.modRevision) v\($0.version) l\($0.lease?.raw ?? 0)" }
}

@Suite struct EmbeddedStoreTests {
    @Test func revisionsCompareAndSwapAndList() async throws {
        try await withStoreDirectory { dir in
            let store = try EmbeddedStore(directory: dir)
            #expect(try await store.put("pods/a", bytes("1")) == 1)
            #expect(try await store.put("pods/b", bytes("2")) == 2)
            #expect(try await store.put("pods/a", bytes("3")) == 3)
            let a = try #require(await store.get("pods/a"))
            #expect(a.createRevision == 1 && a.modRevision == 3 && a.version == 2)
            #expect(try await store.compareAndSwap("pods/a", expected: 1, value: bytes("x")) == .conflict(current: a))
            #expect(try await store.compareAndSwap("pods/a", expected: 3, value: bytes("4")) == .swapped(revision: 4))
            #expect(try await store.compareAndSwap("pods/c", expected: nil, value: bytes("c")) == .swapped(revision: 5))
            if case .conflict(let current) = try await store.compareAndSwap("pods/c", expected: nil, value: bytes("again")) {
                #expect(current?.modRevision == 5)
            } else {
                Issue.record("creating an existing key must conflict")
            }
            #expect(try await store.delete("pods/b", expected: 1) == nil)
            #expect(try await store.delete("pods/b")?.value == bytes("2"))
            #expect(await store.get("pods/b") == nil)
            let (list, revision) = await store.list(prefix: "pods/")
            #expect(list.map(\.key) == ["pods/a", "pods/c"])
            #expect(revision == 6)
        }
    }

    @Test func watchReplaysHistoryThenFollowsAndRefusesCompactedRevisions() async throws {
        try await withStoreDirectory { dir in
            var options = EmbeddedStore.Options()
            options.historyLimit = 3
            let store = try EmbeddedStore(directory: dir, options: options)
            try await store.put("nodes/n1", bytes("a"))
            try await store.put("pods/p1", bytes("b"))
            try await store.put("pods/p2", bytes("c"))
            let stream = try await store.watch(prefix: "pods/", after: 1)
            try await store.delete("pods/p1")
            try await store.put("nodes/n2", bytes("ignored"))
            try await store.put("pods/p3", bytes("d"))
            var seen: [String] = []
            for try await e in stream {
                switch e {
                case .put(let v, _): seen.append("put \(v.key)@\(v.modRevision)")
                case .delete(let k, let r, _): seen.append("delete \(k)@\(r)")
                }
                if seen.count == 4 { break }
            }
            #expect(seen == ["put pods/p1@2", "put pods/p2@3", "delete pods/p1@4", "put pods/p3@6"])
            await #expect(throws: StoreError.self) { _ = try await store.watch(prefix: "", after: 1) }
        }
    }

    @Test func leasesExpireTheirKeys() async throws {
        try await withStoreDirectory { dir in
            let clock = ManualClock()
            var options = EmbeddedStore.Options()
            options.clock = { clock.now() }
            let store = try EmbeddedStore(directory: dir, options: options)
            let lease = try await store.grantLease(ttl: 10)
            try await store.put("nodes/n1/heartbeat", bytes("up"), lease: lease)
            try await store.put("nodes/n1/spec", bytes("kept"))
            clock.advance(6)
            try await store.keepAlive(lease)
            clock.advance(6)
            #expect(try await store.expireLeases().isEmpty)
            clock.advance(5)
            #expect(try await store.expireLeases() == [lease])
            #expect(await store.get("nodes/n1/heartbeat") == nil)
            #expect(await store.get("nodes/n1/spec") != nil)
            await #expect(throws: StoreError.self) { try await store.put("x", bytes("y"), lease: lease) }
            await #expect(throws: StoreError.self) { try await store.keepAlive(lease) }
        }
    }

    @Test func restartRecoversStateLeasesAndSnapshots() async throws {
        try await withStoreDirectory { dir in
            var options = EmbeddedStore.Options()
            options.snapshotAfterBytes = 300
            var before: [String] = []
            var lease = LeaseID(0)
            do {
                let store = try EmbeddedStore(directory: dir, options: options)
                lease = try await store.grantLease(ttl: 30)
                for i in 0..<20 { try await store.put("pods/p\(i % 7)", bytes("value \(i)"), lease: i % 3 == 0 ? lease : nil) }
                try await store.delete("pods/p2")
                before = await dump(store)
            }
            #expect(FileManager.default.fileExists(atPath: dir + "/snapshot"))
            let reopened = try EmbeddedStore(directory: dir, options: options)
            #expect(await dump(reopened) == before)
            // The lease survived the restart with its keys: revoking it deletes them.
            try await reopened.revokeLease(lease)
            #expect(await reopened.list(prefix: "").values.allSatisfy { $0.lease == nil })
            // Revisions continue where they were.
            let revision = await reopened.revision
            #expect(try await reopened.put("after", bytes("restart")) == revision + 1)
        }
    }

    /// Cut the journal at every byte of its last record, as a kill -9 in the middle of write(2) would:
    /// the store comes back with the state before that record, or after it when the record is whole.
    @Test func crashAtEveryByteOfAWriteRecoversTheLastCommittedState() async throws {
        try await withStoreDirectory { dir in
            var options = EmbeddedStore.Options()
            options.durability = .process
            let journal = dir + "/journal"
            var states: [[String]] = []
            var sizes: [Int] = []
            do {
                let store = try EmbeddedStore(directory: dir, options: options)
                let lease = try await store.grantLease(ttl: 60)
                try await store.put("a", bytes("one"))
                states.append(await dump(store)); sizes.append(try Data(contentsOf: URL(fileURLWithPath: journal)).count)
                try await store.put("b", bytes("two"), lease: lease)
                states.append(await dump(store)); sizes.append(try Data(contentsOf: URL(fileURLWithPath: journal)).count)
                try await store.delete("a")
                states.append(await dump(store)); sizes.append(try Data(contentsOf: URL(fileURLWithPath: journal)).count)
            }
            let full = try Data(contentsOf: URL(fileURLWithPath: journal))
            for step in 1..<states.count {
                for cut in sizes[step - 1]...sizes[step] {
                    let crashDir = dir + "-crash"
                    try? FileManager.default.removeItem(atPath: crashDir)
                    try FileManager.default.createDirectory(atPath: crashDir, withIntermediateDirectories: true)
                    defer { try? FileManager.default.removeItem(atPath: crashDir) }
                    try full.prefix(cut).write(to: URL(fileURLWithPath: crashDir + "/journal"))
                    let recovered = try EmbeddedStore(directory: crashDir, options: options)
                    let expected = cut == sizes[step] ? states[step] : states[step - 1]
                    #expect(await dump(recovered) == expected, "cut at \(cut)")
                    // The torn tail is gone: new writes land after the last whole record and survive.
                    try await recovered.put("next", bytes("x"))
                    let again = try EmbeddedStore(directory: crashDir, options: options)
                    #expect(await again.get("next")?.value == bytes("x"), "cut at \(cut)")
                }
            }
        }
    }

    @Test func crashDuringSnapshotLosesNothing() async throws {
        try await withStoreDirectory { dir in
            var before: [String] = []
            do {
                let store = try EmbeddedStore(directory: dir)
                for i in 0..<10 { try await store.put("k\(i)", bytes("v\(i)")) }
                before = await dump(store)
                // Crash after the snapshot was renamed into place but before the journal was emptied:
                // replay must skip what the snapshot holds rather than apply it twice.
                let journal = try Data(contentsOf: URL(fileURLWithPath: dir + "/journal"))
                try await store.snapshot()
                try journal.write(to: URL(fileURLWithPath: dir + "/journal"))
            }
            // A half-written temporary snapshot from another crash is ignored.
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/snapshot.tmp"))
            let reopened = try EmbeddedStore(directory: dir)
            #expect(await dump(reopened) == before)
        }
    }

    @Test func damagedSnapshotRefusesToStart() async throws {
        try await withStoreDirectory { dir in
            do {
                let store = try EmbeddedStore(directory: dir)
                try await store.put("k", bytes("v"))
                try await store.snapshot()
            }
            var snapshot = try Data(contentsOf: URL(fileURLWithPath: dir + "/snapshot"))
            snapshot[snapshot.count - 2] ^= 0xff
            try snapshot.write(to: URL(fileURLWithPath: dir + "/snapshot"))
            #expect(throws: StoreError.self) { _ = try EmbeddedStore(directory: dir) }
        }
    }
}

@Suite struct StoreLeaseRestartTests {
    /// A lease granted before a restart runs out after it, with no new grant to wake the timer.
    @Test func leasesReadBackFromDiskExpire() async throws {
        try await withStoreDirectory { dir in
            do {
                let store = try EmbeddedStore(directory: dir)
                let lease = try await store.grantLease(ttl: 0.5)
                try await store.put("leases/n1", bytes("n1"), lease: lease)
            }
            let reopened = try EmbeddedStore(directory: dir)
            #expect(await reopened.get("leases/n1") != nil)
            // Gone within 100 ms of the deadline. The test waits longer because the store's timer shares the
            // test process's cooperative threads with the other tests, whose synchronous waits on subprocesses
            // held it back 1.6 s, and once over 10 s, when the CLI tests ran in the same process.
            let deadline = ContinuousClock.now + .seconds(30)
            while await reopened.get("leases/n1") != nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(await reopened.get("leases/n1") == nil)
        }
    }
}

@Suite struct StoreBatchTests {
    @Test func batchSwapsEachKeyOnItsOwnAndSurvivesRestart() async throws {
        try await withStoreDirectory { dir in
            var expected: [String] = []
            do {
                let store = try EmbeddedStore(directory: dir)
                try await store.put("pods/a", bytes("pending"))
                try await store.put("pods/b", bytes("pending"))
                let results = try await store.txn([
                    .put("pods/a", bytes("bound n1"), expected: 1),
                    .put("pods/b", bytes("stale"), expected: 1),
                    .put("pods/c", bytes("new"), expected: nil),
                ])
                // One transaction is one revision, as on etcd.
                #expect(results.map { if case .swapped(let r) = $0 { "ok \(r)" } else { "conflict" } }
                        == ["ok 3", "conflict", "ok 3"])
                #expect(try await store.txn([.put("pods/a", bytes("bound again"), expected: 3), .delete("pods/c", expected: 3)])
                        == [.swapped(revision: 4), .swapped(revision: 4)])
                expected = await dump(store)
            }
            let reopened = try EmbeddedStore(directory: dir)
            #expect(await dump(reopened) == expected)
            #expect(await reopened.get("pods/a")?.value == bytes("bound again"))
        }
    }
}
