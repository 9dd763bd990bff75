import BerthImage
import BerthModel
import BerthRuntime
import BerthTestSupport
import BerthYAML
import Foundation
import Synchronization
import Testing

/// Pulls from Debian's docker-registry on a loopback port, through the library the node uses.
@Suite(.serialized) struct RegistryPullTests {
    /// A scratch directory with an image layout (two tags) and a store, removed at the end.
    static func with(_ body: (String, ImageStore) async throws -> Void) async throws {
        let dir = "/tmp/berth-registry-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TestImages.make(dir + "/layout", tag: "v1", files: ["etc/motd": "one\n"], cmd: ["/bin/cat", "/etc/motd"])
        try TestImages.make(dir + "/layout", tag: "v2", files: ["etc/motd": "two\n"], cmd: ["/bin/cat", "/etc/motd"])
        try await body(dir, ImageStore(root: dir + "/store"))
    }

    static func client(_ registry: TestRegistry, name: String? = nil, credentials: Bool = true, configure: (inout RegistryOptions) -> Void = { _ in }) throws -> RegistryClient {
        var o = RegistryOptions()
        o.registries = try RegistriesConfig.decode(Array(registry.registriesYAML(for: name, credentials: credentials).utf8), path: "registries.yaml")
        configure(&o)
        return RegistryClient(options: o)
    }

    /// Options for the lab registry on `port`, plain HTTP.
    static func plainHTTP(_ port: Int) throws -> RegistryOptions {
        var o = RegistryOptions()
        o.registries = try RegistriesConfig.decode(Array("mirrors:\n  \"127.0.0.1:\(port)\":\n    endpoint: [\"http://127.0.0.1:\(port)\"]\n".utf8), path: "r.yaml")
        return o
    }

    static func motd(_ store: ImageStore, _ name: String) -> String? {
        store.rootfs(of: name).flatMap { try? String(contentsOfFile: $0 + "/etc/motd", encoding: .utf8) }
    }

