import BerthStore
import BerthTestSupport
import Foundation
import Testing

/// What every Store must do, checked on the embedded store and on real etcd (Debian's etcd-server, one
/// member and three on loopback ports): the control plane and the nodes rely on exactly this.
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case embedded, etcd, etcdCluster
    var testDescription: String { rawValue }
}

/// A store of the backend, fresh for one test, and the etcd cluster behind it (nil for the embedded one).
func withStore<T>(_ backend: Backend, _ body: (any Store, TestEtcd?) async throws -> T) async throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-store-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    switch backend {
    case .embedded:
        return try await body(try EmbeddedStore(directory: dir), nil)
    case .etcd, .etcdCluster:
        let etcd = try await TestEtcd.start(dir: dir, members: backend == .etcd ? 1 : 3)
        defer { etcd.stop() }
        var options = try EtcdOptions(url: etcd.url)
        options.requestTimeout = .seconds(20)
        let store = try EtcdStore(options: options)
        do {
            let result = try await body(store, etcd)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}


/// The next `count` events of a watch, or fewer if they do not come within `timeout`.
func next(_ count: Int, of stream: AsyncThrowingStream<WatchEvent, any Error>, timeout: Duration = .seconds(15)) async throws -> [WatchEvent] {
    try await withThrowingTaskGroup(of: [WatchEvent]?.self) { group in
        group.addTask {
            var events: [WatchEvent] = []
            for try await e in stream {
                events.append(e)
                if events.count == count { break }
            }
            return events
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        return first ?? []
    }
}

func describe(_ e: WatchEvent) -> String {
    switch e {
    case .put(let v, let previous): "put \(v.key)=\(String(decoding: v.value, as: UTF8.self))\(previous == nil ? "" : " over \(String(decoding: previous!.value, as: UTF8.self))")"
    case .delete(let k, _, let previous): "delete \(k) was \(String(decoding: previous.value, as: UTF8.self))"
    }
}

@Suite(.serialized) struct StoreConformanceTests {
    @Test(arguments: Backend.allCases)
    func compareAndSwapNeverLosesAnUpdate(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let r1 = try await store.put("pods/a", bytes("1"), lease: nil)
            let r2 = try await store.put("pods/b", bytes("2"), lease: nil)
            #expect(r2 > r1)
            let a = try #require(try await store.get("pods/a"))
            #expect(a.value == bytes("1") && a.modRevision == r1 && a.createRevision == r1 && a.version == 1)
            #expect(try await store.get("pods/none") == nil)
            let (listed, at) = try await store.list(prefix: "pods/")
            #expect(listed.map(\.key) == ["pods/a", "pods/b"] && at >= r2)
            #expect(try await store.list(prefix: "pod/").values.isEmpty)

            // Two writers read revision r1; the second one's write conflicts and shows the first's.
            guard case .swapped(let r3) = try await store.compareAndSwap("pods/a", expected: r1, value: bytes("first")) else {
                Issue.record("the first writer's swap failed")
                return
            }
            guard case .conflict(let current?) = try await store.compareAndSwap("pods/a", expected: r1, value: bytes("second")) else {
                Issue.record("the second writer overwrote the first")
                return
            }
            #expect(current.value == bytes("first") && current.modRevision == r3 && current.version == 2)
            // Creation is a swap on absence.
            if case .conflict(let existing) = try await store.compareAndSwap("pods/b", expected: nil, value: bytes("again")) {
                #expect(existing?.value == bytes("2"))
            } else {
                Issue.record("a create over an existing key succeeded")
            }

            // A transaction: each write on its own, all at one revision.
            let results = try await store.txn([
                .put("pods/a", bytes("bound"), expected: r3),
                .put("pods/b", bytes("stale"), expected: r1),
                .put("pods/c", bytes("new"), expected: nil),
                .delete("pods/b", expected: r1).withKey("pods/d"),
            ], fence: nil)
            guard case .swapped(let r4) = results[0], case .conflict = results[1], case .swapped(let r4c) = results[2],
                  case .conflict(nil) = results[3] else {
                Issue.record("unexpected transaction results \(results)")
                return
            }
            #expect(r4 == r4c && r4 > r3)
            #expect(try await store.get("pods/b")?.value == bytes("2"))
            await #expect(throws: StoreError.self) {
                try await store.txn([.put("pods/x", [], expected: nil), .put("pods/x", [], expected: nil)], fence: nil)
            }

            // A fenced transaction writes nothing once the fence moved.
            let lead = try await store.put("leader", bytes("me"), lease: nil)
            #expect(try await store.txn([.put("pods/c", bytes("led"), expected: r4)], fence: StoreFence(key: "leader", modRevision: lead)).count == 1)
            try await store.put("leader", bytes("someone else"), lease: nil)
            do {
                _ = try await store.txn([.put("pods/e", bytes("late"), expected: nil)], fence: StoreFence(key: "leader", modRevision: lead))
                Issue.record("a fenced write went through after the fence moved")
            } catch let e as StoreError {
                #expect(e.code == .fenced)
            }
            #expect(try await store.get("pods/e") == nil)

            // Deletes compare too.
            let c = try #require(try await store.get("pods/c"))
            #expect(try await store.delete("pods/c", expected: c.modRevision - 1) == nil)
            #expect(try await store.delete("pods/c", expected: c.modRevision)?.value == bytes("led"))
            #expect(try await store.get("pods/c") == nil)
            #expect(try await store.delete("pods/a", expected: nil)?.value == bytes("bound"))
        }
    }

    @Test(arguments: Backend.allCases)
    func largeTransactionsAndListsArriveWhole(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            // More than etcd's 128 operations and more than one page of a list.
            let writes = (0..<1500).map { StoreWrite.put("pods/p\(String(format: "%04d", $0))", Array(repeating: 120, count: 1000), expected: nil) }
            let results = try await store.txn(writes, fence: nil)
            #expect(results.allSatisfy { if case .swapped = $0 { true } else { false } })
            let (values, _) = try await store.list(prefix: "pods/")
            #expect(values.count == 1500 && values.map(\.key) == values.map(\.key).sorted())
            #expect(values.first?.key == "pods/p0000" && values.last?.key == "pods/p1499")
        }
    }

    @Test(arguments: Backend.allCases)
    func watchesResumeFromARevisionAndEndWhenItIsCompacted(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let r1 = try await store.put("pods/a", bytes("1"), lease: nil)
            try await store.put("nodes/n", bytes("x"), lease: nil)
            try await store.put("pods/a", bytes("2"), lease: nil)
            // From r1: what came after it, then what happens next; other prefixes are not seen.
            let stream = try await store.watch(prefix: "pods/", after: r1)
            try await store.put("pods/b", bytes("3"), lease: nil)
            try await store.delete("pods/a", expected: nil)
            let events = try await next(3, of: stream)
            #expect(events.map(describe) == ["put pods/a=2 over 1", "put pods/b=3", "delete pods/a was 2"])
            #expect(events.map(\.revision) == events.map(\.revision).sorted())

            // A transaction's writes arrive together, at one revision.
            let tail = try await store.revision
            let later = try await store.watch(prefix: "pods/", after: tail)
            _ = try await store.txn([.put("pods/c", bytes("c"), expected: nil), .put("pods/d", bytes("d"), expected: nil)], fence: nil)
            let both = try await next(2, of: later)
            #expect(both.count == 2 && both[0].revision == both[1].revision)

            // Compacted history: the watch from before it ends with `compacted` (at once or from the stream).
            let now = try await store.revision
            try await store.compact(to: now)
            do {
                let old = try await store.watch(prefix: "pods/", after: r1)
                _ = try await next(1, of: old)
                Issue.record("a watch from compacted history went on")
            } catch let e as StoreError {
                #expect(e.code == .compacted)
            }
            // From the present it works.
            let fresh = try await store.watch(prefix: "pods/", after: now)
            try await store.put("pods/e", bytes("e"), lease: nil)
            #expect(try await next(1, of: fresh).map(describe) == ["put pods/e=e"])
        }
    }

    @Test(arguments: Backend.allCases)
    func leasesThatAreNotRenewedDeleteTheirKeys(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let kept = try await store.grantLease(ttl: 2)
            let dropped = try await store.grantLease(ttl: 2)
            try await store.put("leases/kept", bytes("k"), lease: kept)
            try await store.put("leases/dropped", bytes("d"), lease: dropped)
            let watch = try await store.watch(prefix: "leases/", after: try await store.revision)
            // Renewed every 0.5 s for 4 s: the kept key outlives two TTLs; the other goes.
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(4) {
                try await store.keepAlive(kept)
                try await Task.sleep(for: .milliseconds(500))
            }
            let events = try await next(1, of: watch, timeout: .seconds(5))
            #expect(events.map(describe) == ["delete leases/dropped was d"])
            #expect(try await store.get("leases/kept")?.value == bytes("k"))
            #expect(try await store.get("leases/dropped") == nil)
            await #expect(throws: StoreError.self) { try await store.keepAlive(dropped) }
            await #expect(throws: StoreError.self) { try await store.put("leases/late", bytes("x"), lease: dropped) }
            // Revoking deletes at once.
            try await store.revokeLease(kept)
            #expect(try await store.get("leases/kept") == nil)
        }
    }

    /// Three members, the leader killed while a watch is open and writes go on: the client moves to a
    /// member that answers, no write is lost and the watch misses nothing.
    @Test func aDeadEtcdLeaderIsReplacedWithoutTheClientNoticing() async throws {
        try await withStore(.etcdCluster) { store, etcd in
            let etcd = try #require(etcd)
            let watch = try await store.watch(prefix: "pods/", after: try await store.revision)
            for i in 0..<20 { try await store.put("pods/p\(i)", bytes("before"), lease: nil) }
            etcd.kill(try etcd.leader())
            for i in 20..<40 { try await store.put("pods/p\(i)", bytes("after"), lease: nil) }
            let events = try await next(40, of: watch, timeout: .seconds(20))
            #expect(events.count == 40)
            #expect(Set(events.map(\.key)).count == 40)
            #expect(try await store.list(prefix: "pods/").values.count == 40)
            // Kill the next leader too: two of three gone, no quorum, writes fail with a clear error.
            var options = try EtcdOptions(url: etcd.url)
            options.requestTimeout = .seconds(2)
            let impatient = try EtcdStore(options: options)
            defer { Task { await impatient.close() } }
            etcd.kill(try etcd.leader())
            do {
                try await impatient.put("pods/none", bytes("x"), lease: nil)
                Issue.record("a write went through without quorum")
            } catch let e as StoreError {
                #expect(e.code == .unavailable && e.message.contains("etcd at"))
            }
        }
    }
}

