import BerthCluster
import BerthStore
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The cluster's CA, shared by the servers through the store: the first server makes it (with the join
/// secret); each server signs its own serving certificate with it at start. Agents pin it by the hash in
/// their join token.
public struct ClusterCA: Sendable {
    public let secrets: ClusterSecretsRecord

    /// The SHA-256 (hex) of the CA certificate's PEM, as a join token carries it.
    public var hash: String { NodeAPIWire.sha256(secrets.caCertificatePEM) }

    public var joinToken: JoinToken { JoinToken(caHash: hash, secret: secrets.joinSecret) }

    /// The store's CA, made and stored first if there is none (two servers starting at once: one wins the
    /// compare-and-swap, the other reads its CA).
    public static func load(from store: any Store) async throws -> ClusterCA {
        let key = ClusterKey.clusterSecrets.path
        for _ in 0..<3 {
            if let stored = try await store.get(key) {
                return ClusterCA(secrets: try JSONDecoder().decode(ClusterSecretsRecord.self, from: Data(stored.value)))
            }
            let made = try make()
            if case .swapped = try await store.compareAndSwap(key, expected: nil, value: Array(try JSONEncoder().encode(made))) {
                return ClusterCA(secrets: made)
            }
        }
        throw StoreError(code: .unavailable, message: "the cluster CA could not be read or made")
    }

    /// A new join secret, in place of the old one; nodes that joined keep their credentials.
    public static func rotateJoinSecret(in store: any Store) async throws -> ClusterCA {
        let key = ClusterKey.clusterSecrets.path
        for _ in 0..<5 {
            guard let stored = try await store.get(key) else { break }
            var secrets = try JSONDecoder().decode(ClusterSecretsRecord.self, from: Data(stored.value))
            secrets.joinSecret = NodeAPIWire.randomSecret()
            if case .swapped = try await store.compareAndSwap(key, expected: stored.modRevision, value: Array(try JSONEncoder().encode(secrets))) {
                return ClusterCA(secrets: secrets)
            }
        }
        throw StoreError(code: .unavailable, message: "the join secret could not be rotated")
    }

    static func make() throws -> ClusterSecretsRecord {
        let key = P256.Signing.PrivateKey()
        let caKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName { CommonName("berth-ca@\(Int(Date().timeIntervalSince1970))") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: caKey.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: caKey)
        return ClusterSecretsRecord(caCertificatePEM: try certificate.serializeAsPEM().pemString, caKeyPEM: key.pemRepresentation,
                                    joinSecret: NodeAPIWire.randomSecret())
    }

    /// A serving certificate for this server, valid for `names` (host names and IP addresses), signed by
    /// the CA, with its key: the TLS configuration of the node API.
    public func serverTLS(names: [String]) throws -> TLSConfiguration {
        let caKey = Certificate.PrivateKey(try P256.Signing.PrivateKey(pemRepresentation: secrets.caKeyPEM))
        let ca = try Certificate(pemEncoded: secrets.caCertificatePEM)
        let key = P256.Signing.PrivateKey()
        let leafKey = Certificate.PrivateKey(key)
        var sans: [GeneralName] = []
        for name in Set(names).sorted() {
            if let octets = Self.ipv4(name) { sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(octets)))) } else { sans.append(.dnsName(name)) }
        }
        let now = Date()
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: leafKey.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(365 * 86400),
            issuer: ca.subject, subject: try DistinguishedName { CommonName("berth-server") }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(sans)
            },
            issuerPrivateKey: caKey)
        return TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(leaf.serializeAsPEM().pemString.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
    }

    static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let octets = parts.compactMap { UInt8($0) }
        return octets.count == 4 ? octets : nil
    }
}
