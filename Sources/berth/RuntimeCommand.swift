import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `berth runtime …` is `berth-runtime …`, the runtime's own small binary next to this one: a container
/// start should not pay for loading everything else berth does.
struct RuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "The OCI runtime, as runc: run|create|start|state|kill|delete|list|ps|pause|resume|events|features|spec (see `berth runtime --help`).",
        helpNames: []
    )

    @Argument(parsing: .captureForPassthrough, help: "A runtime command and its arguments.")
    var arguments: [String] = []

    func run() throws {
        RuntimeCommand.exec(arguments)
    }

    /// Replaces this process with berth-runtime; `Berth.main` calls it before parsing anything else, since
    /// ArgumentParser's set-up alone costs more than a container's start.
    static func exec(_ arguments: [String]) -> Never {
        let runtime = Berth.binaryDirectory + "/berth-runtime"
        let argv: [UnsafeMutablePointer<CChar>?] = ([runtime] + arguments).map { strdup($0) } + [nil]
        execv(runtime, argv)
        StdStream.standardError.write("berth runtime: cannot run \(runtime): \(String(cString: strerror(errno)))\n")
        Glibc.exit(1)
    }
}
