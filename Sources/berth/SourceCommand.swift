import ArgumentParser
import BerthGit
import BerthModel
import BerthSource
import BerthYAML

struct SourceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "source",
        abstract: "Look at the manifest repository as berth sees it.",
        subcommands: [Show.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Fetch once and print the commit, the objects found and the findings.",
            discussion: "Exit status: 0 when the commit would be applied, 1 when it would be rejected, 2 when the repository cannot be read."
        )

        @OptionGroup var remote: RemoteOptions

        @Option(help: "Branch, tag (refs/tags/NAME or tags/NAME) or full commit id.")
        var ref = "main"

        @Option(help: "Subdirectory of the repository that holds the manifests.")
        var path = ""

        @Option(help: "State directory; the bare mirror is kept under it.")
        var stateDir = "/var/lib/berth"

        @Option(name: .shortAndLong, help: "Output format: text or json.")
        var output: OutputFormat = .text

        func run() async throws {
            let config = try remote.sourceConfig(ref: SourceRef(parsing: ref), path: path, stateDir: stateDir)
            let source: GitSource
            do {
                source = try GitSource(config: config)
            } catch {
                StdStream.standardError.write("berth source show: \(error)\n")
                throw ExitCode(2)
            }
            let snapshot: Snapshot
            switch await source.poll() {
            case .updated(let s), .unchanged(let s):
                snapshot = s
            case .failed(let error, _):
                StdStream.standardError.write("berth source show: \(error.message)\n")
                throw ExitCode(2)
            }
            let result = snapshot.result
            let objects = result.desired.objects.keys.sorted().map { ($0, result.desired.objects[$0]!.origin) }
            switch output {
            case .text:
                var text = "commit \(snapshot.commit.id.hex) (\(config.ref)): \(snapshot.commit.summary)\n"
                if !objects.isEmpty {
                    let width = max(4, objects.map { $0.0.kind.rawValue.count }.max() ?? 0)
                    let nameWidth = max(14, objects.map { "\($0.0.namespace.isEmpty ? "" : $0.0.namespace + "/")\($0.0.name)".count }.max() ?? 0)
                    text += pad("KIND", width) + "  " + pad("NAMESPACE/NAME", nameWidth) + "  SOURCE\n"
                    for (key, origin) in objects {
                        let name = key.namespace.isEmpty ? key.name : "\(key.namespace)/\(key.name)"
                        text += pad(key.kind.rawValue, width) + "  " + pad(name, nameWidth) + "  \(origin.path):\(origin.line)\n"
                    }
                }
                for f in result.findings { text += f.formatted + "\n" }
                let verdict = result.isValid ? "would be applied" : "would be rejected"
                text += "\(plural(result.fileCount, "file")), \(plural(objects.count, "object")): "
                    + "\(plural(result.errorCount, "error")), \(plural(result.warningCount, "warning")); \(verdict)\n"
                StdStream.standardOutput.write(text)
            case .json:
                let rows = objects.map { key, origin in
                    "    {\"kind\": \(JSONText.string(key.kind.rawValue)), \"namespace\": \(JSONText.string(key.namespace)), "
                        + "\"name\": \(JSONText.string(key.name)), \"path\": \(JSONText.string(origin.path)), \"line\": \(origin.line)}"
                }
                let json = "{\n  \"commit\": \(JSONText.string(snapshot.commit.id.hex)),\n  \"ref\": \(JSONText.string(config.ref.description)),\n"
                    + "  \"valid\": \(result.isValid),\n  \"objects\": [\n" + rows.joined(separator: ",\n") + "\n  ],\n"
                    + "  \"findings\": " + JSONText.findings(result.findings).replacingOccurrences(of: "\n", with: "\n  ") + "\n}\n"
                StdStream.standardOutput.write(json)
            }
            if !result.isValid { throw ExitCode(1) }
        }

        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    }
}
