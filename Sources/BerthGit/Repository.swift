import CGit2

/// A commit's parts that berth reads.
public struct CommitInfo: Sendable, Hashable {
    public var id: ObjectID
    public var tree: ObjectID
    public var parents: [ObjectID]
    public var message: String
    public var authorName: String
    public var authorEmail: String
    /// Seconds since the epoch.
    public var time: Int64

    public var summary: String { String(message.split(separator: "\n", maxSplits: 1).first ?? "") }
}

/// A file in a tree, with its path relative to the tree walked.
public struct TreeEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case file, executable, symlink, submodule }
    public var path: String
    public var id: ObjectID
    public var kind: Kind
}

/// A path that differs between two trees.
public struct ChangedPath: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable { case added, deleted, modified, renamed, typeChanged }
    public var path: String
    public var status: Status

    public init(path: String, status: Status) {
        self.path = path
        self.status = status
    }
}

/// A repository (berth uses bare ones: mirrors and fixtures). The handle is freed in `deinit`.
/// libgit2 objects are not safe for concurrent use: one caller at a time (an actor owns it).
public final class Repository: @unchecked Sendable {
    let handle: OpaquePointer
    public let path: String

    private init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    deinit { git_repository_free(handle) }

    /// Opens the repository at `path`, or creates a bare one there.
    public static func openOrInitBare(at path: String) throws(GitError) -> Repository {
        _ = libgit2Ready
        var repo: OpaquePointer?
        if git_repository_open_bare(&repo, path) == 0, let repo { return Repository(handle: repo, path: path) }
        try check(git_repository_init(&repo, path, 1), "create bare repository \(path)")
        return Repository(handle: repo!, path: path)
    }

