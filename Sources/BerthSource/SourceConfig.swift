import BerthGit
import BerthYAML

/// What to follow in the manifest repository.
public enum SourceRef: Sendable, Hashable, CustomStringConvertible {
    case branch(String)
    case tag(String)
    case commit(ObjectID)

    /// `main`, `refs/heads/main`, `refs/tags/v1`, `tags/v1` or a full commit id.
    public init(parsing text: String) {
        if let id = ObjectID(hex: text.lowercased()) {
            self = .commit(id)
        } else if text.hasPrefix("refs/heads/") {
            self = .branch(String(text.dropFirst(11)))
        } else if text.hasPrefix("refs/tags/") {
            self = .tag(String(text.dropFirst(10)))
        } else if text.hasPrefix("tags/") {
            self = .tag(String(text.dropFirst(5)))
        } else {
            self = .branch(text)
        }
    }

    public var description: String {
        switch self {
        case .branch(let b): return "branch \(b)"
        case .tag(let t): return "tag \(t)"
        case .commit(let c): return "commit \(c.short)"
        }
    }
}

public struct SourceConfig: Sendable {
    public var access: RemoteAccess
    public var ref: SourceRef = .branch("main")
    /// Subdirectory of the repository that holds the manifests ("" for the whole tree).
    public var path: String = ""
    /// The bare mirror lives under `<stateDirectory>/git/`.
    public var stateDirectory: String = "/var/lib/berth"
    public var limits = InputLimits()

    public init(access: RemoteAccess) { self.access = access }

    /// `deploy/` and `./deploy` are both `deploy`.
    var cleanPath: String { path.split(separator: "/").filter { $0 != "." && !$0.isEmpty }.joined(separator: "/") }

    /// The bare mirror's path; the status writer commits into the same repository.
    public var mirrorPath: String { stateDirectory + "/git/" + mirrorName }

    /// A directory name for the mirror that is stable for a URL and safe on disk.
    var mirrorName: String {
        var hash: UInt64 = 0xcbf29ce484222325
        for b in access.redactedURL.utf8 { hash = (hash ^ UInt64(b)) &* 0x100000001b3 }
        let tail = access.redactedURL.split(whereSeparator: { "/:@".contains($0) }).last.map(String.init) ?? "repo"
        let safe = String(tail.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }.prefix(40))
        return safe.replacingOccurrences(of: ".git", with: "") + "-" + String(hash, radix: 16) + ".git"
    }
}

/// Why a sync did not produce a snapshot. The last good snapshot stays in force.
public struct SourceError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unreachable, authentication, hostKey, refNotFound, pathNotFound, repository, inputLimit
    }
    public var code: Code
    public var message: String
    public var cause: GitError?

    public var description: String { message }

    static func wrap<T>(_ what: String, _ body: () throws(GitError) -> T) throws(SourceError) -> T {
        do {
            return try body()
        } catch {
            throw from(error, doing: what)
        }
    }

    static func from(_ e: GitError, doing what: String) -> SourceError {
        let code: Code = e.isCertificate ? .hostKey : e.isAuthentication ? .authentication : .unreachable
        return SourceError(code: code, message: "\(what): \(e.message)", cause: e)
    }
}
