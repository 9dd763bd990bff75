import BerthModel

/// Renders a status as the files of the status branch: `cluster.yaml` and `<namespace>/<kind>/<name>.yaml`
/// (cluster-scoped objects under `_cluster/`). The text depends on state only, so an unchanged cluster
/// renders byte-identical files and makes no commit.
public enum StatusTree {
    public static func files(_ s: ClusterStatus) -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        files["cluster.yaml"] = Array(cluster(s).utf8)
        for o in s.objects {
            let ns = o.key.namespace.isEmpty ? "_cluster" : o.key.namespace
            var text = "kind: \(o.key.kind.rawValue)\n"
            if !o.key.namespace.isEmpty { text += "namespace: \(o.key.namespace)\n" }
            text += "name: \(o.key.name)\n"
            text += "source: \(quotedString("\(o.origin.path):\(o.origin.line)"))\n"
            if !o.status.isEmpty {
                text += "status:\n"
                StatusValue.map(o.status).render(into: &text, indent: 2)
            }
            files["\(ns)/\(o.key.kind.rawValue)/\(o.key.name).yaml"] = Array(text.utf8)
        }
        for n in s.nodes {
            var text = "name: \(n.name)\n"
            StatusValue.map(n.status).render(into: &text, indent: 0)
            files["nodes/\(n.name).yaml"] = Array(text.utf8)
        }
        return files
    }

    static func cluster(_ s: ClusterStatus) -> String {
        var t = "source:\n"
        t += "  repository: \(quotedString(s.source.repository))\n"
        t += "  ref: \(quotedString(s.source.ref))\n"
        if !s.source.path.isEmpty { t += "  path: \(quotedString(s.source.path))\n" }
        t += "appliedCommit: \(s.appliedCommit ?? "null")\n"
        t += "sync:\n"
        t += "  commit: \(s.lastCommit ?? "null")\n"
        t += "  result: \(s.lastResult?.rawValue ?? "null")\n"
        let errors = s.findings.count { $0.severity == .error }
        t += "  errors: \(errors)\n"
        t += "  warnings: \(s.findings.count - errors)\n"
        if !s.findings.isEmpty {
            t += "  findings:\n"
            for f in s.findings { t += "    - \(quotedString(f.formatted))\n" }
        }
        if let e = s.sourceError { t += "sourceError: \(quotedString(e))\n" }
        var counts: [ObjectKind: Int] = [:]
        for o in s.objects { counts[o.key.kind, default: 0] += 1 }
        t += "objects:\n"
        t += "  total: \(s.objects.count)\n"
        for (kind, n) in counts.sorted(by: { $0.key < $1.key }) { t += "  \(kind.rawValue): \(n)\n" }
        return t
    }
}
