import ArgumentParser
import Foundation

/// The benchmarks (docs/benchmarks.md has the method and figures). Not shipped with berth: some serve
/// repositories with the test servers.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-bench",
        abstract: "Benchmark helpers (see docs/benchmarks.md).",
        subcommands: [Generate.self, Source.self, SchedulerBench.self, ControllerBench.self, StoreWriter.self, StoreEtcd.self, NodeBench.self, NodesBench.self]
    )

    /// Where berth-bench runs from: berth-shim and berth-init sit next to it.
    static var binaryDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text
    case json
}

extension BenchCommand {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a synthetic manifest set: FILES files, each with DOCS Deployment+Service documents.")

        @Option(help: "Number of files.")
        var files = 1_000

        @Option(help: "Deployment+Service pairs per file (each pair is two documents).")
        var pairs = 5

        @Argument(help: "Directory to write into (created if missing).")
        var directory: String

        func run() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for f in 0..<files {
                var text = ""
                for d in 0..<pairs {
                    text += BenchCommand.pair(name: "app-\(f)-\(d)", replicas: 1 + (f + d) % 5)
                }
                let path = (directory as NSString).appendingPathComponent(String(format: "app-%04d.yaml", f))
                guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
                    throw ValidationError("cannot write \(path)")
                }
            }
        }
    }

    static func pair(name: String, replicas: Int) -> String {
        """
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: \(name)
          labels: {app: \(name), tier: backend}
        spec:
          replicas: \(replicas)
          selector:
            matchLabels: {app: \(name)}
          template:
            metadata:
              labels: {app: \(name), tier: backend}
            spec:
              containers:
                - name: app
                  image: host
                  command: ["/bin/busybox", "httpd", "-f", "-p", "8080"]
                  env:
                    - {name: MODE, value: production}
                  ports:
                    - {name: http, containerPort: 8080}
                  readinessProbe:
                    httpGet: {path: /, port: http}
                  resources:
                    requests: {cpu: 100m, memory: 64Mi}
                    limits: {cpu: 500m, memory: 128Mi}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: \(name)
        spec:
          selector: {app: \(name)}
          ports:
            - {name: http, port: 80, targetPort: http}

        """
    }
}

extension Duration {
    /// For printing benchmark figures.
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
