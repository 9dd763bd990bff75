/// How berth reaches an etcd cluster: `etcd://h1:2379,h2:2379` (plain) or `etcds://…` (TLS), with
/// optional user and password and client certificate.
public struct EtcdOptions: Sendable, Hashable {
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var endpoints: [Endpoint]
    public var tls = false
    /// PEM file of the CA that signed the members' certificates (TLS; the system's roots when nil).
    public var caFile: String?
    /// PEM certificate and key this client presents, for members that ask for one.
    public var certFile: String?
    public var keyFile: String?
    public var username: String?
    public var password: String?
    /// How long a request keeps trying other members before it fails.
    public var requestTimeout: Duration = .seconds(15)
    /// History kept when berth compacts what it wrote; watchers further behind list again.
    public var keepHistory: Duration = .seconds(300)

    public init(endpoints: [Endpoint]) {
        self.endpoints = endpoints
    }

    /// Reads `etcd://host:port[,host:port…]` or `etcds://…`; the port defaults to 2379.
    public init(url: String) throws {
        let scheme: String
        if url.hasPrefix("etcd://") {
            scheme = "etcd://"
        } else if url.hasPrefix("etcds://") {
            scheme = "etcds://"
            tls = true
        } else {
            throw StoreError(code: .invalid, message: "store \"\(url)\": expected etcd://HOST:PORT[,HOST:PORT…] or etcds://… for TLS")
        }
        var list = String(url.dropFirst(scheme.count))
        if list.hasSuffix("/") { list.removeLast() }
        guard !list.contains("@") else {
            throw StoreError(code: .invalid, message: "store \"\(scheme)…\": give the user and password with --etcd-user and --etcd-password-file, not in the URL")
        }
        var endpoints: [Endpoint] = []
        for part in list.split(separator: ",", omittingEmptySubsequences: false) {
            endpoints.append(try Self.endpoint(String(part), in: url))
        }
        self.endpoints = endpoints
    }

    private static func endpoint(_ text: String, in url: String) throws -> Endpoint {
        var host = text
        var port = 2379
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad(text, url) }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { throw bad(text, url) }
                port = p
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            guard let p = Int(text[text.index(after: colon)...]) else { throw bad(text, url) }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port),
              host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else { throw bad(text, url) }
        return Endpoint(host: host, port: port)
    }

    private static func bad(_ part: String, _ url: String) -> StoreError {
        StoreError(code: .invalid, message: "store \"\(url)\": \"\(part)\" is not HOST:PORT")
    }
}
