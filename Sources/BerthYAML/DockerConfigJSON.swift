import Foundation

/// A user name and password (or identity token) for one registry.
public struct RegistryCredential: Sendable, Hashable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// Docker's `config.json` (`{"auths": {"host": {"auth": base64(user:pass)}}}`, or `username`/`password`),
/// the format of `kubernetes.io/dockerconfigjson` Secrets and of the node's credentials file. Keys may be
/// URLs (`https://index.docker.io/v1/`); they are reduced to the registry's host as references name it.
public enum DockerConfigJSON {
    /// Why the bytes are not a usable config, or nil. Never quotes a value.
    public static func problem(_ bytes: [UInt8]?) -> String? {
        guard let bytes else { return "needs the key .dockerconfigjson" }
        do { _ = try parse(bytes) } catch { return "\(error)" }
        return nil
    }

    public static func parse(_ bytes: [UInt8]) throws -> [String: RegistryCredential] {
        guard let top = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw YAMLConfigError(".dockerconfigjson is not a JSON object")
        }
        guard let auths = top["auths"] as? [String: Any] else { throw YAMLConfigError(".dockerconfigjson has no \"auths\" object") }
        var out: [String: RegistryCredential] = [:]
        for (key, value) in auths {
            guard let entry = value as? [String: Any] else { throw YAMLConfigError("auths entry for \(key) is not an object") }
            var credential: RegistryCredential?
            if let auth = entry["auth"] as? String, !auth.isEmpty {
                guard let decoded = DockerConfigJSON.credential(auth: auth) else {
                    throw YAMLConfigError("auths entry for \(key): \"auth\" is not base64 of user:password")
                }
                credential = decoded
            } else if let user = entry["username"] as? String, let password = entry["password"] as? String {
                credential = RegistryCredential(username: user, password: password)
            } else if let token = entry["identitytoken"] as? String {
                credential = RegistryCredential(username: "<token>", password: token)
            }
            guard let credential else { throw YAMLConfigError("auths entry for \(key) has neither \"auth\" nor \"username\" and \"password\"") }
            out[registryHost(key)] = credential
        }
        return out
    }

    /// An `auth` value: base64 of `user:password`.
    public static func credential(auth: String) -> RegistryCredential? {
        guard let text = Data(base64Encoded: auth).flatMap({ String(data: $0, encoding: .utf8) }), let colon = text.firstIndex(of: ":") else { return nil }
        return RegistryCredential(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
    }

    /// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/path` → `host:5000`.
    public static func registryHost(_ key: String) -> String {
        var k = Substring(key)
        if let scheme = k.range(of: "://") { k = k[scheme.upperBound...] }
        if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
        let host = String(k)
        return host == "index.docker.io" || host == "registry-1.docker.io" ? "docker.io" : host
    }
}

public struct YAMLConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
