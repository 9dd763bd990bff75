import CGit2

/// A libgit2 failure, with the library's error code, class and message kept.
public struct GitError: Error, Sendable, CustomStringConvertible {
    /// libgit2's `git_error_code` (negative), e.g. GIT_ENOTFOUND, GIT_EAUTH, GIT_ENONFASTFORWARD.
    public var code: Int32
    /// libgit2's `git_error_t` class (GITERR_NET, GITERR_SSH, GITERR_HTTP, ...).
    public var errorClass: Int32
    public var message: String
    /// What berth was doing, e.g. "fetch http://127.0.0.1:8080/repo.git".
    public var operation: String

    public init(code: Int32, errorClass: Int32 = 0, message: String, operation: String) {
        self.code = code
        self.errorClass = errorClass
        self.message = message
        self.operation = operation
    }

    public var description: String { "\(operation): \(message)" }

    public var isNotFound: Bool { code == GIT_ENOTFOUND.rawValue }
    public var isAuthentication: Bool { code == GIT_EAUTH.rawValue || message.lowercased().contains("authentication") }
    public var isCertificate: Bool { code == GIT_ECERTIFICATE.rawValue }

    /// The library's last error for a failed call.
    static func last(_ rc: Int32, _ operation: String) -> GitError {
        if let e = git_error_last(), let m = e.pointee.message {
            return GitError(code: rc, errorClass: e.pointee.klass, message: String(cString: m), operation: operation)
        }
        return GitError(code: rc, message: "libgit2 error \(rc)", operation: operation)
    }
}

@inline(__always)
func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(GitError) {
    if rc < 0 { throw GitError.last(rc, operation()) }
}

/// Pack files libgit2 keeps open at once (scripts/soak allows for them in the daemon's descriptors).
public let gitOpenPackLimit = 16

/// libgit2 needs one global initialisation before first use; it is never shut down.
let libgit2Ready: Bool = {
    git_libgit2_init()
    // Every fetch adds a pack to the mirror and libgit2 keeps each pack it read open (no limit by
    // default): a daemon following a busy branch would run out of descriptors. Least recently used
    // packs beyond this are closed.
    _ = berth_git_set_mwindow_file_limit(gitOpenPackLimit)
    return true
}()
