import ArgumentParser
import BerthModel
import BerthYAMLCore
import Foundation

/// Flags from a YAML file, as k3s reads its config.yaml: each key is a long option of the command (without
/// `--`), a scalar for a single value, a list for an option that repeats, true or false for a flag. A flag
/// on the command line overrides the file's value for that option. An unknown key or a bad value is an
/// error naming the file, line and column.
struct ConfigFile {
    static let defaultPath = "/etc/berth/config.yaml"
    static let commands: [String: any ParsableCommand.Type] = ["run": RunCommand.self, "server": ServerCommand.self, "agent": AgentCommand.self]
    /// What each command cannot start without, with a value that passes its checks.
    static let required: [String: [(key: String, value: String)]] = ["run": [("repo", "/")], "server": [("repo", "/")],
                                                                     "agent": [("server", "https://127.0.0.1:7443")]]

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One key of the file, as command-line words.
    struct Entry {
        var key: String
        var mark: Mark
        var words: [String]
    }

    let path: String
    let entries: [Entry]

    /// The long options of a command, from ArgumentParser's own description of it: whether each takes a
    /// value and whether it repeats.
    static func options(of command: any ParsableCommand.Type) -> [String: (takesValue: Bool, repeats: Bool)] {
        guard let data = command._dumpHelp().data(using: .utf8),
              let info = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let arguments = (info["command"] as? [String: Any])?["arguments"] as? [[String: Any]] else { return [:] }
        var out: [String: (Bool, Bool)] = [:]
        for a in arguments {
            guard let kind = a["kind"] as? String, kind != "positional" else { continue }
            for n in a["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                if let name = n["name"] as? String, name != "help", name != "config" {
                    out[name] = (kind == "option", a["isRepeating"] as? Bool ?? false)
                }
            }
        }
        return out
    }

    /// Reads the file for `command`; every key checked against its options.
    init(path: String, command: any ParsableCommand.Type, name: String) throws(Failure) {
        self.path = path
        guard let bytes = FileManager.default.contents(atPath: path) else { throw Failure(description: "\(path): cannot read the configuration file") }
        let documents: [YAMLNode]
        do { documents = try YAMLParser.parse(Array(bytes)) } catch {
            throw Failure(description: "\(path):\(error.mark.line):\(error.mark.column): \(error.message)")
        }
        guard documents.count <= 1 else { throw Failure(description: "\(path):\(documents[1].mark.line):1: one YAML document expected") }
        guard let root = documents.first else {
            entries = []
            return
        }
        guard case .mapping(let pairs) = root.value else {
            throw Failure(description: "\(path):\(root.mark.line):\(root.mark.column): the configuration is a mapping of option names to values, not \(root.kindDescription)")
        }
        let known = Self.options(of: command)
        var entries: [Entry] = []
        var seen: Set<String> = []
        for pair in pairs {
            let at = "\(path):\(pair.key.mark.line):\(pair.key.mark.column)"
            guard case .scalar(let key, _) = pair.key.value else { throw Failure(description: "\(at): a key is an option name") }
            guard let option = known[key] else {
                let hint = Names.suggestion(for: key, among: known.keys).map { " (did you mean \"\($0)\"?)" } ?? ""
                throw Failure(description: "\(at): \"\(key)\" is not an option of berth \(name)\(hint)")
            }
            guard seen.insert(key).inserted else { throw Failure(description: "\(at): \"\(key)\" is given twice") }
            let valueAt = "\(path):\(pair.value.mark.line):\(pair.value.mark.column)"
            var words: [String] = []
            switch pair.value.value {
            case .scalar(let text, _) where !option.takesValue:
                guard case .bool(let on)? = pair.value.resolved else { throw Failure(description: "\(valueAt): \(key) is a flag: true or false, not \"\(text)\"") }
                if on { words = ["--" + key] }
            case .scalar(let text, _):
                if case .null? = pair.value.resolved { throw Failure(description: "\(valueAt): \(key) needs a value") }
                words = ["--" + key, text]
            case .sequence(let items) where option.repeats:
                for item in items {
                    guard case .scalar(let text, _) = item.value else {
                        throw Failure(description: "\(path):\(item.mark.line):\(item.mark.column): each value of \(key) is a scalar")
                    }
                    words += ["--" + key, text]
                }
            default:
                throw Failure(description: "\(valueAt): \(key) takes \(option.takesValue ? (option.repeats ? "a value or a list" : "one value") : "true or false"), not \(pair.value.kindDescription)")
            }
            entries.append(Entry(key: key, mark: pair.key.mark, words: words))
        }
        self.entries = entries
    }

    /// The command line with the file's options first; an option given on the command line replaces the
    /// file's (for a repeating option, all of the file's values).
    func merged(with args: [String]) -> [String] {
        let given = Set(args.compactMap { a -> String? in
            guard a.hasPrefix("--") else { return nil }
            return String(a.dropFirst(2).prefix { $0 != "=" })
        })
        return entries.filter { !given.contains($0.key) }.flatMap(\.words) + args
    }

    /// An error of the parser or of a command's checks, placed at the file's line when it is about an
    /// option the file gave.
    func locate(_ message: String) -> String? {
        for e in entries where message.contains("--" + e.key) {
            return "\(path):\(e.mark.line):\(e.mark.column): \(message)"
        }
        return nil
    }

    /// The file a command reads: `--config F`, else /etc/berth/config.yaml when it exists.
    static func path(in args: [String]) -> (path: String, explicit: Bool)? {
        for (i, a) in args.enumerated() {
            if a == "--config", i + 1 < args.count { return (args[i + 1], true) }
            if a.hasPrefix("--config=") { return (String(a.dropFirst(9)), true) }
        }
        return FileManager.default.fileExists(atPath: defaultPath) ? (defaultPath, false) : nil
    }
}

/// `berth config check`: reads a configuration file as `run`, `server` or `agent` would.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration files.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Check a configuration file: every key an option of the command, every value valid; exit 1 with file:line otherwise.")
        @Argument(help: "The file (default /etc/berth/config.yaml).") var file = ConfigFile.defaultPath
        @Option(help: "The command that reads it: run, server or agent.") var command = "agent"

        func run() throws {
            guard let type = ConfigFile.commands[command] else { throw ValidationError("--command is run, server or agent") }
            do {
                let config = try ConfigFile(path: file, command: type, name: command)
                // Each option alone, with stand-ins for the required ones the file leaves to the command line,
                // so that each error is about the option it names.
                let given = Set(config.entries.map(\.key))
                let standIns = ConfigFile.required[command, default: []].filter { !given.contains($0.key) }.flatMap { ["--" + $0.key, $0.value] }
                for entry in config.entries {
                    do {
                        _ = try type.parse(entry.words + standIns)
                    } catch {
                        let message = type.message(for: error)
                        if message.contains("--" + entry.key) {
                            throw ConfigFile.Failure(description: "\(file):\(entry.mark.line):\(entry.mark.column): \(message)")
                        }
                    }
                }
                StdStream.standardOutput.write("\(file): \(config.entries.count) options for berth \(command), all valid\n")
            } catch let e as ConfigFile.Failure {
                StdStream.standardError.write("berth: \(e.description)\n")
                throw ExitCode(1)
            }
        }
    }
}
