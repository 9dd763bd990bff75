import ArgumentParser
import BerthImage
import Foundation

/// Runs an image action, turning its errors into `berth image: …` on stderr and exit status 1.
func imageAction<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch {
        StdStream.standardError.write("berth image: \(error)\n")
        throw ExitCode(1)
    }
}

struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "The image store: OCI image layouts imported, verified and unpacked once.",
        subcommands: [Import.self, List.self, Remove.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "State directory; images live under STATE/images.")
        var stateDir = "/var/lib/berth"
        var store: ImageStore { ImageStore(root: stateDir + "/images") }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import an OCI image layout directory or oci-archive tar (PATH or PATH:TAG).")
        @OptionGroup var options: Options
        @Argument var reference: String
        func run() throws {
            var path = reference, tag: String?
            if let colon = reference.lastIndex(of: ":"), !reference[reference.index(after: colon)...].contains("/") {
                path = String(reference[..<colon])
                tag = String(reference[reference.index(after: colon)...])
            }
            let r = try imageAction { try options.store.importImage(path, tag: tag) }
            print("\(r.name) \(r.digest)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List images.")
        @OptionGroup var options: Options
        func run() throws {
            print("NAME\tDIGEST\tSIZE")
            for r in options.store.list() { print("\(r.name)\t\(r.digest)\t\(r.size)") }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an image name (and its data when unused).")
        @OptionGroup var options: Options
        @Argument var name: String
        func run() throws { try imageAction { try options.store.remove(name) } }
    }
}
