import ArgumentParser
import BerthModel
import BerthYAML

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate manifests as berth would load them from a commit.",
        discussion: """
        Reads *.yaml, *.yml and *.json below each PATH (default: the current directory), honouring \
        .berthignore (gitignore syntax). Every finding is printed as PATH:LINE:COL: error|warning: MESSAGE (field). \
        Exit status: 0 without errors (warnings allowed), 1 with errors, 2 for usage errors and unreadable paths.
        """
    )

    @Argument(help: "Files or directories to validate.")
    var paths: [String] = ["."]

    @Option(name: .shortAndLong, help: "Output format: text or json.")
    var output: OutputFormat = .text

    @Flag(help: "Treat warnings as errors.")
    var strict = false

    @Option(help: "Largest manifest file in bytes.")
    var maxFileBytes = InputLimits().maxFileBytes

    @Option(help: "Most YAML documents in one file.")
    var maxDocuments = InputLimits().maxDocuments

    @Option(help: "Deepest nesting of YAML collections.")
    var maxDepth = InputLimits().maxDepth

    @Option(help: "Most nodes that aliases may add to one file.")
    var maxAliasExpansion = InputLimits().maxAliasExpansion

    func run() throws {
        var limits = InputLimits()
        limits.maxFileBytes = maxFileBytes
        limits.maxDocuments = maxDocuments
        limits.maxDepth = maxDepth
        limits.maxAliasExpansion = maxAliasExpansion
        let files: [ManifestFile]
        do {
            files = try ManifestPaths.collect(paths, maxBytes: maxFileBytes)
        } catch {
            StdStream.standardError.write("berth validate: \(error)\n")
            throw ExitCode(2)
        }
        let result = ManifestLoader(limits: limits).load(files)
        var findings = result.findings
        if strict {
            for i in findings.indices where findings[i].severity == .warning { findings[i].severity = .error }
        }
        let errors = findings.count { $0.severity == .error }
        let warnings = findings.count - errors
        switch output {
        case .text:
            var text = ""
            for f in findings { text += f.formatted + "\n" }
            text += "\(plural(result.fileCount, "file")), \(plural(result.desired.count, "object")): "
                + "\(plural(errors, "error")), \(plural(warnings, "warning"))\n"
            StdStream.standardOutput.write(text)
        case .json:
            StdStream.standardOutput.write(JSONText.findings(findings) + "\n")
        }
        if errors > 0 { throw ExitCode(1) }
    }
}

/// "1 file", "2 files".
func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

/// JSON with the keys in the documented order.
enum JSONText {
    static func findings(_ findings: [Finding]) -> String {
        if findings.isEmpty { return "[]" }
        let rows = findings.map { f in
            "  {\"path\": \(string(f.path)), \"line\": \(f.line), \"column\": \(f.column), "
                + "\"severity\": \(string(f.severity.rawValue)), \"message\": \(string(f.message)), \"field\": \(string(f.field))}"
        }
        return "[\n" + rows.joined(separator: ",\n") + "\n]"
    }

    static func string(_ s: String) -> String { quotedString(s) }

}
