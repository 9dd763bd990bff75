import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's docker-registry on a loopback port, with its own config and storage under `dir`: anonymous,
/// htpasswd (Basic) or token authentication (the token server of scripts/registrylab.py), over plain HTTP
/// or TLS with a CA the test makes. Images are pushed to it with skopeo, as users do.
public final class TestRegistry: @unchecked Sendable {
    public enum Auth: Sendable { case none, basic(user: String, password: String), token(user: String, password: String) }

    public let dir: String
    public let port: Int
    public let auth: Auth
    /// The CA that signed the registry's certificate, when it serves TLS.
    public let caFile: String?
    private var servers: [ServerProcess] = []

    public var host: String { "127.0.0.1:\(port)" }
    public var scheme: String { caFile == nil ? "http" : "https" }
    public var credentials: (user: String, password: String)? {
        switch auth {
        case .none: nil
        case .basic(let u, let p), .token(let u, let p): (u, p)
        }
    }

    public static var repositoryRoot: String {
        var d = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: d.appendingPathComponent("Package.swift").path) { d.deleteLastPathComponent() }
        return d.path
    }

    public init(dir: String, auth: Auth = .none, tls: Bool = false, tokenExpiry: Int = 300) throws {
        self.dir = dir
        self.auth = auth
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        port = TestServers.freePort()
        var http = "http:\n  addr: 127.0.0.1:\(port)\n  secret: berth-test\n"
        if tls {
            try TestRegistry.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth test CA",
                                      "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt"])
            try TestRegistry.openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", dir + "/server.key", "-out", dir + "/server.csr"])
            try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir + "/san.ext", atomically: true, encoding: .utf8)
            try TestRegistry.openssl(["x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key", "-CAcreateserial",
                                      "-days", "2", "-extfile", dir + "/san.ext", "-out", dir + "/server.crt"])
            http += "  tls:\n    certificate: \(dir)/server.crt\n    key: \(dir)/server.key\n"
            caFile = dir + "/ca.crt"
            // skopeo reads a directory of CA certificates.
            try FileManager.default.createDirectory(atPath: dir + "/certs.d", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: dir + "/ca.crt", toPath: dir + "/certs.d/ca.crt")
        } else {
            caFile = nil
        }
        var authConfig = ""
        switch auth {
        case .none: break
        case .basic(let user, let password):
            let line = try TestCommand.output("/usr/bin/htpasswd", ["-Bbn", user, password])
            try line.write(toFile: dir + "/htpasswd", atomically: true, encoding: .utf8)
            authConfig = "auth:\n  htpasswd:\n    realm: berth-test\n    path: \(dir)/htpasswd\n"
        case .token(let user, let password):
            let tokenPort = TestServers.freePort()
            try TestRegistry.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth token issuer",
                                      "-keyout", dir + "/token.key", "-out", dir + "/token.crt"])
            servers.append(try ServerProcess("/usr/bin/python3", [TestRegistry.repositoryRoot + "/scripts/registrylab.py", "token", String(tokenPort),
                                                                   dir + "/token.key", dir + "/token.crt", "berth-issuer", "berth-registry",
                                                                   user, password, String(tokenExpiry)], port: tokenPort))
            authConfig = """
            auth:
              token:
                realm: http://127.0.0.1:\(tokenPort)/token
                service: berth-registry
                issuer: berth-issuer
                rootcertbundle: \(dir)/token.crt

            """
        }
        let config = """
        version: 0.1
        log:
          level: error
          accesslog:
            disabled: true
        storage:
          filesystem:
            rootdirectory: \(dir)/data
          delete:
            enabled: true
        \(http)\(authConfig)
        """
        try config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        servers.append(try ServerProcess("/usr/bin/docker-registry", ["serve", dir + "/config.yml"], port: port))
    }

    static func openssl(_ args: [String]) throws {
        _ = try TestCommand.output("/usr/bin/openssl", args)
    }

    /// Copies an image (an OCI layout `dir:tag`) to `repository:tag` here; `format` v2s2 for Docker schema 2,
    /// `all` for a whole index.
    public func push(_ source: String, to reference: String, format: String? = nil, all: Bool = false) throws {
        var args = ["copy", "-q", "--retry-times", "0"]
        if let format { args += ["--format", format] }
        if all { args.append("--all") }
        if let c = credentials { args += ["--dest-creds", "\(c.user):\(c.password)"] }
        args += caFile == nil ? ["--dest-tls-verify=false"] : ["--dest-cert-dir", dir + "/certs.d"]
        args += ["oci:" + source, "docker://\(host)/\(reference)"]
        _ = try TestCommand.output("/usr/bin/skopeo", args)
    }

    /// registries.yaml for a node reaching this registry as `name` (its own host, or a mirrored one such as
    /// docker.io); `credentials: false` leaves the node without the password.
    public func registriesYAML(for name: String? = nil, credentials: Bool = true) -> String {
        var s = "mirrors:\n  \"\(name ?? host)\":\n    endpoint: [\"\(scheme)://\(host)\"]\n"
        var config = ""
        if credentials, let c = self.credentials { config += "    auth: {username: \"\(c.user)\", password: \"\(c.password)\"}\n" }
        if let caFile { config += "    tls: {ca_file: \"\(caFile)\"}\n" }
        if !config.isEmpty { s += "configs:\n  \"\(host)\":\n" + config }
        return s
    }

    public func stop() {
        for s in servers.reversed() { s.stop() }
        servers = []
    }

    deinit { stop() }
}

