/// How bad a finding is: an error rejects the whole set, a warning does not.
public enum Severity: String, Sendable, Hashable, Codable, Comparable {
    case error
    case warning

    public static func < (a: Severity, b: Severity) -> Bool { a == .error && b == .warning }
}

/// A place in a manifest file; line and column are 1-based.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var column: Int

    public init(path: String, line: Int, column: Int) {
        self.path = path
        self.line = line
        self.column = column
    }

    public var description: String { "\(path):\(line):\(column)" }
}

/// One validation result, the unit that `berth validate`, hooks and the status branch report.
public struct Finding: Sendable, Hashable, Codable {
    public var path: String
    public var line: Int
    public var column: Int
    public var severity: Severity
    public var message: String
    /// Field path inside the document, e.g. `spec.template.spec.containers[0].image`; empty for the document.
    public var field: String

    public init(at location: SourceLocation, severity: Severity, message: String, field: String) {
        self.path = location.path
        self.line = location.line
        self.column = location.column
        self.severity = severity
        self.message = message
        self.field = field
    }

    public var location: SourceLocation { SourceLocation(path: path, line: line, column: column) }

    /// `PATH:LINE:COL: severity: MESSAGE (field)`, the line format of `berth validate`.
    public var formatted: String {
        let suffix = field.isEmpty ? "" : " (\(field))"
        return "\(path):\(line):\(column): \(severity.rawValue): \(message)\(suffix)"
    }

    /// Files in order, then position, errors before warnings at the same place.
    public static func sortedForDisplay(_ findings: [Finding]) -> [Finding] {
        findings.sorted {
            if $0.path != $1.path { return $0.path < $1.path }
            if $0.line != $1.line { return $0.line < $1.line }
            if $0.column != $1.column { return $0.column < $1.column }
            if $0.severity != $1.severity { return $0.severity < $1.severity }
            return $0.message < $1.message
        }
    }
}