    @Test func anonymousPullUnpacksOnceAndAnUnchangedTagCostsOneRequest() async throws {
        try await Self.with { dir, store in
            let registry = try TestRegistry(dir: dir + "/registry")
            defer { registry.stop() }
            try registry.push(dir + "/layout:v1", to: "team/app:v1")
            let client = try Self.client(registry)
            let ref = try ImageReference(parsing: "\(registry.host)/team/app:v1")
            let r = try await store.pull(ref, client: client)
            #expect(r.name == "\(registry.host)/team/app:v1")
            #expect(r.imageID.hasPrefix("\(registry.host)/team/app@sha256:"))
            #expect(Self.motd(store, ref.description) == "one\n")
            #expect(ImageRefs.defaults(root: store.root, name: ref.description)?.cmd == ["/bin/cat", "/etc/motd"])
            // Again: one HEAD request, nothing fetched or unpacked.
            let before = client.requests.load(ordering: .relaxed)
            let again = try await store.pull(ref, client: client)
            #expect(client.requests.load(ordering: .relaxed) - before == 1)
            #expect(again.digest == r.digest)
            // The tag moves: the new image comes, the old one goes from the store.
            try registry.push(dir + "/layout:v2", to: "team/app:v1")
            let moved = try await store.pull(ref, client: client)
            #expect(moved.digest != r.digest)
            #expect(Self.motd(store, ref.description) == "two\n")
            #expect(!FileManager.default.fileExists(atPath: store.root + "/unpacked/" + r.digest.dropFirst(7)))
            // Pinned by digest: no request at all once present.
            let pinned = try ImageReference(parsing: "\(registry.host)/team/app@\(moved.repoDigest!)")
            _ = try await store.pull(pinned, client: client)
            let n = client.requests.load(ordering: .relaxed)
            _ = try await store.pull(pinned, client: client)
            #expect(client.requests.load(ordering: .relaxed) == n)
            // Nothing half-made is left behind.
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: store.root + "/blobs/sha256").filter { $0.contains(".") }
            #expect(leftovers.isEmpty)
            await client.shutdown()
        }
    }

    @Test func dockerSchema2AndAnIndexOfTwoPlatforms() async throws {
        try await Self.with { dir, store in
            let registry = try TestRegistry(dir: dir + "/registry")
            defer { registry.stop() }
            try registry.push(dir + "/layout:v1", to: "docker/app:v1", format: "v2s2")
            let client = try Self.client(registry)
            let docker = try await store.pull(try ImageReference(parsing: "\(registry.host)/docker/app:v1"), client: client)
            #expect(Self.motd(store, docker.name) == "one\n")
            let manifest = try String(contentsOfFile: store.root + "/blobs/sha256/" + docker.digest.dropFirst(7), encoding: .utf8)
            #expect(manifest.contains("application/vnd.docker.distribution.manifest.v2+json"))

            // An index: this node's platform ("two") beside arm64 ("one").
            try TestImages.make(dir + "/multi", tag: "arm", files: ["etc/motd": "arm\n"], arch: "arm64")
            try TestImages.make(dir + "/multi", tag: "amd", files: ["etc/motd": "amd\n"], arch: "amd64")
            try TestLayouts.index(dir + "/multi", tag: "both", of: [("arm", "arm64"), ("amd", "amd64")])
            try registry.push(dir + "/multi:both", to: "multi/app:both", all: true)
            let multi = try await store.pull(try ImageReference(parsing: "\(registry.host)/multi/app:both"), client: client)
            #expect(Self.motd(store, multi.name) == "amd\n")
            #expect(multi.repoDigest != multi.digest, "the index digest names the image, the platform's manifest is unpacked")
            // An index without this platform: the error lists what it has.
            try TestLayouts.index(dir + "/multi", tag: "armonly", of: [("arm", "arm64")])
            try registry.push(dir + "/multi:armonly", to: "multi/app:armonly", all: true)
            await #expect { try await store.pull(try ImageReference(parsing: "\(registry.host)/multi/app:armonly"), client: client) } throws: {
                "\($0)".contains("no image for linux/amd64 in its index (it has linux/arm64)")
            }
            await client.shutdown()
        }
    }

    @Test func basicAndTokenAuthentication() async throws {
        try await Self.with { dir, store in
            for auth in [TestRegistry.Auth.basic(user: "alice", password: "s3cret"), .token(user: "bob", password: "hunter2")] {
                let registry = try TestRegistry(dir: dir + "/registry-\(UUID().uuidString.prefix(4))", auth: auth)
                defer { registry.stop() }
                try registry.push(dir + "/layout:v1", to: "private/app:v1")
                let ref = try ImageReference(parsing: "\(registry.host)/private/app:v1")
                // Without credentials: the registry's 401, and nothing in the store.
                let anonymous = try Self.client(registry, credentials: false)
                await #expect { try await store.pull(ref, client: anonymous) } throws: { "\($0)".contains("401 unauthorized") }
                #expect(store.list().isEmpty)
                // Wrong credentials from a pull secret: refused, and the password is in no message.
                let wrong = ["\(registry.host)": RegistryCredential(username: registry.credentials!.user, password: "wrong-password")]
                do {
                    _ = try await store.pull(ref, client: anonymous, credentials: wrong)
                    Issue.record("a wrong password pulled")
                } catch { #expect(!"\(error)".contains("wrong-password")) }
                await anonymous.shutdown()
                // The node's credentials.
                let client = try Self.client(registry)
                let r = try await store.pull(ref, client: client)
                #expect(Self.motd(store, r.name) == "one\n")
                // A cached token (or Basic) answers the next check at once: one request.
                let before = client.requests.load(ordering: .relaxed)
                _ = try await store.pull(ref, client: client)
                #expect(client.requests.load(ordering: .relaxed) - before == 1)
                if case .token = auth {
                    // An expired token is not sent: the check is challenged and a new token fetched (3 requests).
                    let short = try TestRegistry(dir: dir + "/registry-short", auth: auth, tokenExpiry: 6)
                    defer { short.stop() }
                    try short.push(dir + "/layout:v1", to: "private/app:v1")
                    let shortRef = try ImageReference(parsing: "\(short.host)/private/app:v1")
                    let c = try Self.client(short)
                    _ = try await store.pull(shortRef, client: c)
                    let n = c.requests.load(ordering: .relaxed)
                    _ = try await store.pull(shortRef, client: c)
                    #expect(c.requests.load(ordering: .relaxed) - n == 1, "within its 6 s (kept 1 s): the cached token")
                    try await Task.sleep(nanoseconds: 1_300_000_000)
                    let m = c.requests.load(ordering: .relaxed)
                    _ = try await store.pull(shortRef, client: c)
                    #expect(c.requests.load(ordering: .relaxed) - m == 3, "expired: challenge, token, check")
                    try store.remove(shortRef.description)
                    await c.shutdown()
                }
                try store.remove(r.name)
                await client.shutdown()
            }
        }
    }

    @Test func tlsWithTheRegistrysOwnCA() async throws {
        try await Self.with { dir, store in
            let registry = try TestRegistry(dir: dir + "/registry", auth: .basic(user: "u", password: "p"), tls: true)
            defer { registry.stop() }
            try registry.push(dir + "/layout:v1", to: "tls/app:v1")
            let ref = try ImageReference(parsing: "\(registry.host)/tls/app:v1")
            // Without the CA, the certificate is not trusted.
            let untrusted = RegistryClient(options: RegistryOptions())
            await #expect { try await store.pull(ref, client: untrusted) } throws: { "\($0)".contains("CERTIFICATE_VERIFY_FAILED") }
            await untrusted.shutdown()
            let client = try Self.client(registry)
            #expect(Self.motd(store, try await store.pull(ref, client: client).name) == "one\n")
            await client.shutdown()
        }
    }

    @Test func aMirrorServesDockerHubNamesAndTheOriginIsTheFallback() async throws {
        try await Self.with { dir, store in
            let registry = try TestRegistry(dir: dir + "/registry")
            defer { registry.stop() }
            try registry.push(dir + "/layout:v1", to: "library/redis:7")
            // Tests reach nothing beyond loopback: the origin (registry-1.docker.io) is left out.
            let client = try Self.client(registry, name: "docker.io") { $0.defaultEndpoints = false }
            #expect(client.endpoints(for: "docker.io").map(\.base) == ["http://\(registry.host)"])
            #expect(try Self.client(registry, name: "docker.io").endpoints(for: "docker.io").map(\.base) == ["http://\(registry.host)", "https://registry-1.docker.io"])
            let r = try await store.pull(try ImageReference(parsing: "redis:7"), client: client)
            #expect(r.name == "docker.io/library/redis:7")
            #expect(r.imageID.hasPrefix("docker.io/library/redis@sha256:"))
            #expect(ImageRefs.rootfs(root: store.root, name: "redis:7") != nil)
            await #expect { try await store.pull(try ImageReference(parsing: "redis:8"), client: client) } throws: {
                "\($0)".contains("mirror http://\(registry.host)") && "\($0)".contains("manifest unknown")
            }
            // A first mirror that is down: the next one serves, and a registry nobody serves says so.
            let down = TestServers.freePort()
            var o = RegistryOptions()
            o.defaultEndpoints = false
            o.registries = try RegistriesConfig.decode(Array("""
                mirrors:
                  docker.io:
                    endpoint: ["http://127.0.0.1:\(down)", "http://\(registry.host)"]
                """.utf8), path: "r.yaml")
            let fallback = RegistryClient(options: o)
            try store.remove("redis:7")
            #expect(try await store.pull(try ImageReference(parsing: "redis:7"), client: fallback).name == "docker.io/library/redis:7")
            await #expect { try await store.pull(try ImageReference(parsing: "127.0.0.1:\(down)/x:1"), client: fallback) } throws: {
                "\($0)".contains("https://127.0.0.1:\(down) is unreachable")
            }
            await fallback.shutdown()
            await client.shutdown()
        }
    }

    @Test func hostileRegistriesLeaveNothingInTheStore() async throws {
        try await Self.with { dir, store in
            let port = TestServers.freePort()
            let server = try TestRegistry.hostile(port: port)
            defer { server.stop() }
            var o = try Self.plainHTTP(port)
            o.maxLayerBytes = 16 << 20
            o.stallTimeout = 2
            let client = RegistryClient(options: o)
            let cases = [
                ("wrong-digest", "digest mismatch"),
                ("huge-manifest", "more than the limit of 4194304 bytes"),
                ("gzip-bomb", "decompresses to more than 16777216 bytes"),
                ("dotdot", "'..' is not allowed"),
                ("redirect-loop", "more than 5 redirects"),
                ("stall", "the transfer failed after 524288 of 1048576 bytes"),
            ]
            for (repo, message) in cases {
                let started = Date()
                await #expect { try await store.pull(try ImageReference(parsing: "127.0.0.1:\(port)/\(repo):1"), client: client) } throws: {
                    "\($0)".contains(message)
                }
                #expect(Date().timeIntervalSince(started) < 20, "\(repo) took too long")
                #expect(store.list().isEmpty)
                let partial = (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/unpacked")) ?? []
                #expect(partial.isEmpty, "\(repo) left \(partial)")
                let blobs = (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/blobs/sha256")) ?? []
                #expect(!blobs.contains { $0.contains(".") }, "\(repo) left \(blobs)")
            }
            #expect(!FileManager.default.fileExists(atPath: dir + "/escaped.txt") && !FileManager.default.fileExists(atPath: "/tmp/escaped.txt"))
            // What a crash mid-pull would leave goes when the node starts again (here: made to look old).
            try FileManager.default.createDirectory(atPath: store.root + "/unpacked/sha256x.partial-1/rootfs", withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: store.root + "/blobs/sha256/abc.partial-2", contents: Data([1]))
            store.removeLeftovers(olderThan: 3600)
            #expect(FileManager.default.fileExists(atPath: store.root + "/blobs/sha256/abc.partial-2"), "a recent one may be a pull under way")
            store.removeLeftovers(olderThan: -1)
            #expect(!FileManager.default.fileExists(atPath: store.root + "/blobs/sha256/abc.partial-2"))
            #expect(!FileManager.default.fileExists(atPath: store.root + "/unpacked/sha256x.partial-1"))
            // Credentials asked for by the registry are not sent on to the host a blob is redirected to.
            var withCredentials = o
            withCredentials.registries.configs["127.0.0.1:\(port)"] = {
                var c = RegistriesConfig.HostConfig()
                c.credential = RegistryCredential(username: "lab", password: "lab-password")
                return c
            }()
            let careful = RegistryClient(options: withCredentials)
            let away = try await store.pull(try ImageReference(parsing: "127.0.0.1:\(port)/redirect-away:1"), client: careful)
            #expect(store.rootfs(of: away.name) != nil)
            let seen = try TestCommand.output("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(port)/seen"])
            #expect(seen.contains("\"credentials_elsewhere\": 0") && !seen.contains("\"elsewhere\": 0"), "\(seen)")
            await careful.shutdown()
            // The same server's good image still pulls: one bad image disturbs nothing else.
            let good = try await store.pull(try ImageReference(parsing: "127.0.0.1:\(port)/good:1"), client: client)
            #expect(store.rootfs(of: good.name).map { FileManager.default.fileExists(atPath: $0 + "/hello.txt") } == true)
            await client.shutdown()
        }
    }

    /// A pull of several seconds reports its progress, and the node's log hears of it (every 5 s) and of its end.
    @Test func longPullsReportProgress() async throws {
        try await Self.with { dir, store in
            let port = TestServers.freePort()
            let server = try TestRegistry.hostile(port: port)
            defer { server.stop() }
            let o = try Self.plainHTTP(port)
            let lines = Mutex<[String]>([])
            let puller = ImagePuller(store: store, options: o, log: { line in lines.withLock { $0.append(line) } })
            let ref = try ImageReference(parsing: "127.0.0.1:\(port)/slow:1")
            let since = Date().timeIntervalSince1970
            var seen: [PullProgress] = []
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                let status = puller.request(ref, credentials: [:], since: since)
                if case .pulling(_, let p?) = status, seen.last != p { seen.append(p) }
                if case .ready = status { break }
                if case .failed(let why) = status { Issue.record("\(why)"); break }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            #expect(store.rootfs(of: ref.description) != nil)
            #expect(seen.count > 5)
            #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.bytes <= $1.bytes })
            #expect(seen.contains { $0.bytes > 0 && $0.bytes < $0.total })
            let log = lines.withLock { $0 }
            #expect(log.contains { $0.hasPrefix("pulling \(ref): ") && $0.contains(" MiB, 0 of 1 layers") }, "\(log)")
            #expect(log.contains { $0.hasPrefix("pulled \(ref) (127.0.0.1:\(port)/slow@sha256:") }, "\(log)")
            await puller.shutdown()
        }
    }

    @Test func garbageCollectionKeepsImagesInUse() async throws {
        try await Self.with { dir, store in
            let registry = try TestRegistry(dir: dir + "/registry")
            defer { registry.stop() }
            try registry.push(dir + "/layout:v1", to: "gc/a:1")
            try registry.push(dir + "/layout:v2", to: "gc/b:1")
            let client = try Self.client(registry)
            let a = try await store.pull(try ImageReference(parsing: "\(registry.host)/gc/a:1"), client: client)
            let b = try await store.pull(try ImageReference(parsing: "\(registry.host)/gc/b:1"), client: client)
            // Below the high mark nothing goes.
            #expect(store.collectGarbage(keeping: [], high: 100, low: 100).isEmpty)
            // Over it (a mark of 0%), every unused image goes, the used one stays with all its blobs.
            let removed = store.collectGarbage(keeping: [a.name], high: 0, low: 0)
            #expect(removed.map(\.name) == [b.name])
            #expect(store.rootfs(of: a.name) != nil && store.rootfs(of: b.name) == nil)
            #expect(Self.motd(store, a.name) == "one\n")
            await client.shutdown()
        }
    }
}
