/// Kubernetes' name rules. Each check returns nil when the value is valid, else why it is not.
public enum Names {
    private static func isLowerAlnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
    private static func isAlnum(_ c: UInt8) -> Bool { isLowerAlnum(c) || (c >= 65 && c <= 90) }

    /// RFC 1123 label: Service and Namespace names, container names.
    public static func dns1123Label(_ s: String) -> String? {
        let b = Array(s.utf8)
        if b.isEmpty { return "must not be empty" }
        if b.count > 63 { return "must be no more than 63 characters" }
        let ok = b.allSatisfy { isLowerAlnum($0) || $0 == 45 } && isLowerAlnum(b.first!) && isLowerAlnum(b.last!)
        return ok ? nil : "must be a lowercase RFC 1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. 'my-name')"
    }

    /// RFC 1123 subdomain: names of most objects.
    public static func dns1123Subdomain(_ s: String) -> String? {
        let b = Array(s.utf8)
        if b.isEmpty { return "must not be empty" }
        if b.count > 253 { return "must be no more than 253 characters" }
        for part in s.split(separator: ".", omittingEmptySubsequences: false) {
            let p = Array(part.utf8)
            if p.isEmpty || !p.allSatisfy({ isLowerAlnum($0) || $0 == 45 }) || !isLowerAlnum(p.first!) || !isLowerAlnum(p.last!) {
                return "must be a lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. 'example.com')"
            }
        }
        return nil
    }

    /// A label or annotation key: an optional DNS subdomain prefix and '/', then a name of ≤ 63 characters.
    public static func qualifiedName(_ s: String) -> String? {
        var name = Substring(s)
        if let slash = s.firstIndex(of: "/") {
            let prefix = String(s[..<slash])
            if prefix.isEmpty { return "prefix part must not be empty" }
            if let why = dns1123Subdomain(prefix) { return "prefix part \(why)" }
            name = s[s.index(after: slash)...]
        }
        if name.isEmpty { return "name part must not be empty" }
        return labelText(String(name)).map { "name part " + $0 }
    }

    /// The characters and length shared by label values and the name part of qualified names.
    private static func labelText(_ s: String) -> String? {
        let b = Array(s.utf8)
        if b.count > 63 { return "must be no more than 63 characters" }
        let inner = b.allSatisfy { isAlnum($0) || $0 == 45 || $0 == 95 || $0 == 46 }
        if !inner || !isAlnum(b.first!) || !isAlnum(b.last!) {
            return "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        }
        return nil
    }

    /// A label value: empty, or ≤ 63 characters of alphanumerics, '-', '_', '.', alphanumeric at both ends.
    public static func labelValue(_ s: String) -> String? {
        s.isEmpty ? nil : labelText(s)
    }

    /// IANA service name: a named port.
    public static func portName(_ s: String) -> String? {
        let b = Array(s.utf8)
        if b.isEmpty { return "must not be empty" }
        if b.count > 15 { return "must be no more than 15 characters" }
        if !b.allSatisfy({ isLowerAlnum($0) || $0 == 45 }) { return "must contain only lowercase letters, digits and '-'" }
        if !b.contains(where: { $0 >= 97 && $0 <= 122 }) { return "must contain at least one letter" }
        if b.first == 45 || b.last == 45 { return "must not begin or end with '-'" }
        if s.contains("--") { return "must not contain '--'" }
        return nil
    }

    /// A key of ConfigMap or Secret data, which becomes a file name.
    public static func configKey(_ s: String) -> String? {
        let b = Array(s.utf8)
        if b.isEmpty { return "must not be empty" }
        if b.count > 253 { return "must be no more than 253 characters" }
        if !b.allSatisfy({ isAlnum($0) || $0 == 45 || $0 == 95 || $0 == 46 }) {
            return "must consist of alphanumeric characters, '-', '_' or '.'"
        }
        if s == "." || s == ".." || s.hasPrefix("..") { return "must not be '.', '..' or start with '..'" }
        return nil
    }

    /// An environment variable name: printable ASCII without '='.
    public static func envVarName(_ s: String) -> String? {
        let b = Array(s.utf8)
        if b.isEmpty { return "must not be empty" }
        if !b.allSatisfy({ $0 >= 32 && $0 < 127 && $0 != 61 }) { return "must consist of printable ASCII characters other than '='" }
        return nil
    }

    /// A resource name: `cpu`, `memory`, `ephemeral-storage`, or a domain-qualified extended resource.
    public static func resourceName(_ s: String) -> String? {
        if ["cpu", "memory", "ephemeral-storage"].contains(s) { return nil }
        if s.hasPrefix("hugepages-") { return "hugepages are not supported by berth" }
        guard s.contains("/") else {
            return "must be cpu, memory, ephemeral-storage or a domain-qualified extended resource such as example.com/gpu"
        }
        if s.hasPrefix("kubernetes.io/") || s.hasPrefix("requests.") {
            return "is not a valid extended resource name"
        }
        return qualifiedName(s)
    }

    /// The closest candidate by edit distance, for "did you mean" hints; nil when nothing is close.
    public static func suggestion(for input: String, among candidates: some Sequence<String>) -> String? {
        let lower = input.lowercased()
        var best: (String, Int)?
        for c in candidates {
            let d = c.lowercased() == lower ? 0 : editDistance(lower, c.lowercased())
            if best == nil || d < best!.1 || (d == best!.1 && c < best!.0) { best = (c, d) }
        }
        guard let (name, distance) = best else { return nil }
        let limit = max(2, input.count / 3)
        return distance <= limit ? name : nil
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var before = [Int](repeating: 0, count: y.count + 1)
        var prev = Array(0...y.count)
        var cur = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            cur[0] = i
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
                if i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] {
                    cur[j] = min(cur[j], before[j - 2] + 1)
                }
            }
            (before, prev, cur) = (prev, cur, before)
        }
        return prev[y.count]
    }
}
