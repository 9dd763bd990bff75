import ArgumentParser
import Foundation

/// Where the CLI finds the API and the token that lets it change things.
struct AdminOptions: ParsableArguments {
    @OptionGroup var server: ServerOptions

    @Option(help: "File holding the API token (the server's --token-file, default STATE_DIR/api-token).")
    var tokenFile = "/var/lib/berth/api-token"

    func token() throws -> String {
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            throw ValidationError("cannot read the API token \(tokenFile) (--token-file)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sends an authenticated request and prints the answer's message.
    func send(_ method: String, _ path: String) throws {
        let token = try token()
        try clientRun {
            let answer = try server.client().send(method, path, token: token)
            StdStream.standardOutput.write((answer["message"] as? String ?? "done") + "\n")
        }
    }
}

struct CordonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cordon", abstract: "Mark a node unschedulable: no new pods go there.")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The node.") var node: String
    func run() throws { try admin.send("POST", "/api/v1/nodes/\(node)/cordon") }
}

struct UncordonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "uncordon", abstract: "Let pods be placed on a node again (ends a cordon or drain).")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The node.") var node: String
    func run() throws { try admin.send("POST", "/api/v1/nodes/\(node)/uncordon") }
}

struct DrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Cordon a node and move its Deployments' pods to other nodes, each Deployment within its maxUnavailable; waits until they left.")
    @OptionGroup var admin: AdminOptions
    @Argument(help: "The node.") var node: String
    @Option(help: "Seconds to wait for the pods to leave (0: do not wait).") var timeout = 300.0

    func run() throws {
        try admin.send("POST", "/api/v1/nodes/\(node)/drain")
        guard timeout > 0 else { return }
        let deadline = Date().addingTimeInterval(timeout)
        try clientRun {
            let client = try admin.server.client()
            while true {
                let pods = try client.json("/api/v1/pods").arr("items").filter { p in
                    p.obj("spec").str("nodeName") == node && p.obj("metadata").arr("ownerReferences").contains { $0.str("kind") == "Deployment" }
                }
                if pods.isEmpty { break }
                guard Date() < deadline else {
                    throw APIClient.Failure(description: "\(pods.count) pods still on \(node) after \(Int(timeout)) s: \(pods.map { $0.obj("metadata").str("name") }.joined(separator: ", "))")
                }
                Thread.sleep(forTimeInterval: 0.5)
            }
            StdStream.standardOutput.write("node \(node) drained\n")
        }
    }
}

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "node", abstract: "Manage nodes.", subcommands: [Remove.self])

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a node: its pods move elsewhere and it must join again to come back.")
        @OptionGroup var admin: AdminOptions
        @Argument(help: "The node.") var node: String
        func run() throws { try admin.send("DELETE", "/api/v1/nodes/\(node)") }
    }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "The join token of berth server.", subcommands: [Rotate.self])

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate", abstract: "Replace the join token and print the new one; nodes that joined keep their credentials.")
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let token = try admin.token()
            try clientRun {
                let answer = try admin.server.client().send("POST", "/api/v1/token/rotate", token: token)
                StdStream.standardOutput.write((answer["token"] as? String ?? "") + "\n")
            }
        }
    }
}