    public static func open(at path: String) throws(GitError) -> Repository {
        _ = libgit2Ready
        var repo: OpaquePointer?
        try check(git_repository_open_ext(&repo, path, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue), nil), "open repository \(path)")
        return Repository(handle: repo!, path: path)
    }

    // MARK: references

    /// The commit a reference points to (following symbolic refs and peeling tags); nil if absent.
    public func commit(ofReference name: String) -> ObjectID? {
        try? resolveCommit(name)
    }

    /// A revision (ref name, tag, full or short id) peeled to a commit.
    public func resolveCommit(_ spec: String) throws(GitError) -> ObjectID {
        var object: OpaquePointer?
        try check(git_revparse_single(&object, handle, spec), "resolve \(spec)")
        defer { git_object_free(object) }
        var peeled: OpaquePointer?
        try check(git_object_peel(&peeled, object, GIT_OBJECT_COMMIT), "resolve \(spec) to a commit")
        defer { git_object_free(peeled) }
        return ObjectID(git_object_id(peeled).pointee)
    }

    /// Points `name` at `id`. With `expected`, only if it still points there (nil: must not exist).
    public func setReference(_ name: String, to id: ObjectID, expected: ObjectID?? = .none, message: String) throws(GitError) {
        var ref: OpaquePointer?
        var target = id.oid
        switch expected {
        case .none:
            try check(git_reference_create(&ref, handle, name, &target, 1, message), "update \(name)")
        case .some(.none):
            try check(git_reference_create(&ref, handle, name, &target, 0, message), "create \(name)")
        case .some(.some(let current)):
            var cur = current.oid
            try check(git_reference_create_matching(&ref, handle, name, &target, 1, &cur, message), "update \(name)")
        }
        git_reference_free(ref)
    }

    public func deleteReference(_ name: String) throws(GitError) {
        let rc = git_reference_remove(handle, name)
        if rc < 0 && rc != GIT_ENOTFOUND.rawValue { throw GitError.last(rc, "delete \(name)") }
    }

    // MARK: commits

    public func commitInfo(_ id: ObjectID) throws(GitError) -> CommitInfo {
        var commit: OpaquePointer?
        var oid = id.oid
        try check(git_commit_lookup(&commit, handle, &oid), "read commit \(id.short)")
        defer { git_commit_free(commit) }
        let parents = (0..<git_commit_parentcount(commit)).map { ObjectID(git_commit_parent_id(commit, $0).pointee) }
        let author = git_commit_author(commit)!.pointee
        return CommitInfo(id: id, tree: ObjectID(git_commit_tree_id(commit).pointee), parents: parents,
                          message: git_commit_message(commit).map { String(cString: $0) } ?? "",
                          authorName: author.name.map { String(cString: $0) } ?? "",
                          authorEmail: author.email.map { String(cString: $0) } ?? "",
                          time: author.when.time)
    }

    /// Whether `descendant` has `ancestor` in its history (a commit is not its own descendant).
    public func isDescendant(_ descendant: ObjectID, of ancestor: ObjectID) -> Bool {
        var d = descendant.oid, a = ancestor.oid
        return git_graph_descendant_of(handle, &d, &a) == 1
    }

    public func contains(_ id: ObjectID) -> Bool {
        var odb: OpaquePointer?
        guard git_repository_odb(&odb, handle) == 0 else { return false }
        defer { git_odb_free(odb) }
        var oid = id.oid
        return git_odb_exists(odb, &oid) == 1
    }

    // MARK: trees and blobs

    /// The tree at `path` inside the commit's tree ("" or "." for the root); nil when there is none.
    public func tree(of commit: ObjectID, at path: String) throws(GitError) -> ObjectID? {
        let root = try commitInfo(commit).tree
        let clean = path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
        if clean.isEmpty { return root }
        var tree: OpaquePointer?
        var oid = root.oid
        try check(git_tree_lookup(&tree, handle, &oid), "read tree \(root.short)")
        defer { git_tree_free(tree) }
        var entry: OpaquePointer?
        let rc = git_tree_entry_bypath(&entry, tree, clean)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try check(rc, "find \(clean) in \(commit.short)")
        defer { git_tree_entry_free(entry) }
        guard git_tree_entry_type(entry) == GIT_OBJECT_TREE else { return nil }
        return ObjectID(git_tree_entry_id(entry).pointee)
    }

    private final class WalkState {
        var entries: [TreeEntry] = []
    }

    /// The entries of one tree, not recursive: files (as in `files(inTree:)`, with bare names) and subtrees.
    public func entries(ofTree id: ObjectID) throws(GitError) -> (files: [TreeEntry], trees: [(name: String, id: ObjectID)]) {
        var tree: OpaquePointer?
        var oid = id.oid
        try check(git_tree_lookup(&tree, handle, &oid), "read tree \(id.short)")
        defer { git_tree_free(tree) }
        var files: [TreeEntry] = []
        var trees: [(name: String, id: ObjectID)] = []
        for i in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, i) else { continue }
            let name = String(cString: git_tree_entry_name(entry))
            let eid = ObjectID(git_tree_entry_id(entry).pointee)
            switch git_tree_entry_filemode(entry) {
            case GIT_FILEMODE_TREE: trees.append((name, eid))
            case GIT_FILEMODE_BLOB: files.append(TreeEntry(path: name, id: eid, kind: .file))
            case GIT_FILEMODE_BLOB_EXECUTABLE: files.append(TreeEntry(path: name, id: eid, kind: .executable))
            case GIT_FILEMODE_LINK: files.append(TreeEntry(path: name, id: eid, kind: .symlink))
            case GIT_FILEMODE_COMMIT: files.append(TreeEntry(path: name, id: eid, kind: .submodule))
            default: break
            }
        }
        return (files, trees)
    }

    /// Every file below a tree, recursively, with paths relative to it.
    public func files(inTree id: ObjectID) throws(GitError) -> [TreeEntry] {
        var tree: OpaquePointer?
        var oid = id.oid
        try check(git_tree_lookup(&tree, handle, &oid), "read tree \(id.short)")
        defer { git_tree_free(tree) }
        let state = WalkState()
        let payload = Unmanaged.passUnretained(state).toOpaque()
        let rc = git_tree_walk(tree, GIT_TREEWALK_PRE, { root, entry, payload in
            let state = Unmanaged<WalkState>.fromOpaque(payload!).takeUnretainedValue()
            let kind: TreeEntry.Kind
            switch git_tree_entry_filemode(entry) {
            case GIT_FILEMODE_BLOB: kind = .file
            case GIT_FILEMODE_BLOB_EXECUTABLE: kind = .executable
            case GIT_FILEMODE_LINK: kind = .symlink
            case GIT_FILEMODE_COMMIT: kind = .submodule
            default: return 0
            }
            let name = String(cString: git_tree_entry_name(entry))
            let prefix = root.map { String(cString: $0) } ?? ""
            state.entries.append(TreeEntry(path: prefix + name, id: ObjectID(git_tree_entry_id(entry).pointee), kind: kind))
            return 0
        }, payload)
        try check(rc, "walk tree \(id.short)")
        return state.entries
    }

    public func blobSize(_ id: ObjectID) throws(GitError) -> Int {
        var blob: OpaquePointer?
        var oid = id.oid
        try check(git_blob_lookup(&blob, handle, &oid), "read blob \(id.short)")
        defer { git_blob_free(blob) }
        return Int(git_blob_rawsize(blob))
    }

    /// A blob's bytes, at most `limit` of them (a larger blob yields `limit + 1` so callers can tell).
    public func blob(_ id: ObjectID, limit: Int = Int.max) throws(GitError) -> [UInt8] {
        var blob: OpaquePointer?
        var oid = id.oid
        try check(git_blob_lookup(&blob, handle, &oid), "read blob \(id.short)")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        let count = limit == Int.max ? size : min(size, limit + 1)
        guard count > 0, let raw = git_blob_rawcontent(blob) else { return [] }
        return Array(UnsafeRawBufferPointer(start: raw, count: count))
    }

    /// Paths of files that differ between two trees (nil: the empty tree). Subtrees with the same id
    /// are skipped whole, so a one-file change in a large tree costs a few tree reads.
    public func changedPaths(from old: ObjectID?, to new: ObjectID?) throws(GitError) -> [ChangedPath] {
        var out: [ChangedPath] = []
        try diff(old, new, prefix: "", into: &out)
        return out
    }

    private func diff(_ old: ObjectID?, _ new: ObjectID?, prefix: String, into out: inout [ChangedPath]) throws(GitError) {
        if old == new { return }
        typealias Listing = (files: [TreeEntry], trees: [(name: String, id: ObjectID)])
        let empty: Listing = ([], [])
        let a: Listing = try old.map { id throws(GitError) in try entries(ofTree: id) } ?? empty
        let b: Listing = try new.map { id throws(GitError) in try entries(ofTree: id) } ?? empty
        var oldFiles: [String: TreeEntry] = [:]
        for f in a.files { oldFiles[f.path] = f }
        var oldTrees: [String: ObjectID] = [:]
        for t in a.trees { oldTrees[t.name] = t.id }
        var newTrees: [String: ObjectID] = [:]
        for t in b.trees { newTrees[t.name] = t.id }
        for f in b.files {
            if let o = oldFiles.removeValue(forKey: f.path) {
                if o.kind != f.kind {
                    out.append(ChangedPath(path: prefix + f.path, status: .typeChanged))
                } else if o.id != f.id {
                    out.append(ChangedPath(path: prefix + f.path, status: .modified))
                }
            } else {
                if let t = oldTrees.removeValue(forKey: f.path) { try diff(t, nil, prefix: prefix + f.path + "/", into: &out) }
                out.append(ChangedPath(path: prefix + f.path, status: .added))
            }
        }
        for (name, o) in oldFiles {
            out.append(ChangedPath(path: prefix + name, status: .deleted))
            if let t = newTrees.removeValue(forKey: name) { try diff(nil, t, prefix: prefix + name + "/", into: &out) }
            _ = o
        }
        for (name, id) in newTrees { try diff(oldTrees.removeValue(forKey: name), id, prefix: prefix + name + "/", into: &out) }
        for (name, id) in oldTrees { try diff(id, nil, prefix: prefix + name + "/", into: &out) }
    }
}
