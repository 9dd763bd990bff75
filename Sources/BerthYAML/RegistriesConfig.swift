import BerthModel
import Foundation

/// The node's registry settings, in the `registries.yaml` format k3s users know:
///
///     mirrors:
///       docker.io:
///         endpoint: ["https://mirror.internal:5000", "http://127.0.0.1:5001"]
///     configs:
///       "mirror.internal:5000":
///         auth: {username: u, password: p}
///         tls: {ca_file: /etc/berth/mirror-ca.pem}
///
/// Each registry is tried through its mirrors in order, then at its origin. Plain HTTP is used only for an
/// endpoint written `http://`: listing it is how a registry is declared insecure.
public struct RegistriesConfig: Sendable, Equatable {
    public struct HostConfig: Sendable, Equatable {
        public var credential: RegistryCredential?
        /// PEM bundle of the CAs trusted for this host (instead of the system's).
        public var caFile: String?
        public var insecureSkipVerify = false
        public init() {}
    }

    /// Registry host → endpoint URLs (`https://host:port` or `http://host:port`, optionally with a path prefix).
    public var mirrors: [String: [String]] = [:]
    /// Endpoint or registry host → its credentials and TLS settings.
    public var configs: [String: HostConfig] = [:]
    public init() {}

    /// Reads a file; every problem is reported as `FILE:LINE:COL: error: message (field)`.
    public static func load(_ path: String) throws -> RegistriesConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw YAMLConfigError("\(path): cannot read the file") }
        return try decode([UInt8](data), path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String) throws -> RegistriesConfig {
        let documents: [YAMLNode]
        do { documents = try YAMLParser.parse(bytes) } catch { throw YAMLConfigError("\(path): \(error)") }
        var out = RegistriesConfig()
        guard let document = documents.first else { return out }
        let ctx = DecodeContext(path: path, document: document)
        if let r = MapReader(document, path: .root, ctx: ctx) {
            for e in r.entries("mirrors") ?? [] {
                let field = r.path.field("mirrors").key(e.key)
                guard let m = MapReader(e.value, path: field, ctx: ctx) else { continue }
                let endpoints = m.stringList("endpoint", required: true) ?? []
                for (i, url) in endpoints.enumerated() where endpointHost(url) == nil {
                    ctx.error("endpoint \"\(url)\" is not an http:// or https:// URL with a host", field: field.field("endpoint").index(i))
                }
                m.ignore("rewrite")
                m.finish()
                out.mirrors[e.key] = endpoints
            }
            for e in r.entries("configs") ?? [] {
                let field = r.path.field("configs").key(e.key)
                guard let c = MapReader(e.value, path: field, ctx: ctx) else { continue }
                var host = HostConfig()
                c.object("auth") { a in
                    a.ignore("identitytoken")
                    if let auth = a.string("auth", redact: true) {
                        host.credential = DockerConfigJSON.credential(auth: auth)
                        if host.credential == nil { a.error("auth", "must be base64 of user:password") }
                    } else if let user = a.string("username", required: true), let password = a.string("password", required: true, redact: true) {
                        host.credential = RegistryCredential(username: user, password: password)
                    }
                }
                c.object("tls") { t in
                    t.ignore("cert_file", "key_file")
                    host.caFile = t.string("ca_file")
                    host.insecureSkipVerify = t.bool("insecure_skip_verify") ?? false
                    if let ca = host.caFile, !FileManager.default.isReadableFile(atPath: ca) {
                        t.error("ca_file", "cannot read \(ca)")
                    }
                }
                c.finish()
                out.configs[DockerConfigJSON.registryHost(e.key)] = host
            }
            r.finish()
        }
        let errors = ctx.findings.filter { $0.severity == .error }
        if !errors.isEmpty { throw YAMLConfigError(errors.map(\.formatted).joined(separator: "\n")) }
        return out
    }

    /// `host:port` of an endpoint URL, or nil when it is not http(s).
    public static func endpointHost(_ url: String) -> String? {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { return nil }
        let host = DockerConfigJSON.registryHost(url)
        return host.isEmpty ? nil : host
    }
}
