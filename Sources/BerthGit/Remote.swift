import CGit2
import Foundation

/// How to authenticate to a remote. Secrets are held here only, never logged or put in a URL.
public enum Credentials: Sendable {
    case userPassword(username: String, password: String)
    case sshKey(username: String?, privateKeyPath: String, publicKeyPath: String?, passphrase: String?)
}

/// Everything needed to talk to one remote.
public struct RemoteAccess: Sendable {
    public var url: String
    public var credentials: Credentials?
    /// Host keys an ssh:// remote must present; without them (and without the insecure flag) ssh is refused.
    public var knownHosts: KnownHosts?
    public var insecureSkipHostKeyCheck = false

    public init(url: String, credentials: Credentials? = nil, knownHosts: KnownHosts? = nil, insecureSkipHostKeyCheck: Bool = false) {
        self.url = url
        self.credentials = credentials
        self.knownHosts = knownHosts
        self.insecureSkipHostKeyCheck = insecureSkipHostKeyCheck
    }

    /// The URL with any password removed, for messages.
    public var redactedURL: String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let userinfo = url[scheme.upperBound..<at]
        let user = userinfo.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return String(url[..<scheme.upperBound]) + user + (userinfo.contains(":") ? ":***" : "") + String(url[at...])
    }

    /// Port of an ssh remote (22 unless the URL says otherwise).
    var sshPort: Int {
        guard url.hasPrefix("ssh://") else { return 22 }
        let rest = url.dropFirst(6)
        let authority = rest.split(separator: "/", maxSplits: 1).first ?? ""
        let hostPort = authority.split(separator: "@").last ?? ""
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            let after = hostPort[hostPort.index(after: close)...]
            return after.hasPrefix(":") ? Int(after.dropFirst()) ?? 22 : 22
        }
        let parts = hostPort.split(separator: ":")
        return parts.count == 2 ? Int(parts[1]) ?? 22 : 22
    }
}

public struct FetchStats: Sendable {
    public var receivedObjects: Int
    public var receivedBytes: Int
}

/// State shared with libgit2's C callbacks through their payload pointer.
final class CallbackState {
    let access: RemoteAccess
    var userPasswordAttempts = 0
    var sshKeyAttempts = 0
    var hostKeyProblem: String?
    var rejected: [String: String] = [:]

    init(access: RemoteAccess) { self.access = access }

    func fill(_ callbacks: inout git_remote_callbacks) {
        callbacks.payload = Unmanaged.passUnretained(self).toOpaque()
        callbacks.credentials = { out, url, usernameFromURL, allowed, payload in
            let state = Unmanaged<CallbackState>.fromOpaque(payload!).takeUnretainedValue()
            return state.credential(out, usernameFromURL.map { String(cString: $0) }, allowed)
        }
        callbacks.certificate_check = { cert, valid, host, payload in
            let state = Unmanaged<CallbackState>.fromOpaque(payload!).takeUnretainedValue()
            return state.checkCertificate(cert, valid: valid != 0, host: host.map { String(cString: $0) } ?? "")
        }
        callbacks.push_update_reference = { refname, status, payload in
            let state = Unmanaged<CallbackState>.fromOpaque(payload!).takeUnretainedValue()
            if let refname, let status { state.rejected[String(cString: refname)] = String(cString: status) }
            return 0
        }
    }

    func fail(_ message: String) -> Int32 {
        git_error_set_str(Int32(GIT_ERROR_NET.rawValue), message)
        return GIT_EAUTH.rawValue
    }

    func credential(_ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>?, _ userFromURL: String?, _ allowed: UInt32) -> Int32 {
        switch access.credentials {
        case .userPassword(let user, let password)? where allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0:
            userPasswordAttempts += 1
            if userPasswordAttempts > 1 { return fail("authentication failed for \(access.redactedURL): the server refused the username or password") }
            return git_credential_userpass_plaintext_new(out, user, password)
        case .sshKey(let user, let key, let pub, let passphrase)?:
            let name = user ?? userFromURL ?? "git"
            if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
                return git_credential_username_new(out, name)
            }
            guard allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0 else { break }
            sshKeyAttempts += 1
            if sshKeyAttempts > 1 { return fail("authentication failed for \(access.redactedURL): the server refused the ssh key \(key)") }
            return git_credential_ssh_key_new(out, name, pub, key, passphrase)
        default:
            break
        }
        if access.credentials == nil {
            return fail("authentication required by \(access.redactedURL), and no credentials are configured")
        }
        return fail("authentication failed for \(access.redactedURL): the configured credentials do not fit what the server accepts")
    }

    func checkCertificate(_ cert: UnsafeMutablePointer<git_cert>?, valid: Bool, host: String) -> Int32 {
        guard let cert, cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else {
            // TLS: keep libgit2's own verification.
            return 1
        }
        if access.insecureSkipHostKeyCheck { return 0 }
        let hostkey = UnsafeMutableRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        guard hostkey.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let raw = hostkey.hostkey else {
            hostKeyProblem = "the server's host key could not be read"
            git_error_set_str(Int32(GIT_ERROR_SSH.rawValue), hostKeyProblem)
            return GIT_ECERTIFICATE.rawValue
        }
        let key = Array(UnsafeRawBufferPointer(start: raw, count: hostkey.hostkey_len))
        let port = access.sshPort
        let name = KnownHosts.name(host: host, port: port)
        switch access.knownHosts?.verdict(host: host, port: port, key: key) ?? .unknown {
        case .trusted:
            return 0
        case .unknown:
            hostKeyProblem = "host key of \(name) is not in known_hosts; add it (ssh-keyscan -p \(port) \(host)) or pass --insecure-skip-host-key-check"
        case .changed:
            hostKeyProblem = "host key of \(name) does not match known_hosts: it changed, or someone is intercepting the connection"
        case .revoked:
            hostKeyProblem = "host key of \(name) is marked @revoked in known_hosts"
        }
        git_error_set_str(Int32(GIT_ERROR_SSH.rawValue), hostKeyProblem)
        return GIT_ECERTIFICATE.rawValue
    }
}

