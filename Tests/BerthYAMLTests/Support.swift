import BerthModel
import BerthYAML

/// Loads YAML texts as files named in the pairs, the way `berth validate` does.
func load(_ files: [(String, String)], limits: InputLimits = InputLimits()) -> LoadResult {
    ManifestLoader(limits: limits).load(files.map { ManifestFile(path: $0.0, bytes: Array($0.1.utf8)) })
}

func load(_ text: String, limits: InputLimits = InputLimits()) -> LoadResult {
    load([("m.yaml", text)], limits: limits)
}

/// A finding as `line:col: severity: message (field)`, for compact expectations.
func short(_ f: Finding) -> String {
    "\(f.line):\(f.column): \(f.severity.rawValue): \(f.message) (\(f.field))"
}

let minimalDeployment = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: host

"""
