import BerthModel

/// Collects the findings of decoding one document.
final class DecodeContext {
    let path: String
    /// The document being decoded, to place findings that are found away from the reader of their field.
    let document: YAMLNode

    private(set) var findings: [Finding] = []

    init(path: String, document: YAMLNode) {
        self.path = path
        self.document = document
    }

    /// Reports at the place the field path leads to.
    func report(_ severity: Severity, _ message: String, field: FieldPath) {
        report(severity, message, at: document.locate(field), field: field)
    }

    func error(_ message: String, field: FieldPath) { report(.error, message, field: field) }

    func report(_ severity: Severity, _ message: String, at mark: Mark, field: FieldPath) {
        findings.append(Finding(at: SourceLocation(path: path, line: mark.line, column: mark.column),
                                severity: severity, message: message, field: field.description))
    }

    func error(_ message: String, at mark: Mark, field: FieldPath) { report(.error, message, at: mark, field: field) }
    func warning(_ message: String, at mark: Mark, field: FieldPath) { report(.warning, message, at: mark, field: field) }

    var hasErrors: Bool { findings.contains { $0.severity == .error } }
}
