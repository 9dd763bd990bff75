import Crypto
import Foundation

/// The node API's JSON: the `Store` calls an agent makes, carried over HTTPS to a server, which makes them
/// on etcd (or its embedded store) once the node's right to them is checked. Values travel as base64.
public enum NodeAPIWire {
    public static let prefix = "/v1/node"

    public struct Value: Codable, Sendable {
        public var key: String
        public var value: Data
        public var createRevision: Int64
        public var modRevision: Int64
        public var version: Int64
        public var lease: Int64?

        public init(_ v: StoredValue) {
            key = v.key
            value = Data(v.value)
            createRevision = v.createRevision
            modRevision = v.modRevision
            version = v.version
            lease = v.lease?.raw
        }

        public var stored: StoredValue {
            StoredValue(key: key, value: Array(value), createRevision: createRevision, modRevision: modRevision, version: version, lease: lease.map(LeaseID.init))
        }
    }

    public struct Got: Codable, Sendable {
        public var value: Value?
        public init(value: Value?) { self.value = value }
    }

    public struct List: Codable, Sendable {
        public var values: [Value]
        public var revision: Int64
        public init(values: [Value], revision: Int64) {
            self.values = values
            self.revision = revision
        }
    }

    /// One line of a watch: an event, a progress mark (the stream is alive), or the error that ends it.
    public struct Event: Codable, Sendable {
        public var put: Value?
        public var deleted: Value?
        public var revision: Int64?
        public var error: Failure?

        public init(_ e: WatchEvent) {
            switch e {
            case .put(let v, _): put = Value(v)
            case .delete(let key, let revision, let previous):
                var p = Value(previous)
                p.key = key
                deleted = p
                self.revision = revision
            }
        }

        public init(progress revision: Int64) { self.revision = revision }
        public init(error: Failure) { self.error = error }

        var event: WatchEvent? {
            if let put { return .put(put.stored, previous: nil) }
            if let deleted, let revision { return .delete(key: deleted.key, revision: revision, previous: deleted.stored) }
            return nil
        }
    }

    public struct Write: Codable, Sendable {
        public var key: String
        public var expected: Int64?
        /// nil: a delete.
        public var value: Data?
        public var lease: Int64?

        public init(_ w: StoreWrite) {
            key = w.key
            expected = w.expected
            if case .put(let bytes, let lease) = w.operation {
                value = Data(bytes)
                self.lease = lease?.raw
            }
        }

        public var write: StoreWrite {
            StoreWrite(key: key, expected: expected, operation: value.map { .put(Array($0), lease: lease.map(LeaseID.init)) } ?? .delete)
        }
    }

    public struct Txn: Codable, Sendable {
        public var writes: [Write]
        public init(writes: [Write]) { self.writes = writes }
    }

    public struct Swap: Codable, Sendable {
        public var revision: Int64?
        public var current: Value?

        public init(_ r: SwapResult) {
            switch r {
            case .swapped(let revision): self.revision = revision
            case .conflict(let current): self.current = current.map(Value.init)
            }
        }

        public var result: SwapResult { revision.map { .swapped(revision: $0) } ?? .conflict(current: current?.stored) }
    }

    public struct TxnAnswer: Codable, Sendable {
        public var results: [Swap]
        public init(results: [Swap]) { self.results = results }
    }

    public struct Put: Codable, Sendable {
        public var key: String
        public var value: Data
        public var lease: Int64?
        public init(key: String, value: Data, lease: Int64?) {
            self.key = key
            self.value = value
            self.lease = lease
        }
    }

    /// The prefixes an agent follows on one stream (`/follow`), each from its revision.
    public struct Follow: Codable, Sendable {
        public struct From: Codable, Sendable {
            public var prefix: String
            public var after: Int64
            public init(prefix: String, after: Int64) {
                self.prefix = prefix
                self.after = after
            }
        }
        public var prefixes: [From]
        public init(prefixes: [From]) { self.prefixes = prefixes }
    }

    public struct Lease: Codable, Sendable {
        public var id: Int64?
        public var ttl: Double?
        public init(id: Int64? = nil, ttl: Double? = nil) {
            self.id = id
            self.ttl = ttl
        }
    }

    public struct Revision: Codable, Sendable {
        public var revision: Int64
        public init(revision: Int64) { self.revision = revision }
    }

    /// A refusal or a store error, with the store's code so that the agent reacts as it would locally
    /// (`compacted`: list again; `unknownLease`: take a new lease).
    public struct Failure: Codable, Sendable, Error {
        public var code: String
        public var message: String
        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }

        public init(_ e: StoreError) { self.init(code: e.code.rawValue, message: e.message) }

        public var storeError: StoreError { StoreError(code: StoreError.Code(rawValue: code) ?? .unavailable, message: message) }
    }

    /// What a node sends to join, and what it gets: its credential, which the servers keep only as a hash.
    public struct Join: Codable, Sendable {
        public var node: String
        public var secret: String
        public init(node: String, secret: String) {
            self.node = node
            self.secret = secret
        }
    }

    public struct Credential: Codable, Sendable {
        public var node: String
        public var credential: String
        public init(node: String, credential: String) {
            self.node = node
            self.credential = credential
        }
    }

    /// The SHA-256 of `text`, hex: how a join token pins the CA, and how servers keep node credentials.
    public static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// 32 random bytes, hex: join secrets, node credentials, API tokens.
    public static func randomSecret() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }
}
