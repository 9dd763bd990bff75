import AsyncHTTPClient
import BerthModel
import BerthYAML
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Why a pull failed, in the registry's words where it gave some (`401 unauthorized: …`, `404 manifest
/// unknown: …`). Never carries a credential.
public struct PullError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How the node reaches registries: mirrors, TLS, credentials, and the hard limits on what it accepts.
public struct RegistryOptions: Sendable {
    public var registries = RegistriesConfig()
    /// The node's credentials file (Docker `config.json`), by registry host.
    public var credentials: [String: RegistryCredential] = [:]
    public var maxManifestBytes = 4 << 20
    public var maxConfigBytes = 8 << 20
    public var maxLayers = 128
    /// Most bytes one layer may decompress to, and all of an image's layers together.
    public var maxLayerBytes = 4 << 30
    public var maxImageBytes = 16 << 30
    /// Layers fetched at once, as containerd does.
    public var concurrentDownloads = 3
    /// A connection that sends nothing for this long is given up (a stalled blob).
    public var stallTimeout: Int64 = 30
    public var connectTimeout: Int64 = 10
    public var maxRedirects = 5
    /// Try a mirrored registry itself after its mirrors (off for air-gapped nodes, where it only costs a timeout).
    public var defaultEndpoints = true
    public init() {}
}

/// One place an image can be fetched from: a mirror or the registry itself.
public struct Endpoint: Sendable, CustomStringConvertible {
    /// `https://host:port` (or `http://` for a registry listed as insecure), with any path prefix.
    public var base: String
    /// `host:port`, the key of its credentials and TLS settings.
    var host: String
    var isMirror: Bool
    public var description: String { base }
}

/// The OCI distribution client: authentication (anonymous, Bearer tokens, Basic), redirects, error
/// bodies. One HTTPClient per TLS setting; tokens cached until they expire.
public final class RegistryClient: Sendable {
    public let options: RegistryOptions
    /// nil once shut down: no client is made after that (each must be shut down before it goes).
    private let clients = Mutex<[String: HTTPClient]?>([:])
    private let tokens = Mutex<[String: (value: String, expires: Double)]>([:])
    /// Requests sent, for tests and benchmarks that count them.
    public let requests = Atomic<Int>(0)

    public init(options: RegistryOptions) { self.options = options }

    public func shutdown() async {
        let all = clients.withLock { c in
            defer { c = nil }
            return Array(c?.values ?? [:].values)
        }
        for c in all { try? await c.shutdown() }
    }

    /// Mirrors in order, then the registry itself (`registry-1.docker.io` for `docker.io`).
    public func endpoints(for registry: String) -> [Endpoint] {
        var out: [Endpoint] = []
        for url in options.registries.mirrors[registry] ?? [] {
            guard let host = RegistriesConfig.endpointHost(url) else { continue }
            var base = url
            while base.hasSuffix("/") { base.removeLast() }
            if base.hasSuffix("/v2") { base.removeLast(3) }
            out.append(Endpoint(base: base, host: host, isMirror: host != registry))
        }
        if out.isEmpty || (options.defaultEndpoints && !out.contains(where: { $0.host == registry })) {
            out.append(Endpoint(base: "https://" + (registry == "docker.io" ? "registry-1.docker.io" : registry), host: registry, isMirror: false))
        }
        return out
    }

    /// The credential for an endpoint: the pod's pull secrets first, then the node's settings and file.
    func credential(for endpoint: Endpoint, pod: [String: RegistryCredential]) -> RegistryCredential? {
        pod[endpoint.host] ?? options.registries.configs[endpoint.host]?.credential ?? options.credentials[endpoint.host]
    }