/// OCI image layouts made with umoci from busybox, as a user would build a small image.
public enum TestImages {
    /// A layout `dir` with `tag`: busybox, `files` (path → content; executable when it starts with #!) in a
    /// second layer, `cmd` as the default command.
    public static func make(_ dir: String, tag: String, files: [String: String] = [:], cmd: [String] = ["/bin/sh"],
                            user: String? = nil, arch: String? = nil) throws {
        let layout = dir
        if !FileManager.default.fileExists(atPath: layout + "/index.json") {
            _ = try TestCommand.output("/usr/bin/umoci", ["init", "--layout", layout])
        }
        _ = try TestCommand.output("/usr/bin/umoci", ["new", "--image", "\(layout):\(tag)"])
        let bundle = layout + ".bundle-\(tag)"
        try? FileManager.default.removeItem(atPath: bundle)
        _ = try TestCommand.output("/usr/bin/umoci", ["unpack", "--rootless", "--image", "\(layout):\(tag)", bundle])
        let rootfs = bundle + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for tool in ["sh", "cat", "echo", "sleep", "ls", "id", "wget", "httpd", "nc"] {
            try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + tool, withDestinationPath: "busybox")
        }
        try FileManager.default.createDirectory(atPath: rootfs + "/etc", withIntermediateDirectories: true)
        try "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\napp:x:1000:\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
        _ = try TestCommand.output("/usr/bin/umoci", ["repack", "--image", "\(layout):\(tag)", bundle])
        if !files.isEmpty {
            for (path, content) in files {
                let full = rootfs + "/" + path
                try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try content.write(toFile: full, atomically: false, encoding: .utf8)
                // Scripts run: a file that starts with #! is executable.
                if content.hasPrefix("#!") { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: full) }
            }
            _ = try TestCommand.output("/usr/bin/umoci", ["repack", "--image", "\(layout):\(tag)", bundle])
        }
        var config = ["config", "--image", "\(layout):\(tag)", "--clear=config.cmd"]
        for c in cmd { config += ["--config.cmd", c] }
        if let user { config += ["--config.user", user] }
        if let arch { config += ["--architecture", arch] }
        _ = try TestCommand.output("/usr/bin/umoci", config)
        try? FileManager.default.removeItem(atPath: bundle)
    }
}

/// Runs a program to its end; its output, or a failure naming the program and what it printed.
public enum TestCommand {
    @discardableResult
    public static func output(_ program: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else { throw TestFailure("\(program) \(args.joined(separator: " ")) failed (\(p.terminationStatus)): \(text)") }
        return text
    }
}

extension TestRegistry {
    /// scripts/registrylab.py's misbehaving registry (one way per repository), plain HTTP.
    public static func hostile(port: Int) throws -> ServerProcess {
        try ServerProcess("/usr/bin/python3", [repositoryRoot + "/scripts/registrylab.py", "hostile", String(port)], port: port)
    }
}

/// Edits of OCI image layouts that umoci does not make.
public enum TestLayouts {
    /// Adds `tag`: an image index of the layout's `tags`, each given as the platform (linux/ARCH) it runs on.
    public static func index(_ layout: String, tag: String, of tags: [(tag: String, architecture: String)]) throws {
        let indexURL = URL(fileURLWithPath: layout + "/index.json")
        var top = try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as! [String: Any]
        var manifests = top["manifests"] as? [[String: Any]] ?? []
        func named(_ t: String) -> [String: Any]? {
            manifests.first { ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == t }
        }
        var entries: [[String: Any]] = []
        for (t, arch) in tags {
            guard var m = named(t) else { throw TestFailure("no tag \(t) in \(layout)") }
            m["annotations"] = nil
            m["platform"] = ["os": "linux", "architecture": arch]
            entries.append(m)
        }
        let index = try JSONSerialization.data(withJSONObject: ["schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries],
                                               options: [.sortedKeys])
        let temp = layout + "/index-blob.tmp"
        try index.write(to: URL(fileURLWithPath: temp))
        let hex = String(try TestCommand.output("/usr/bin/sha256sum", [temp]).prefix(64))
        try FileManager.default.moveItem(atPath: temp, toPath: layout + "/blobs/sha256/" + hex)
        manifests.removeAll { ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == tag }
        manifests.append(["mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + hex, "size": index.count,
                          "annotations": ["org.opencontainers.image.ref.name": tag]])
        top["manifests"] = manifests
        try JSONSerialization.data(withJSONObject: top).write(to: indexURL)
    }
}
