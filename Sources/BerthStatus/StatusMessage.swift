import BerthGit
import BerthModel

/// Commit messages of the status branch and notes on source commits.
public enum StatusMessage {
    static let trailer = "Berth-Source-Commit"

    /// Subject says what changed; the body lists the files; the trailer links the source commit.
    static func commitMessage(_ s: ClusterStatus, changes: [ChangedPath]) -> String {
        let short = (s.lastCommit ?? s.appliedCommit).map { String($0.prefix(7)) } ?? "no commit"
        var subject: String
        if let e = s.sourceError {
            subject = "source unreachable: \(e.prefix(60))"
        } else {
            switch s.lastResult {
            case .rejected?:
                let errors = s.findings.count { $0.severity == .error }
                subject = "rejected \(short): \(errors) error\(errors == 1 ? "" : "s")"
            case .applied? where !changes.contains { $0.path == "cluster.yaml" }:
                let applied = s.appliedCommit.map { String($0.prefix(7)) } ?? short
                subject = lossSubject(s, changes: changes) ?? rolloutSubject(s, changes: changes, at: applied) ?? changedSubject(changes, at: applied)
            case .applied?:
                subject = "applied \(short): \(s.objects.count) object\(s.objects.count == 1 ? "" : "s")"
            case nil:
                subject = "status"
            }
        }
        let lines = changes.sorted { $0.path < $1.path }.map { c -> String in
            switch c.status {
            case .added: return "added    \(c.path)"
            case .deleted: return "removed  \(c.path)"
            default: return "changed  \(c.path)"
            }
        }
        var message = subject + "\n"
        if !lines.isEmpty { message += "\n" + lines.joined(separator: "\n") + "\n" }
        if let c = s.lastCommit ?? s.appliedCommit { message += "\n\(trailer): \(c)\n" }
        return message
    }

    /// "node n2 lost: web-5d8f-x2k → n1, solo-7c1a-p9q → n3" for a node file that changed to say the node is
    /// lost, with where each of its pods' replacements runs (from its `moved` list).
    static func lossSubject(_ s: ClusterStatus, changes: [ChangedPath]) -> String? {
        let changed = Set(changes.map(\.path))
        let lost = s.nodes.filter { n in
            changed.contains("nodes/\(n.name).yaml") && n.status.contains { $0.key == "lost" && $0.value == .bool(true) }
        }
        guard !lost.isEmpty else { return nil }
        return lost.map { n -> String in
            var moved: [String] = []
            if case .list(let items)? = n.status.first(where: { $0.key == "moved" })?.value {
                for case .string(let text) in items { moved.append(text) }
            }
            return "node \(n.name) lost" + (moved.isEmpty ? "" : ": " + moved.prefix(4).joined(separator: ", ") + (moved.count > 4 ? ", …" : ""))
        }.joined(separator: "; ")
    }

    /// "web: rollout 2/3 ready at 4f2a9c1" for the Deployments whose status changed.
    static func rolloutSubject(_ s: ClusterStatus, changes: [ChangedPath], at short: String) -> String? {
        let changed = Set(changes.map(\.path))
        let parts = s.objects.filter { o in
            o.key.kind == .deployment && changed.contains("\(o.key.namespace)/Deployment/\(o.key.name).yaml")
        }.compactMap { o -> String? in
            func number(_ key: String) -> Int? {
                if case .int(let n)? = o.status.first(where: { $0.key == key })?.value { return n }
                return nil
            }
            guard let replicas = number("replicas") else { return nil }
            return "\(o.key.name): rollout \(number("readyReplicas") ?? 0)/\(replicas) ready"
        }
        guard !parts.isEmpty else { return nil }
        return parts.prefix(3).joined(separator: ", ") + (parts.count > 3 ? ", …" : "") + " at \(short)"
    }

    /// "status of worker, node n1 at 4f2a9c1": the objects whose observed state changed.
    static func changedSubject(_ changes: [ChangedPath], at short: String) -> String {
        let names = changes.map(\.path).sorted().map { path -> String in
            let parts = path.split(separator: "/")
            let name = String(parts.last ?? "").replacingOccurrences(of: ".yaml", with: "")
            return parts.first == "nodes" && parts.count == 2 ? "node " + name : name
        }
        guard !names.isEmpty else { return "status at \(short)" }
        return "status of " + names.prefix(4).joined(separator: ", ") + (names.count > 4 ? ", …" : "") + " at \(short)"
    }

    /// The note on a source commit: `applied`, or `rejected` with each finding as `path:line:col: message`.
    public static func note(result: ClusterStatus.SyncResult, findings: [Finding], objects: Int) -> String {
        var text = "berth: \(result.rawValue.lowercased())\n"
        switch result {
        case .applied:
            text += "objects: \(objects)\n"
            for f in findings where f.severity == .warning {
                text += "\(f.path):\(f.line):\(f.column): warning: \(f.message)\n"
            }
        case .rejected:
            for f in findings {
                let severity = f.severity == .warning ? "warning: " : ""
                text += "\(f.path):\(f.line):\(f.column): \(severity)\(f.message)\n"
            }
        }
        return text
    }
}
