/// An image reference normalised as Docker does: `redis` is `docker.io/library/redis:latest`,
/// `host:port/repo:tag` keeps its registry, `@sha256:…` pins a digest.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The registry as written or implied: `docker.io`, `registry.k8s.io`, `127.0.0.1:5000`.
    public var registry: String
    /// The repository inside it: `library/redis`, `google-samples/gb-frontend`.
    public var repository: String
    public var tag: String?
    /// `sha256:<64 hex>`.
    public var digest: String?

    public init(registry: String, repository: String, tag: String?, digest: String?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses a reference; a malformed one throws a message fit for `InvalidImageName`.
    public init(parsing text: String) throws(ImageReferenceError) {
        func fail(_ why: String) -> ImageReferenceError { ImageReferenceError(message: "invalid image name \"\(text)\": \(why)") }
        guard !text.isEmpty else { throw fail("empty") }
        guard text.utf8.count <= 512 else { throw fail("longer than 512 characters") }
        var rest = Substring(text)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let d = rest[rest.index(after: at)...]
            guard d.hasPrefix("sha256:"), d.count == 71, d.dropFirst(7).allSatisfy(ImageReference.isLowerHex) else {
                throw fail("a digest must be sha256: and 64 lowercase hex digits")
            }
            digest = String(d)
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[rest.index(after: colon)...].contains("/") {
            let t = rest[rest.index(after: colon)...]
            guard ImageReference.isTag(t) else { throw fail("tag \"\(t)\" must be 1 to 128 of letters, digits, '_', '.' and '-', not starting with '.' or '-'") }
            tag = String(t)
            rest = rest[..<colon]
        }
        var parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry = "docker.io"
        if parts.count > 1, let first = parts.first, first.contains(".") || first.contains(":") || first == "localhost" {
            guard ImageReference.isHost(first) else { throw fail("registry \"\(first)\" is not a host name or host:port") }
            registry = first
            parts.removeFirst()
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = "docker.io" }
        if registry == "docker.io" && parts.count == 1 { parts.insert("library", at: 0) }
        for p in parts where !ImageReference.isPathComponent(p) {
            throw fail(p.isEmpty ? "empty path component" : "repository part \"\(p)\" must be lowercase letters and digits joined by '.', '_', '__' or '-'")
        }
        let repository = parts.joined(separator: "/")
        guard repository.utf8.count + registry.utf8.count < 256 else { throw fail("the name is longer than 255 characters") }
        if tag == nil && digest == nil { tag = "latest" }
        self.init(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    /// `registry/repository`, without tag or digest.
    public var name: String { registry + "/" + repository }

    /// The full normalised reference, the name an image is stored under.
    public var description: String {
        var s = name
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest }
        return s
    }

    /// Tag or digest to ask the registry for: the digest when both are given (it is what is pinned).
    public var reference: String { digest ?? tag ?? "latest" }

    /// Kubernetes' default pull policy: Always for `:latest` or no tag (unless a digest pins it), else IfNotPresent.
    public var defaultPullPolicy: ImagePullPolicy { digest == nil && (tag ?? "latest") == "latest" ? .always : .ifNotPresent }

    static func isLowerHex(_ c: Character) -> Bool { c.isASCII && (c.isNumber || ("a"..."f").contains(c)) }

    static func isAlnumLower(_ c: Character) -> Bool { c.isASCII && (c.isNumber || c.isLowercase) }

    static func isTag(_ t: Substring) -> Bool {
        guard let first = t.first, t.count <= 128, first != ".", first != "-" else { return false }
        return t.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isPathComponent(_ p: String) -> Bool {
        guard let first = p.first, let last = p.last, isAlnumLower(first), isAlnumLower(last) else { return false }
        var separator = ""
        for c in p {
            if isAlnumLower(c) {
                guard separator.isEmpty || separator == "." || separator == "_" || separator == "__" || separator.allSatisfy({ $0 == "-" }) else { return false }
                separator = ""
            } else if "._-".contains(c) {
                separator.append(c)
            } else {
                return false
            }
        }
        return true
    }

    static func isHost(_ h: String) -> Bool {
        var host = Substring(h)
        if let colon = h.lastIndex(of: ":") {
            guard let port = Int(h[h.index(after: colon)...]), (1...65535).contains(port) else { return false }
            host = h[..<colon]
        }
        guard !host.isEmpty else { return false }
        return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let f = label.first, let l = label.last, f.isASCII && (f.isLetter || f.isNumber), l.isASCII && (l.isLetter || l.isNumber) else { return false }
            return label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}

public struct ImageReferenceError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// When the node pulls a container's image (Kubernetes' `imagePullPolicy`).
public enum ImagePullPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    case always = "Always"
    case ifNotPresent = "IfNotPresent"
    case never = "Never"
}
