import ArgumentParser
import BerthGit
import BerthSource
import Foundation

/// How to reach the manifest repository. Secrets come from files or the environment, never from the
/// command line (where `ps` and shell history would show them).
struct RemoteOptions: ParsableArguments {
    @Option(name: .customLong("repo"), help: "Repository: a path, file://, git://, http(s):// or ssh:// URL.")
    var url: String

    @Option(help: "User name for http(s) basic auth (default with a token: x-access-token).")
    var username: String?

    @Option(help: "File holding the http(s) password or token.")
    var passwordFile: String?

    @Option(help: "Environment variable holding the http(s) password or token.")
    var passwordEnv: String?

    @Option(help: "Private key for ssh:// (a .pub next to it is used if present).")
    var sshKey: String?

    @Option(help: "File holding the ssh key's passphrase.")
    var sshKeyPassphraseFile: String?

    @Option(help: "known_hosts file for ssh:// (default ~/.ssh/known_hosts).")
    var knownHosts: String?

    @Flag(help: "Accept any ssh host key. Only for tests: it lets anyone in the middle read and change the manifests.")
    var insecureSkipHostKeyCheck = false

    func validate() throws {
        if let scheme = url.range(of: "://") {
            let authority = url[scheme.upperBound...].prefix { $0 != "/" }
            if let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") {
                throw ValidationError("the repository URL holds a password; use --password-file or --password-env instead")
            }
        }
        if passwordFile != nil && passwordEnv != nil { throw ValidationError("use one of --password-file and --password-env") }
    }

    func access() throws -> RemoteAccess {
        let isLocalPath = !url.contains("://") && !(url.contains("@") && url.contains(":"))
        if isLocalPath && !FileManager.default.fileExists(atPath: url) {
            throw ValidationError("repository \(url) does not exist")
        }
        var access = RemoteAccess(url: url)
        access.insecureSkipHostKeyCheck = insecureSkipHostKeyCheck
        if let secret = try readSecret() {
            access.credentials = .userPassword(username: username ?? "x-access-token", password: secret)
        }
        if let key = sshKey {
            guard FileManager.default.isReadableFile(atPath: key) else { throw ValidationError("cannot read ssh key \(key)") }
            let pub = key + ".pub"
            let passphrase = try sshKeyPassphraseFile.map { try readFile($0) }
            access.credentials = .sshKey(username: username, privateKeyPath: key,
                                         publicKeyPath: FileManager.default.fileExists(atPath: pub) ? pub : nil,
                                         passphrase: passphrase)
        }
        if url.hasPrefix("ssh://") || (!url.contains("://") && url.contains("@") && url.contains(":")) {
            let path = knownHosts ?? (NSHomeDirectory() + "/.ssh/known_hosts")
            if FileManager.default.fileExists(atPath: path) {
                access.knownHosts = try KnownHosts(contentsOf: path)
            } else if knownHosts != nil {
                throw ValidationError("cannot read known_hosts file \(path)")
            }
        }
        return access
    }

    /// The source's settings: this remote, a ref, a manifest subdirectory, the state directory.
    func sourceConfig(ref: SourceRef, path: String, stateDir: String) throws -> SourceConfig {
        var config = SourceConfig(access: try access())
        config.ref = ref
        config.path = path
        config.stateDirectory = stateDir
        return config
    }

    func readSecret() throws -> String? {
        if let file = passwordFile { return try readFile(file) }
        if let name = passwordEnv {
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw ValidationError("environment variable \(name) is not set")
            }
            return value
        }
        return nil
    }

    func readFile(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
    }
}