/// A C string array that frees itself.
final class StringArray {
    var pointers: [UnsafeMutablePointer<CChar>?]
    var array: git_strarray

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0) }
        array = git_strarray()
        array.count = strings.count
        array.strings = pointers.withUnsafeMutableBufferPointer { buf in
            let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: max(buf.count, 1))
            for i in 0..<buf.count { p[i] = buf[i] }
            return p
        }
    }

    deinit {
        array.strings.deallocate()
        pointers.forEach { free($0) }
    }
}

extension Repository {
    func withRemote<T>(_ access: RemoteAccess, _ body: (OpaquePointer, CallbackState) throws(GitError) -> T) throws(GitError) -> T {
        var remote: OpaquePointer?
        var options = git_remote_create_options()
        git_remote_create_options_init(&options, UInt32(GIT_REMOTE_CREATE_OPTIONS_VERSION))
        options.repository = handle
        // The URL as given, without `url.*.insteadOf` rewriting: libgit2 1.5 leaks ~70 KB of the
        // repository's configuration on every rewrite, which a daemon polling every 15 s cannot afford.
        options.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF.rawValue | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC.rawValue
        try check(git_remote_create_with_opts(&remote, access.url, &options), "use remote \(access.redactedURL)")
        defer { git_remote_free(remote) }
        return try body(remote!, CallbackState(access: access))
    }

    /// The remote's references and where they point (`git ls-remote`): only the ref advertisement travels.
    public func listRemote(_ access: RemoteAccess) throws(GitError) -> [String: ObjectID] {
        try withRemote(access) { (remote, state) throws(GitError) in
            var callbacks = git_remote_callbacks()
            git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
            state.fill(&callbacks)
            try check(git_remote_connect(remote, GIT_DIRECTION_FETCH, &callbacks, nil, nil), "connect to \(access.redactedURL)")
            defer { git_remote_disconnect(remote) }
            var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
            var count = 0
            try check(git_remote_ls(&heads, &count, remote), "list references of \(access.redactedURL)")
            var out: [String: ObjectID] = [:]
            for i in 0..<count {
                guard let head = heads?[i]?.pointee, let name = head.name else { continue }
                out[String(cString: name)] = ObjectID(head.oid)
            }
            return out
        }
    }

    /// Fetches with explicit refspecs (e.g. `+refs/heads/main:refs/remotes/origin/main`); tags are not followed.
    @discardableResult
    public func fetch(_ access: RemoteAccess, refspecs: [String]) throws(GitError) -> FetchStats {
        try withRemote(access) { (remote, state) throws(GitError) in
            var options = git_fetch_options()
            git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
            state.fill(&options.callbacks)
            options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
            options.update_fetchhead = 0
            let specs = StringArray(refspecs)
            try check(git_remote_fetch(remote, &specs.array, &options, "berth fetch"), "fetch from \(access.redactedURL)")
            let stats = git_remote_stats(remote)!.pointee
            return FetchStats(receivedObjects: Int(stats.received_objects), receivedBytes: Int(stats.received_bytes))
        }
    }

    /// Pushes refspecs (never forced by berth: no leading `+`). Returns the refs the server rejected, with its reason.
    public func push(_ access: RemoteAccess, refspecs: [String]) throws(GitError) -> [String: String] {
        try withRemote(access) { (remote, state) throws(GitError) in
            var options = git_push_options()
            git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION))
            state.fill(&options.callbacks)
            let specs = StringArray(refspecs)
            let rc = git_remote_push(remote, &specs.array, &options)
            // libgit2 refuses a non-fast-forward itself when it knows the remote's tip: the same outcome as a server's refusal.
            if rc == GIT_ENONFASTFORWARD.rawValue {
                var rejected = state.rejected
                for spec in refspecs { rejected[String(spec.split(separator: ":").last ?? "")] = "non-fast-forward" }
                return rejected
            }
            try check(rc, "push to \(access.redactedURL)")
            return state.rejected
        }
    }
}
