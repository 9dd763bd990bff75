#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `.berthignore` patterns in gitignore syntax: the last matching pattern wins, `!` re-includes,
/// a trailing `/` matches directories only, a pattern with a `/` is anchored to the root, `**` spans directories.
/// As in Git, nothing under an ignored directory can be re-included.
public struct IgnoreRules: Sendable {
    struct Rule: Sendable {
        var segments: [String]
        var negated: Bool
        var directoryOnly: Bool
    }

    var rules: [Rule] = []

    public static let fileName = ".berthignore"

    public init(text: String = "") {
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            var line = String(raw)
            while line.hasSuffix(" ") && !line.hasSuffix("\\ ") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            var negated = false
            if line.hasPrefix("!") {
                negated = true
                line.removeFirst()
            } else if line.hasPrefix("\\!") || line.hasPrefix("\\#") {
                line.removeFirst()
            }
            var directoryOnly = false
            if line.hasSuffix("/") {
                directoryOnly = true
                while line.hasSuffix("/") { line.removeLast() }
            }
            if line.isEmpty { continue }
            let anchored = line.contains("/")
            if line.hasPrefix("/") { line.removeFirst() }
            var segments = line.split(separator: "/").map(String.init)
            if !anchored { segments.insert("**", at: 0) }
            rules.append(Rule(segments: segments, negated: negated, directoryOnly: directoryOnly))
        }
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// Whether a path relative to the root (with `/` separators) is ignored, its parent directories included.
    public func isIgnored(_ path: String, isDirectory: Bool) -> Bool {
        let parts = path.split(separator: "/").map(String.init)
        if parts.isEmpty || rules.isEmpty { return false }
        for n in 1..<parts.count where matches(Array(parts[0..<n]), isDirectory: true) { return true }
        return matches(parts, isDirectory: isDirectory)
    }

    func matches(_ parts: [String], isDirectory: Bool) -> Bool {
        var ignored = false
        for rule in rules where !(rule.directoryOnly && !isDirectory) {
            if IgnoreRules.match(rule.segments[...], parts[...]) { ignored = !rule.negated }
        }
        return ignored
    }

    static func match(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            let rest = pattern.dropFirst()
            // A trailing `**` matches everything inside, but not the directory itself.
            if rest.isEmpty { return !path.isEmpty }
            var p = path
            while true {
                if match(rest, p) { return true }
                if p.isEmpty { return false }
                p = p.dropFirst()
            }
        }
        guard let name = path.first, fnmatch(first, name, 0) == 0 else { return false }
        return match(pattern.dropFirst(), path.dropFirst())
    }
}
