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
    /// Files parsed for this snapshot; the rest came from the blob cache.
    public var parsedFiles: Int
    /// The previous snapshot's commit is not in this one's history: the branch was rewritten (force push).
    public var historyRewritten: Bool
}

/// Builds snapshots from commits, re-parsing only blobs whose id changed (cache keyed by blob id).
struct Snapshotter {
    let config: SourceConfig
    var cache: [ObjectID: ManifestLoader.ParsedFile] = [:]
    var lastTree: ObjectID?

    init(config: SourceConfig) { self.config = config }

    mutating func snapshot(_ repo: Repository, commit: ObjectID, previous: ObjectID?) throws -> Snapshot {
        let info = try repo.commitInfo(commit)
        let base = config.cleanPath
        guard let tree = try repo.tree(of: commit, at: base) else {
            throw SourceError(code: .pathNotFound, message: "path \"\(base)\" is not a directory in commit \(commit.short)")
        }
        let prefix = base.isEmpty ? "" : base + "/"
        let entries = try repo.files(inTree: tree)
        var rules = IgnoreRules()
        if let ignore = entries.first(where: { $0.path == IgnoreRules.fileName && $0.kind == .file }) {
            rules = IgnoreRules(text: String(decoding: try repo.blob(ignore.id, limit: config.limits.maxFileBytes), as: UTF8.self))
        }
        // Files in tree order; a slot is either a cached parse or an index into the files to parse.
        var slots: [(id: ObjectID, cached: ManifestLoader.ParsedFile?, toParse: Int)] = []
        var toParse: [ManifestFile] = []
        for e in entries where (e.kind == .file || e.kind == .executable) && ManifestLoader.isManifestName(e.path) {
            if !rules.isEmpty && rules.isIgnored(e.path, isDirectory: false) { continue }
            let path = prefix + e.path
            if let cached = cache[e.id], cached.path == path {
                slots.append((e.id, cached, -1))
            } else {
                slots.append((e.id, nil, toParse.count))
                toParse.append(ManifestFile(path: path, bytes: try repo.blob(e.id, limit: config.limits.maxFileBytes)))
            }
        }
        let loader = ManifestLoader(limits: config.limits)
        let parsed = loader.parse(toParse)
        var all: [ManifestLoader.ParsedFile] = []
        all.reserveCapacity(slots.count)
        var next: [ObjectID: ManifestLoader.ParsedFile] = [:]
        next.reserveCapacity(slots.count)
        for slot in slots {
            let file = slot.cached ?? parsed[slot.toParse]
            all.append(file)
            next[slot.id] = file
        }
        cache = next
        let result = loader.assemble(all)
        var changed: [ChangedPath] = []
        var rewritten = false
        if let previous, previous != commit {
            let oldTree = try repo.tree(of: previous, at: base)
            changed = try repo.changedPaths(from: oldTree, to: tree).map { ChangedPath(path: prefix + $0.path, status: $0.status) }
            rewritten = !repo.isDescendant(commit, of: previous)
        } else if previous == nil {
            changed = entries.map { ChangedPath(path: prefix + $0.path, status: .added) }
        }
        lastTree = tree
        return Snapshot(commit: info, result: result, changedFiles: changed, parsedFiles: toParse.count, historyRewritten: rewritten)
    }
}
