import BerthGit
import BerthModel
import BerthYAML

/// The desired state read from one commit, with everything said about it.
public struct Snapshot: Sendable {
    public var commit: CommitInfo
    /// The manifests' desired state and findings; an invalid set (`result.isValid == false`) is rejected whole.
    public var result: LoadResult
    /// Files that differ from the previous snapshot's commit (within the manifest path).
    public var changedFiles: [ChangedPath]
    /// Files parsed for this snapshot; the rest came from the caches.
    public var parsedFiles: Int
    /// The previous snapshot's commit is not in this one's history: the branch was rewritten (force push).
    public var historyRewritten: Bool
}

/// Builds snapshots from commits without redoing work for what did not change: a subtree whose id is
/// unchanged reuses its parsed files whole, and a file whose blob id is unchanged is not parsed again.
/// A class used only on the mirror's queue, so that its caches are updated in place, never copied.
final class Snapshotter: @unchecked Sendable {
    let config: SourceConfig
    private var blobCache: [ObjectID: ManifestLoader.ParsedFile] = [:]
    private var treeCache: [TreeKey: [Parsed]] = [:]
    /// The .berthignore the caches were built under; another one empties them.
    private var ignoreBlob: ObjectID?

    struct TreeKey: Hashable {
        let id: ObjectID
        let path: String
    }

    struct Parsed {
        let blob: ObjectID
        let file: ManifestLoader.ParsedFile
    }

    /// A manifest in tree order: parsed already, or waiting at an index of the files to parse.
    private struct Slot {
        let blob: ObjectID
        let parsed: ManifestLoader.ParsedFile?
        let pending: Int
    }

    init(config: SourceConfig) { self.config = config }

    func snapshot(_ repo: Repository, commit: ObjectID, previous: ObjectID?) throws -> Snapshot {
        let info = try repo.commitInfo(commit)
        let base = config.cleanPath
        guard let tree = try repo.tree(of: commit, at: base) else {
            throw SourceError(code: .pathNotFound, message: "path \"\(base)\" is not a directory in commit \(commit.short)")
        }
        let prefix = base.isEmpty ? "" : base + "/"
        let top = try repo.entries(ofTree: tree)
        var rules = IgnoreRules()
        let ignore = top.files.first { $0.path == IgnoreRules.fileName && $0.kind == .file }
        if ignore?.id != ignoreBlob {
            blobCache = [:]
            treeCache = [:]
            ignoreBlob = ignore?.id
        }
        if let ignore {
            rules = IgnoreRules(text: String(decoding: try repo.blob(ignore.id, limit: config.limits.maxFileBytes), as: UTF8.self))
        }

        var slots: [Slot] = []
        var toParse: [ManifestFile] = []
        var walked: [(key: TreeKey, range: Range<Int>)] = []
        let blobCache = self.blobCache, treeCache = self.treeCache
        let limit = config.limits.maxFileBytes

        let limits = config.limits
        func walk(_ id: ObjectID, _ relative: String, _ listing: (files: [TreeEntry], trees: [(name: String, id: ObjectID)])?,
                  depth: Int = 0) throws {
            if depth > limits.maxTreeDepth {
                throw SourceError(code: .inputLimit, message: "commit \(commit.short): directory \(prefix + relative) nests deeper than \(limits.maxTreeDepth) levels")
            }
            if slots.count > limits.maxFiles {
                throw SourceError(code: .inputLimit, message: "commit \(commit.short): more than \(limits.maxFiles) manifest files under \(base.isEmpty ? "the repository root" : base)")
            }
            let key = TreeKey(id: id, path: relative)
            let start = slots.count
            defer { walked.append((key, start..<slots.count)) }
            if let cached = treeCache[key] {
                slots.append(contentsOf: cached.map { Slot(blob: $0.blob, parsed: $0.file, pending: -1) })
                return
            }
            let listing = try listing ?? repo.entries(ofTree: id)
            for e in listing.files where e.kind == .file || e.kind == .executable {
                let path = relative + e.path
                guard ManifestLoader.isManifestName(e.path), rules.isEmpty || !rules.isIgnored(path, isDirectory: false) else { continue }
                if let cached = blobCache[e.id], cached.path == prefix + path {
                    slots.append(Slot(blob: e.id, parsed: cached, pending: -1))
                } else {
                    slots.append(Slot(blob: e.id, parsed: nil, pending: toParse.count))
                    toParse.append(ManifestFile(path: prefix + path, bytes: try repo.blob(e.id, limit: limit)))
                }
            }
            for t in listing.trees {
                let path = relative + t.name
                if !rules.isEmpty && rules.isIgnored(path, isDirectory: true) { continue }
                try walk(t.id, path + "/", nil, depth: depth + 1)
            }
        }
        try walk(tree, "", top)
        if slots.count > limits.maxFiles {
            throw SourceError(code: .inputLimit, message: "commit \(commit.short): more than \(limits.maxFiles) manifest files under \(base.isEmpty ? "the repository root" : base)")
        }

        let loader = ManifestLoader(limits: config.limits)
        let parsed = loader.parse(toParse)
        let resolved = slots.map { Parsed(blob: $0.blob, file: $0.parsed ?? parsed[$0.pending]) }
        // The caches keep exactly what this snapshot holds.
        var nextTrees: [TreeKey: [Parsed]] = [:]
        for (key, range) in walked { nextTrees[key] = Array(resolved[range]) }
        var nextBlobs: [ObjectID: ManifestLoader.ParsedFile] = [:]
        nextBlobs.reserveCapacity(resolved.count)
        for p in resolved { nextBlobs[p.blob] = p.file }
        self.treeCache = nextTrees
        self.blobCache = nextBlobs
        let result = loader.assemble(resolved.map(\.file))

        var changed: [ChangedPath] = []
        var rewritten = false
        if previous != commit {
            let oldTree = try previous.flatMap { try repo.tree(of: $0, at: base) }
            changed = try repo.changedPaths(from: oldTree, to: tree).map { ChangedPath(path: prefix + $0.path, status: $0.status) }
            if let previous { rewritten = !repo.isDescendant(commit, of: previous) }
        }
        return Snapshot(commit: info, result: result, changedFiles: changed, parsedFiles: toParse.count, historyRewritten: rewritten)
    }
}
