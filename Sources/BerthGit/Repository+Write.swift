import CGit2

/// Who a commit or note is by.
public struct Signature: Sendable, Hashable {
    public var name: String
    public var email: String
    public init(name: String, email: String) {
        self.name = name
        self.email = email
    }
    public static let berth = Signature(name: "berth", email: "berth@localhost")
}

extension Repository {
    public func writeBlob(_ bytes: [UInt8]) throws(GitError) -> ObjectID {
        var oid = git_oid()
        let rc = bytes.withUnsafeBytes { git_blob_create_from_buffer(&oid, handle, $0.baseAddress, $0.count) }
        try check(rc, "write blob")
        return ObjectID(oid)
    }

    /// Writes a tree holding `files` (paths with `/` make subtrees) and returns its id.
    public func writeTree(_ files: [String: [UInt8]]) throws(GitError) -> ObjectID {
        var blobs: [String: ObjectID] = [:]
        for (path, bytes) in files { blobs[path] = try writeBlob(bytes) }
        return try writeTree(blobs: blobs)
    }

    /// Writes a tree from paths to existing blobs.
    public func writeTree(blobs: [String: ObjectID]) throws(GitError) -> ObjectID {
        var here: [String: ObjectID] = [:]
        var below: [String: [String: ObjectID]] = [:]
        for (path, id) in blobs {
            if let slash = path.firstIndex(of: "/") {
                below[String(path[..<slash]), default: [:]][String(path[path.index(after: slash)...])] = id
            } else {
                here[path] = id
            }
        }
        var builder: OpaquePointer?
        try check(git_treebuilder_new(&builder, handle, nil), "build tree")
        defer { git_treebuilder_free(builder) }
        for (name, id) in here {
            var oid = id.oid
            try check(git_treebuilder_insert(nil, builder, name, &oid, GIT_FILEMODE_BLOB), "add \(name) to tree")
        }
        for (name, sub) in below {
            var oid = try writeTree(blobs: sub).oid
            try check(git_treebuilder_insert(nil, builder, name, &oid, GIT_FILEMODE_TREE), "add \(name)/ to tree")
        }
        var out = git_oid()
        try check(git_treebuilder_write(&out, builder), "write tree")
        return ObjectID(out)
    }

    /// Creates a commit object without moving any reference.
    public func createCommit(tree: ObjectID, parents: [ObjectID], message: String,
                             author: Signature, committer: Signature) throws(GitError) -> ObjectID {
        var treeObject: OpaquePointer?
        var treeID = tree.oid
        try check(git_tree_lookup(&treeObject, handle, &treeID), "read tree \(tree.short)")
        defer { git_tree_free(treeObject) }
        var parentObjects: [OpaquePointer?] = []
        defer { parentObjects.forEach { git_commit_free($0) } }
        for p in parents {
            var c: OpaquePointer?
            var oid = p.oid
            try check(git_commit_lookup(&c, handle, &oid), "read commit \(p.short)")
            parentObjects.append(c)
        }
        let a = try makeSignature(author), c = try makeSignature(committer)
        defer {
            git_signature_free(a)
            git_signature_free(c)
        }
        var out = git_oid()
        let rc = parentObjects.withUnsafeMutableBufferPointer { buf in
            git_commit_create(&out, handle, nil, a, c, "UTF-8", message, treeObject, buf.count, buf.baseAddress)
        }
        try check(rc, "create commit")
        return ObjectID(out)
    }

    func makeSignature(_ s: Signature) throws(GitError) -> UnsafeMutablePointer<git_signature>? {
        var sig: UnsafeMutablePointer<git_signature>?
        try check(git_signature_now(&sig, s.name, s.email), "make signature for \(s.email)")
        return sig
    }

    // MARK: notes

    /// The note on `target` under `ref` (e.g. `refs/notes/berth`), nil if none.
    public func note(on target: ObjectID, ref: String) -> String? {
        var note: OpaquePointer?
        var oid = target.oid
        guard git_note_read(&note, handle, ref, &oid) == 0 else { return nil }
        defer { git_note_free(note) }
        return git_note_message(note).map { String(cString: $0) }
    }

    /// Adds or replaces the note on `target`; returns the new notes commit.
    @discardableResult
    public func setNote(on target: ObjectID, ref: String, message: String, author: Signature) throws(GitError) -> ObjectID {
        let sig = try makeSignature(author)
        defer { git_signature_free(sig) }
        var out = git_oid()
        var oid = target.oid
        try check(git_note_create(&out, handle, ref, sig, sig, &oid, message, 1), "write note on \(target.short)")
        return ObjectID(out)
    }
}
