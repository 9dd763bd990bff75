import Foundation

/// One leader among the servers that share a store, on a lease: the leader holds `key`, attached to its
/// lease, and renews the lease at a third of its time to live. Whoever else campaigns waits for the key
/// to go (the leader resigned, or its lease expired because it died or stopped answering) and takes it.
/// Every write of the leader carries the key's revision as a fence, so a leader that lost the key, even
/// one that does not know it yet (paused, cut off), cannot write any more.
public actor LeaderElection {
    public let store: any Store
    public let key: String
    public let identity: String
    public let ttl: Double
    private var lease: LeaseID?

    public init(store: any Store, key: String, identity: String, ttl: Double = 5) {
        self.store = store
        self.key = key
        self.identity = identity
        self.ttl = ttl
    }

    /// Waits until this candidate leads; returns the fence its writes must carry.
    public func campaign() async throws -> StoreFence {
        while true {
            try Task.checkCancellation()
            let lease = try await store.grantLease(ttl: ttl)
            self.lease = lease
            switch try await store.compareAndSwap(key, expected: nil, value: Array(identity.utf8), lease: lease) {
            case .swapped(let revision):
                return StoreFence(key: key, modRevision: revision)
            case .conflict(let current):
                try? await store.revokeLease(lease)
                self.lease = nil
                guard let current else { continue }
                try await waitForDeletion(after: current.modRevision)
            }
        }
    }

    private func waitForDeletion(after revision: Int64) async throws {
        let events = try await store.watch(prefix: key, after: revision)
        for try await event in events where event.key == key {
            if case .delete = event { return }
        }
    }

    /// Renews the lease until it cannot: returns when leadership is lost (the lease ended, or it could not
    /// be renewed for a whole time to live), or throws CancellationError when cancelled.
    public func keepLeading() async throws {
        guard let lease else { return }
        var lastRenewed = ContinuousClock.now
        while true {
            try await Task.sleep(for: .milliseconds(Int(ttl * 1000 / 3)))
            do {
                try await store.keepAlive(lease)
                lastRenewed = ContinuousClock.now
            } catch let e as StoreError where e.code == .unknownLease {
                self.lease = nil
                return
            } catch {
                // The store did not answer in time: the lease may still be alive, until a ttl has passed.
                if ContinuousClock.now - lastRenewed >= .milliseconds(Int(ttl * 1000)) {
                    self.lease = nil
                    return
                }
            }
        }
    }

    /// Gives up leadership at once (another candidate takes over without waiting for the lease).
    public func resign() async {
        guard let lease else { return }
        self.lease = nil
        // If the store cannot be reached the lease ends by itself within its time to live.
        try? await store.revokeLease(lease)
    }
}
