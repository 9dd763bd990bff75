import BerthGit
import BerthTestSupport
import Foundation
import Testing

/// Fetch, ls-remote and push over real servers: git daemon, git http-backend behind lighttpd with basic
/// auth, and sshd with host key checking.
@Suite(.serialized) struct TransportTests {
    static let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"

    @Test func gitDaemonFetchIsIncrementalAndPushesAreNotForced() throws {
        try GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            let first = try ws.commit(["a.yaml": TransportTests.manifest], in: work, message: "one")
            let daemon = try ws.gitDaemon()
            defer { daemon.stop() }
            let access = RemoteAccess(url: "git://127.0.0.1:\(daemon.port)/app.git")
            let mirror = try Repository.openOrInitBare(at: ws.path("mirror.git"))
            #expect(try mirror.listRemote(access)["refs/heads/main"]?.hex == first)
            let stats = try mirror.fetch(access, refspecs: ["+refs/heads/main:refs/remotes/origin/main"])
            #expect(stats.receivedObjects == 3)
            #expect(mirror.commit(ofReference: "refs/remotes/origin/main")?.hex == first)
            #expect(try mirror.fetch(access, refspecs: ["+refs/heads/main:refs/remotes/origin/main"]).receivedObjects == 0)

            // A push of a new branch lands; a non-fast-forward push is rejected, not forced.
            let tree = try mirror.writeTree(["x": [1]])
            let c1 = try mirror.createCommit(tree: tree, parents: [], message: "status", author: .berth, committer: .berth)
            try mirror.setReference("refs/heads/berth/status", to: c1, message: "test")
            #expect(try mirror.push(access, refspecs: ["refs/heads/berth/status:refs/heads/berth/status"]).isEmpty)
            let c2 = try mirror.createCommit(tree: try mirror.writeTree(["y": [2]]), parents: [], message: "unrelated",
                                             author: .berth, committer: .berth)
            try mirror.setReference("refs/heads/berth/status", to: c2, message: "test")
            let rejected = try mirror.push(access, refspecs: ["refs/heads/berth/status:refs/heads/berth/status"])
            #expect(rejected["refs/heads/berth/status"] != nil)
            #expect(try mirror.listRemote(access)["refs/heads/berth/status"] == c1)
        }
    }

    @Test func httpBasicAuth() throws {
        try GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            let head = try ws.commit(["a.yaml": TransportTests.manifest], in: work, message: "one")
            let server = try ws.httpBackend(user: "deploy", password: "s3cret")
            defer { server.stop() }
            let url = "http://127.0.0.1:\(server.port)/git/app.git"
            let mirror = try Repository.openOrInitBare(at: ws.path("mirror.git"))
            let good = RemoteAccess(url: url, credentials: .userPassword(username: "deploy", password: "s3cret"))
            try mirror.fetch(good, refspecs: ["+refs/heads/main:refs/remotes/origin/main"])
            #expect(mirror.commit(ofReference: "refs/remotes/origin/main")?.hex == head)

            let wrong = RemoteAccess(url: url, credentials: .userPassword(username: "deploy", password: "wrong"))
            let error = #expect(throws: GitError.self) { try mirror.listRemote(wrong) }
            #expect(error?.description.contains("authentication failed for \(url): the server refused the username or password") == true)
            #expect(error?.description.contains("wrong") == false)

            let none = RemoteAccess(url: url)
            let missing = #expect(throws: GitError.self) { try mirror.listRemote(none) }
            #expect(missing?.description.contains("no credentials are configured") == true)

            // Pushing over HTTP as the authenticated user works too.
            let c = try mirror.createCommit(tree: try mirror.writeTree(["s": [1]]), parents: [], message: "s", author: .berth, committer: .berth)
            try mirror.setReference("refs/heads/berth/status", to: c, message: "test")
            #expect(try mirror.push(good, refspecs: ["refs/heads/berth/status:refs/heads/berth/status"]).isEmpty)
        }
    }

    @Test func sshHostKeysAreChecked() throws {
        try GitWorkspace.with { ws in
            let (bare, work) = try ws.makeRepository("app")
            let head = try ws.commit(["a.yaml": TransportTests.manifest], in: work, message: "one")
            let ssh = try ws.sshServer()
            defer { ssh.process.stop() }
            let url = "ssh://root@127.0.0.1:\(ssh.process.port)\(bare)"
            let key = Credentials.sshKey(username: nil, privateKeyPath: ssh.userKey, publicKeyPath: ssh.userKey + ".pub", passphrase: nil)
            let mirror = try Repository.openOrInitBare(at: ws.path("mirror.git"))

            let unknown = #expect(throws: GitError.self) {
                try mirror.listRemote(RemoteAccess(url: url, credentials: key, knownHosts: KnownHosts(text: "")))
            }
            #expect(unknown?.description.contains("host key of [127.0.0.1]:\(ssh.process.port) is not in known_hosts") == true)

            let otherKey = "[127.0.0.1]:\(ssh.process.port) ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="
            let changed = #expect(throws: GitError.self) {
                try mirror.listRemote(RemoteAccess(url: url, credentials: key, knownHosts: KnownHosts(text: otherKey)))
            }
            #expect(changed?.description.contains("does not match known_hosts") == true)

            let trusted = RemoteAccess(url: url, credentials: key, knownHosts: KnownHosts(text: ssh.knownHostsLine + "\n"))
            try mirror.fetch(trusted, refspecs: ["+refs/heads/main:refs/remotes/origin/main"])
            #expect(mirror.commit(ofReference: "refs/remotes/origin/main")?.hex == head)

            let skip = RemoteAccess(url: url, credentials: key, insecureSkipHostKeyCheck: true)
            #expect(try mirror.listRemote(skip)["refs/heads/main"]?.hex == head)
        }
    }
}

@Suite struct KnownHostsTests {
    @Test func hashedNamesAndPatterns() {
        let key: [UInt8] = [1, 2, 3]
        // `ssh-keygen -H` form of "hidden.internal" with salt 0x00...0x13, computed by Python's hmac module.
        let hashed = "OHnmm88cw8knB0jdBhWCvESbTwM="
        let b64 = Data(key).base64EncodedString()
        let text = """
        # comment
        *.example.org,!bad.example.org ssh-ed25519 \(b64)
        [10.0.0.1]:2222 ssh-ed25519 \(b64)
        |1|AAECAwQFBgcICQoLDA0ODxAREhM=|\(hashed) ssh-ed25519 \(b64)
        @revoked revoked.example.org ssh-ed25519 \(b64)
        """
        let hosts = KnownHosts(text: text)
        #expect(hosts.verdict(host: "git.example.org", port: 22, key: key) == .trusted)
        #expect(hosts.verdict(host: "bad.example.org", port: 22, key: key) == .unknown)
        #expect(hosts.verdict(host: "git.example.org", port: 22, key: [9]) == .changed)
        #expect(hosts.verdict(host: "git.example.org", port: 2222, key: key) == .unknown)
        #expect(hosts.verdict(host: "revoked.example.org", port: 22, key: key) == .revoked)
        #expect(hosts.verdict(host: "10.0.0.1", port: 2222, key: key) == .trusted)
        #expect(hosts.verdict(host: "10.0.0.2", port: 2222, key: key) == .unknown)
        #expect(hosts.verdict(host: "hidden.internal", port: 22, key: key) == .trusted)
    }
}