/// etcd as operators secure it: TLS to clients with a CA of their own, and users.
@Suite struct EtcdAccessTests {
    @Test func tlsAndUsersAreHonouredAndRefusedClearly() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-etcd-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let etcd = try await TestEtcd.start(dir: dir, members: 1, tls: true, user: ("root", "s3cret pass"))
        defer { etcd.stop() }
        var options = try EtcdOptions(url: etcd.url)
        #expect(options.tls)
        options.caFile = etcd.caFile
        options.username = "root"
        options.password = "s3cret pass"
        let store = try EtcdStore(options: options)
        try await store.put("pods/a", Array("1".utf8), lease: nil)
        #expect(try await store.get("pods/a")?.value == Array("1".utf8))
        let watch = try await store.watch(prefix: "pods/", after: try await store.revision)
        try await store.put("pods/b", Array("2".utf8), lease: nil)
        #expect(try await next(1, of: watch).map(describe) == ["put pods/b=2"])
        await store.close()

        // The refusals below need not wait the default 15 s; etcd checks a password with bcrypt, which on a
        // loaded machine (the full suite, three groups at once) took over 3 s.
        options.requestTimeout = .seconds(10)
        // A wrong password: refused, and said so.
        var wrong = options
        wrong.password = "guess"
        let refused = try EtcdStore(options: wrong)
        do {
            _ = try await refused.get("pods/a")
            Issue.record("a wrong password was accepted")
        } catch let e as StoreError {
            #expect(e.message.contains("authentication as root failed"), "\(e.message)")
        }
        await refused.close()
        // Without the user: etcd refuses.
        var anonymous = options
        anonymous.username = nil
        let stranger = try EtcdStore(options: anonymous)
        await #expect(throws: StoreError.self) { _ = try await stranger.get("pods/a") }
        await stranger.close()
        // Without the CA the server's certificate is not trusted: nothing is sent.
        var untrusted = options
        untrusted.caFile = nil
        let unverified = try EtcdStore(options: untrusted)
        await #expect(throws: StoreError.self) { _ = try await unverified.get("pods/a") }
        await unverified.close()
        // Plain text to a TLS port fails too.
        var plain = try EtcdOptions(url: "etcd://" + etcd.members[0].endpoint)
        plain.requestTimeout = .seconds(2)
        let cleartext = try EtcdStore(options: plain)
        await #expect(throws: StoreError.self) { _ = try await cleartext.get("pods/a") }
        await cleartext.close()
    }

    /// Members that require client certificates (`--client-cert-auth`): berth's certificate and key get
    /// in; without them the handshake fails and the call says so.
    @Test func clientCertificatesAreSentWhenGiven() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-etcd-mtls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let etcd = try await TestEtcd.start(dir: dir, members: 1, tls: true, clientCerts: true)
        defer { etcd.stop() }
        var options = try EtcdOptions(url: etcd.url)
        options.caFile = etcd.caFile
        options.certFile = etcd.clientCert
        options.keyFile = etcd.clientKey
        let store = try EtcdStore(options: options)
        try await store.put("pods/a", Array("1".utf8), lease: nil)
        #expect(try await store.get("pods/a")?.value == Array("1".utf8))
        await store.close()
        var anonymous = options
        anonymous.certFile = nil
        anonymous.keyFile = nil
        anonymous.requestTimeout = .seconds(3)
        let refused = try EtcdStore(options: anonymous)
        await #expect(throws: StoreError.self) { _ = try await refused.get("pods/a") }
        await refused.close()
    }

    /// etcd's tokens run out (here after 2 s unused): the next call authenticates again and goes through;
    /// a watch opened before keeps delivering, and one opened with the stale token opens again with a new one.
    @Test func anExpiredTokenIsRenewed() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-etcd-token-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let etcd = try await TestEtcd.start(dir: dir, members: 1, user: ("root", "pw"), flags: ["--auth-token-ttl", "2"])
        defer { etcd.stop() }
        var options = try EtcdOptions(url: etcd.url)
        options.username = "root"
        options.password = "pw"
        let store = try EtcdStore(options: options)
        defer { Task { await store.close() } }
        try await store.put("pods/a", Array("1".utf8), lease: nil)
        let revision = try await store.revision
        let early = try await store.watch(prefix: "pods/", after: revision)
        try await Task.sleep(for: .seconds(5))
        let late = try await store.watch(prefix: "pods/", after: revision)
        try await store.put("pods/b", Array("2".utf8), lease: nil)
        #expect(try await store.get("pods/b")?.value == Array("2".utf8))
        #expect(try await next(1, of: early).map(describe) == ["put pods/b=2"])
        #expect(try await next(1, of: late).map(describe) == ["put pods/b=2"])
    }

    @Test func storeURLsAreReadOrRefusedWithTheReason() throws {
        let o = try EtcdOptions(url: "etcd://10.0.0.1:2379,etcd-2,[::1]:12379/")
        #expect(o.endpoints.map(\.description) == ["10.0.0.1:2379", "etcd-2:2379", "[::1]:12379"] && !o.tls)
        #expect(try EtcdOptions(url: "etcds://h:1").tls)
        for bad in ["http://h:2379", "etcd://h:0", "etcd://h:x", "etcd://user:pw@h:2379", "etcd://", "etcd://h:2379,,h2"] {
            #expect(throws: StoreError.self, "\(bad)") { try EtcdOptions(url: bad) }
        }
    }
}

extension StoreWrite {
    func withKey(_ key: String) -> StoreWrite { StoreWrite(key: key, expected: expected, operation: operation) }
}
