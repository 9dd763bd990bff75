import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

extension NodeAPIStore {
    /// What joining gives a node: the cluster CA (pinned by the token's hash) and the node's credential.
    public struct Joined: Sendable, Codable {
        public var caPEM: String
        public var credential: String
    }

    /// Joins the cluster through the first server that answers: reads its CA without trusting it, keeps it
    /// only if its SHA-256 is the token's `caHash`, then presents the join secret over TLS that trusts
    /// that CA alone, and gets the node's credential.
    public static func join(servers: [String], caHash: String, secret: String, node: String) async throws -> Joined {
        var failures: [String] = []
        for server in servers.map({ $0.hasSuffix("/") ? String($0.dropLast()) : $0 }) {
            do {
                let caPEM = try await fetchCA(server)
                let hash = NodeAPIWire.sha256(caPEM)
                guard hash == caHash.lowercased() else {
                    throw StoreError(code: .forbidden, message: "\(server) presents a CA whose hash \(hash.prefix(12))… is not the token's \(caHash.prefix(12))…: not this cluster's server, or the token is old")
                }
                let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: try configuration(caPEM: caPEM))
                defer { _ = client.shutdown() }
                var request = HTTPClientRequest(url: server + NodeAPIWire.prefix + "/join")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(NodeAPIWire.Join(node: node, secret: secret))))
                let response = try await client.execute(request, deadline: .now() + .seconds(15))
                let body = try await response.body.collect(upTo: 1 << 20)
                guard response.status == .ok else {
                    let failure = try? JSONDecoder().decode(NodeAPIWire.Failure.self, from: Data(body.readableBytesView))
                    throw failure?.storeError ?? StoreError(code: .unavailable, message: "\(server) answered \(response.status.code) to the join")
                }
                let credential = try JSONDecoder().decode(NodeAPIWire.Credential.self, from: Data(body.readableBytesView))
                return Joined(caPEM: caPEM, credential: credential.credential)
            } catch let e as StoreError where e.code == .forbidden {
                throw e
            } catch {
                failures.append("\(server): \(error)")
            }
        }
        throw StoreError(code: .unavailable, message: "no server to join: " + failures.joined(separator: "; "))
    }

    /// The CA a server presents at /cacerts, read before anything is trusted: the caller checks its hash.
    static func fetchCA(_ server: String) async throws -> String {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        var config = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: .seconds(2), read: .seconds(10)))
        config.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
        defer { _ = client.shutdown() }
        let response = try await client.execute(HTTPClientRequest(url: server + "/cacerts"), deadline: .now() + .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else { throw StoreError(code: .unavailable, message: "\(server)/cacerts answered \(response.status.code)") }
        return String(decoding: body.readableBytesView, as: UTF8.self)
    }
}