    private func client(for host: String) throws -> HTTPClient {
        try clients.withLock { c in
            guard c != nil else { throw PullError("the registry client is shut down") }
            if let existing = c?[host] { return existing }
            var tls = TLSConfiguration.makeClientConfiguration()
            if let settings = options.registries.configs[host] {
                if let ca = settings.caFile {
                    do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) } catch {
                        throw PullError("cannot read the CA bundle \(ca) for \(host): \(error)")
                    }
                }
                if settings.insecureSkipVerify { tls.certificateVerification = .none }
            }
            var config = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                  timeout: .init(connect: .seconds(options.connectTimeout), read: .seconds(options.stallTimeout)))
            config.decompression = .disabled
            // A refused connection or a bad certificate fails now, so the next mirror is tried at once.
            config.connectionPool.retryConnectionEstablishment = false
            config.httpVersion = .automatic
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
            c?[host] = client
            return client
        }
    }

    struct Target: Sendable {
        var endpoint: Endpoint
        var repository: String
        var credential: RegistryCredential?
        var scope: String { "repository:\(repository):pull" }
        /// Tokens are kept per credential: another pod's secret for the same user name gets its own.
        var tokenKey: String {
            let who = credential.map { ImageStore.sha256(Array("\($0.username):\($0.password)".utf8)) } ?? "anonymous"
            return endpoint.host + " " + scope + " " + who
        }
    }

    /// Sends a request for `path` (below `/v2/`), answering authentication challenges once and following
    /// redirects; credentials never go to another host than the endpoint's.
    func send(_ target: Target, _ path: String, method: HTTPMethod = .GET, accept: [String] = []) async throws -> HTTPClientResponse {
        var url = target.endpoint.base + "/v2/" + path
        var authorization = cachedAuthorization(target)
        var answeredChallenge = false
        var hops = 0
        var sameHost = true
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = method
            if !accept.isEmpty { request.headers.add(name: "Accept", value: accept.joined(separator: ", ")) }
            request.headers.add(name: "User-Agent", value: "berth")
            if sameHost, let authorization { request.headers.add(name: "Authorization", value: authorization) }
            let host = DockerConfigJSON.registryHost(url)
            let response: HTTPClientResponse
            do {
                requests.add(1, ordering: .relaxed)
                response = try await client(for: host).execute(request, timeout: .hours(6))
            } catch let e as PullError {
                throw e
            } catch {
                throw PullError("\(target.endpoint.base) is unreachable: \(RegistryClient.describe(error))")
            }
            switch response.status.code {
            case 401 where sameHost && !answeredChallenge:
                answeredChallenge = true
                let challenge = response.headers.first(name: "WWW-Authenticate") ?? ""
                _ = try? await response.body.collect(upTo: 64 << 10)
                authorization = try await authorize(challenge, target)
            case 301, 302, 303, 307, 308:
                hops += 1
                _ = try? await response.body.collect(upTo: 64 << 10)
                guard hops <= options.maxRedirects else { throw PullError("\(target.endpoint.base): more than \(options.maxRedirects) redirects for \(path)") }
                guard let location = response.headers.first(name: "Location"),
                      let next = URL(string: location, relativeTo: URL(string: url))?.absoluteURL.absoluteString else {
                    throw PullError("\(target.endpoint.base): a redirect without a usable Location for \(path)")
                }
                if url.hasPrefix("https://") && !next.hasPrefix("https://") {
                    throw PullError("\(target.endpoint.base): a redirect from HTTPS to \(next.prefix(while: { $0 != ":" })) was refused")
                }
                if DockerConfigJSON.registryHost(next) != target.endpoint.host { sameHost = false }
                url = next
            default:
                return response
            }
        }
    }

    /// A short reason for a failed response, from the registry's error body (`{"errors":[{"code","message"}]}`).
    static func failure(_ response: HTTPClientResponse, _ what: String) async -> PullError {
        let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
        var detail = response.status.reasonPhrase.lowercased()
        if let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
           let first = (json["errors"] as? [[String: Any]])?.first {
            let code = (first["code"] as? String ?? "").lowercased().replacingOccurrences(of: "_", with: " ")
            let message = first["message"] as? String ?? ""
            detail = code.isEmpty ? message : message.isEmpty || message.lowercased() == code ? code : "\(code): \(message)"
        }
        return PullError("\(what): \(response.status.code) \(detail)")
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .readTimeout: return "no data for a while (read timeout)"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "the connection was closed"
            default: return "\(e)"
            }
        }
        return "\(error)"
    }

    // MARK: authentication

    private func cachedAuthorization(_ target: Target) -> String? {
        let now = Date().timeIntervalSince1970
        return tokens.withLock { t in
            guard let token = t[target.tokenKey], token.expires > now else { return nil }
            return token.value
        }
    }

    /// Answers a `WWW-Authenticate` challenge: Basic with the credential, or a token from the realm.
    private func authorize(_ challenge: String, _ target: Target) async throws -> String {
        let (scheme, params) = RegistryClient.parseChallenge(challenge)
        let denied = PullError("\(target.endpoint.base)/\(target.repository): 401 unauthorized: \(target.credential == nil ? "authentication required" : "the credentials were refused")")
        switch scheme {
        case "basic":
            guard let c = target.credential else { throw denied }
            let value = RegistryClient.basic(c)
            store(value, for: target, seconds: 3600)
            return value
        case "bearer":
            guard let realm = params["realm"], var components = URLComponents(string: realm), components.host != nil else {
                throw PullError("\(target.endpoint.base): a Bearer challenge without a usable realm")
            }
            if target.endpoint.base.hasPrefix("https://") && components.scheme != "https" {
                throw PullError("\(target.endpoint.base): the token realm \(realm) is not HTTPS")
            }
            var query = components.queryItems ?? []
            if let service = params["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            query.append(URLQueryItem(name: "scope", value: target.scope))
            components.queryItems = query
            guard let tokenURL = components.url?.absoluteString else { throw PullError("\(target.endpoint.base): a bad token realm") }
            var request = HTTPClientRequest(url: tokenURL)
            request.headers.add(name: "User-Agent", value: "berth")
            if let c = target.credential {
                request.headers.add(name: "Authorization", value: RegistryClient.basic(c))
            }
            let response: HTTPClientResponse
            do {
                requests.add(1, ordering: .relaxed)
                response = try await client(for: DockerConfigJSON.registryHost(tokenURL)).execute(request, timeout: .seconds(60))
            } catch { throw PullError("the token server of \(target.endpoint.base) is unreachable: \(RegistryClient.describe(error))") }
            if response.status.code == 401 || response.status.code == 403 { _ = try? await response.body.collect(upTo: 64 << 10); throw denied }
            guard response.status.code == 200 else { throw await RegistryClient.failure(response, "token server of \(target.endpoint.base)") }
            let body = try await response.body.collect(upTo: 1 << 20)
            guard let json = try? JSONSerialization.jsonObject(with: Data(Array(buffer: body))) as? [String: Any],
                  let token = json["token"] as? String ?? json["access_token"] as? String, !token.isEmpty else {
                throw PullError("the token server of \(target.endpoint.base) answered without a token")
            }
            let expires = (json["expires_in"] as? Double) ?? (json["expires_in"] as? Int).map(Double.init) ?? 60
            let value = "Bearer " + token
            // A little early, so that a token is not used as it runs out.
            store(value, for: target, seconds: max(expires - 5, 1))
            return value
        default:
            throw denied
        }
    }

    static func basic(_ c: RegistryCredential) -> String {
        "Basic " + Data("\(c.username):\(c.password)".utf8).base64EncodedString()
    }

    private func store(_ value: String, for target: Target, seconds: Double) {
        let expires = Date().timeIntervalSince1970 + seconds
        tokens.withLock { $0[target.tokenKey] = (value, expires) }
    }

    /// `Bearer realm="…",service="…",scope="…"` → ("bearer", [realm: …, service: …, scope: …]).
    static func parseChallenge(_ header: String) -> (String, [String: String]) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else { return (trimmed.lowercased(), [:]) }
        let scheme = trimmed[..<space].lowercased()
        var params: [String: String] = [:]
        var rest = trimmed[trimmed.index(after: space)...]
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    if c == "\\", rest.count > 1 { rest = rest.dropFirst() }
                    value.append(rest.first!)
                    rest = rest.dropFirst()
                }
                rest = rest.dropFirst()
            } else {
                value = String(rest.prefix { $0 != "," })
                rest = rest.drop { $0 != "," }
            }
            params[key] = value
        }
        return (scheme, params)
    }
}

extension RegistryOptions {
    /// The node's files: `registries.yaml` (mirrors, TLS, credentials) and a Docker `config.json`.
    public static func load(registries: String?, credentials: String?) throws -> RegistryOptions {
        var o = RegistryOptions()
        if let registries { o.registries = try RegistriesConfig.load(registries) }
        if let credentials {
            guard let data = FileManager.default.contents(atPath: credentials) else { throw PullError("\(credentials): cannot read the file") }
            do { o.credentials = try DockerConfigJSON.parse([UInt8](data)) } catch { throw PullError("\(credentials): \(error)") }
        }
        return o
    }
}
