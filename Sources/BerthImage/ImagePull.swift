import AsyncHTTPClient
import BerthLinux
import BerthModel
import BerthRuntime
import BerthYAML
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// How far a pull has come: compressed bytes received and layers unpacked.
public struct PullProgress: Sendable, Equatable {
    public var bytes = 0
    public var total = 0
    public var layersDone = 0
    public var layers = 0
    /// Where the time went: blobs in flight (transfer and digest, wall clock), and unpacking split into
    /// gunzip and tar entries written (summed over layers).
    public var transferSeconds = 0.0
    public var gunzipSeconds = 0.0
    public var writeSeconds = 0.0
    public init() {}

    public var description: String {
        let mib = { (n: Int) in String(format: "%.1f", Double(n) / 1_048_576) }
        return "\(mib(bytes)) of \(mib(total)) MiB, \(layersDone) of \(layers) layers"
    }
}

extension ImageStore {
    static let indexTypes: Set<String> = ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]
    static let manifestAccept = [
        "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
    ]

    /// This node's platform as an image index names it.
    static let platform: (architecture: String, variant: String?) = {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return ("amd64", nil)
        case "aarch64", "arm64": return ("arm64", "v8")
        case "armv7l": return ("arm", "v7")
        case "ppc64le": return ("ppc64le", nil)
        case "s390x": return ("s390x", nil)
        case "riscv64": return ("riscv64", nil)
        default: return (machine, nil)
        }
    }()

    /// Pulls a reference into the store: mirrors first, then the registry itself. An image already pulled
    /// costs one manifest request when its tag has not moved, none when a digest pins it.
    public func pull(_ ref: ImageReference, client: RegistryClient, credentials: [String: RegistryCredential] = [:],
                     progress: (@Sendable (PullProgress) -> Void)? = nil) async throws -> ImageRecord {
        let name = ref.description
        let existing = record(name)
        if ref.digest != nil, let existing, rootfs(of: name) != nil {
            touch(name)
            return existing
        }
        var failures: [String] = []
        for endpoint in client.endpoints(for: ref.registry) {
            let target = RegistryClient.Target(endpoint: endpoint, repository: ref.repository, credential: client.credential(for: endpoint, pod: credentials))
            do {
                return try await pull(ref, from: target, client: client, existing: existing, progress: progress)
            } catch {
                failures.append(endpoint.isMirror ? "mirror \(endpoint.base): \(error)" : "\(error)")
            }
        }
        throw PullError(failures.joined(separator: "; then "))
    }

    private func pull(_ ref: ImageReference, from target: RegistryClient.Target, client: RegistryClient, existing: ImageRecord?,
                      progress: (@Sendable (PullProgress) -> Void)?) async throws -> ImageRecord {
        let name = ref.description
        let options = client.options
        if let existing, let known = existing.repoDigest, rootfs(of: name) != nil {
            let head = try await client.send(target, "\(ref.repository)/manifests/\(ref.reference)", method: .HEAD, accept: ImageStore.manifestAccept)
            let digest = head.headers.first(name: "Docker-Content-Digest")
            _ = try? await head.body.collect(upTo: 1 << 16)
            if head.status.code == 200 && digest == known {
                touch(name)
                return existing
            }
        }
        let top = try await manifest(target, ref.reference, expect: ref.digest, size: nil, client: client)
        var chosen = top
        if ImageStore.indexTypes.contains(top.mediaType) {
            let (digest, size) = try choosePlatform(top, name)
            chosen = try await manifest(target, digest, expect: digest, size: size, client: client)
            guard !ImageStore.indexTypes.contains(chosen.mediaType) else { throw PullError("\(name): an index inside an index is not supported") }
        }
        let manifest: ImageManifest
        do { manifest = try ImageManifest(Data(chosen.bytes), digest: chosen.digest, maxLayers: options.maxLayers) } catch { throw PullError("\(name): \(error)") }
        let compressed = manifest.layers.reduce(manifest.configSize) { $0 + $1.size }
        guard compressed <= options.maxImageBytes else { throw PullError("\(name): its layers total \(compressed) bytes, more than the limit of \(options.maxImageBytes)") }
        guard manifest.configSize <= options.maxConfigBytes else { throw PullError("\(name): its config is \(manifest.configSize) bytes, more than the limit of \(options.maxConfigBytes)") }

        var state = PullProgress()
        state.total = compressed
        state.layers = manifest.layers.count
        let tracker = ProgressTracker(state, report: progress)
        try await fetchBlob(target, manifest.configDigest, size: manifest.configSize, client: client, tracker: tracker)

        let unpacked = Files.exists("\(root)/unpacked/\(manifest.digest.dropFirst(7))/rootfs")
        let staging = unpacked ? nil : try beginUnpack(manifest)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let (finished, announce) = AsyncStream.makeStream(of: Int.self)
                group.addTask {
                    defer { announce.finish() }
                    try await withThrowingTaskGroup(of: Int.self) { downloads in
                        var next = 0
                        func add() {
                            let i = next
                            next += 1
                            downloads.addTask {
                                try await fetchBlob(target, manifest.layers[i].digest, size: manifest.layers[i].size, client: client, tracker: tracker)
                                return i
                            }
                        }
                        let started = ContinuousClock.now
                        while next < min(options.concurrentDownloads, manifest.layers.count) { add() }
                        while let i = try await downloads.next() {
                            announce.yield(i)
                            if next < manifest.layers.count { add() }
                        }
                        tracker.timed { $0.transferSeconds = (ContinuousClock.now - started).seconds }
                    }
                }
                group.addTask {
                    // Layers apply in order, each as soon as it and those below it are in; the next layer
                    // inflates on another core while this one's files are written.
                    var ready = Set<Int>(), applied = 0, expanded = 0
                    var ahead: (index: Int, task: Task<InflatedLayer, any Error>)?
                    func inflate(_ index: Int, _ budget: Int) -> Task<InflatedLayer, any Error> {
                        let limit = min(options.maxLayerBytes, budget)
                        return Task { try await ImageStore.blocking { try inflateLayer(manifest, index, limit: limit) } }
                    }
                    for await i in finished {
                        ready.insert(i)
                        while ready.contains(applied) {
                            if let staging {
                                let index = applied
                                let current = ahead?.index == index ? ahead!.task : inflate(index, options.maxImageBytes - expanded)
                                let layer = try await current.value
                                expanded += layer.tar.count
                                guard expanded <= options.maxImageBytes else {
                                    throw PullError("\(name): its layers decompress to more than \(options.maxImageBytes) bytes")
                                }
                                ahead = ready.contains(index + 1) ? (index + 1, inflate(index + 1, options.maxImageBytes - expanded)) : nil
                                let write = try await ImageStore.blocking { try writeLayer(manifest, index, layer, staging: staging) }
                                tracker.timed { $0.gunzipSeconds += layer.seconds; $0.writeSeconds += write }
                            }
                            applied += 1
                            tracker.layerDone()
                        }
                    }
                    ahead?.task.cancel()
                    if applied < manifest.layers.count { try Task.checkCancellation() }
                }
                try await group.waitForAll()
            }
            if let staging { try finishUnpack(manifest, staging: staging) }
        } catch {
            if let staging { try? FileManager.default.removeItem(atPath: staging) }
            if error is PullError { throw error }
            throw PullError("\(name): \(error)")
        }
        try putBlob(manifest.digest, chosen.bytes)
        if top.digest != chosen.digest { try putBlob(top.digest, top.bytes) }
        return try tagImage(name, manifest: manifest, manifestBytes: chosen.bytes.count, repoDigest: top.digest)
    }

    struct FetchedManifest {
        var bytes: [UInt8]
        var mediaType: String
        var digest: String
    }

    /// A manifest or index by tag or digest, its size bounded and its digest checked.
    private func manifest(_ target: RegistryClient.Target, _ reference: String, expect: String?, size: Int?, client: RegistryClient) async throws -> FetchedManifest {
        let what = "manifest \(target.endpoint.host)/\(target.repository):\(reference)"
        let response = try await client.send(target, "\(target.repository)/manifests/\(reference)", accept: ImageStore.manifestAccept)
        guard response.status.code == 200 else { throw await RegistryClient.failure(response, what) }
        let limit = client.options.maxManifestBytes
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
            throw PullError("\(what) is \(length) bytes, more than the limit of \(limit)")
        }
        let body: ByteBuffer
        do { body = try await response.body.collect(upTo: limit) } catch {
            throw PullError(error is NIOTooManyBytesError ? "\(what) is more than the limit of \(limit) bytes" : "\(what): \(RegistryClient.describe(error))")
        }
        let bytes = Array(buffer: body)
        let digest = "sha256:" + ImageStore.sha256(bytes)
        if let expect, digest != expect { throw PullError("\(what): digest mismatch (the bytes received hash to \(digest))") }
        if let size, bytes.count != size { throw PullError("\(what) is \(bytes.count) bytes, its descriptor says \(size)") }
        if let header = response.headers.first(name: "Docker-Content-Digest"), header.hasPrefix("sha256:"), header != digest {
            throw PullError("\(what): digest mismatch (the registry says \(header), the bytes hash to \(digest))")
        }
        let json = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        guard let json else { throw PullError("\(what) is not a JSON object") }
        var media = json["mediaType"] as? String ?? ""
        if media.isEmpty {
            media = response.headers.first(name: "Content-Type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        }
        if media.isEmpty { media = json["manifests"] != nil ? "application/vnd.oci.image.index.v1+json" : "application/vnd.oci.image.manifest.v1+json" }
        if media.contains("distribution.manifest.v1") || (json["schemaVersion"] as? Int) == 1 {
            throw PullError("\(what): Docker schema 1 manifests are not supported; push the image again with a current client")
        }
        return FetchedManifest(bytes: bytes, mediaType: media, digest: digest)
    }

    /// The entry of an index for linux and this node's architecture (and variant, when one matches).
    private func choosePlatform(_ index: FetchedManifest, _ name: String) throws -> (String, Int) {
        guard let json = try? JSONSerialization.jsonObject(with: Data(index.bytes)) as? [String: Any],
              let entries = json["manifests"] as? [[String: Any]] else { throw PullError("\(name): an index without manifests") }
        let (arch, variant) = ImageStore.platform
        let linux = entries.filter { ($0["platform"] as? [String: Any])?["os"] as? String == "linux" && ($0["platform"] as? [String: Any])?["architecture"] as? String == arch }
        let best = linux.first { ($0["platform"] as? [String: Any])?["variant"] as? String == variant } ?? linux.first
        guard let best else {
            let offered = entries.compactMap { e -> String? in
                guard let p = e["platform"] as? [String: Any] else { return nil }
                return [p["os"] as? String, p["architecture"] as? String, p["variant"] as? String].compactMap { $0 }.joined(separator: "/")
            }
            throw PullError("\(name): no image for linux/\(arch) in its index (it has \(offered.joined(separator: ", ")))")
        }
        do {
            return try ImageStore.descriptor(best, "\(name): index entry for linux/\(arch)")
        } catch { throw PullError("\(error)") }
    }

    /// Streams a blob to the store, hashing as it comes; the blob appears under its digest only once its
    /// size and digest are right. A blob already there is not fetched again.
    private func fetchBlob(_ target: RegistryClient.Target, _ digest: String, size: Int, client: RegistryClient, tracker: ProgressTracker) async throws {
        let path = blobPath(digest)
        if Files.exists(path) {
            tracker.add(size)
            return
        }
        let what = "blob \(digest)"
        try Files.makeDirectories(root + "/blobs/sha256", mode: 0o700)
        let response = try await client.send(target, "\(target.repository)/blobs/\(digest)")
        guard response.status.code == 200 else { throw await RegistryClient.failure(response, what) }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length != size {
            throw PullError("\(what): the registry sends \(length) bytes, the manifest says \(size)")
        }
        let temp = path + ".partial-\(UInt64.random(in: 0..<UInt64.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PullError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var hasher = SHA256()
        var received = 0
        do {
            do {
                for try await chunk in response.body {
                    received += chunk.readableBytes
                    guard received <= size else { throw PullError("\(what) is longer than the \(size) bytes its descriptor says") }
                    try chunk.withUnsafeReadableBytes { buffer in
                        hasher.update(bufferPointer: buffer)
                        var offset = 0
                        while offset < buffer.count {
                            let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                            if n < 0 { if errno == EINTR { continue }; throw PullError("cannot write \(temp): \(String(cString: strerror(errno)))") }
                            offset += n
                        }
                    }
                    tracker.add(chunk.readableBytes)
                }
            } catch let e as PullError { throw e } catch {
                throw PullError("\(what): the transfer failed after \(received) of \(size) bytes: \(RegistryClient.describe(error))")
            }
            guard received == size else { throw PullError("\(what): \(received) bytes received, \(size) expected") }
            let got = "sha256:" + ImageStore.hex(hasher.finalize())
            guard got == digest else { throw PullError("\(what): digest mismatch (the bytes received hash to \(got))") }
            close(fd)
            guard rename(temp, path) == 0 else { throw PullError("cannot store \(what): \(String(cString: strerror(errno)))") }
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
    }

    /// Runs blocking work (unpacking) off the concurrency pool's few threads.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            DispatchQueue.global().async { c.resume(with: Result { try body() }) }
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Counts bytes and layers from concurrent downloads and passes the sum on.
final class ProgressTracker: Sendable {
    private let state: Mutex<PullProgress>
    private let report: (@Sendable (PullProgress) -> Void)?

    init(_ initial: PullProgress, report: (@Sendable (PullProgress) -> Void)?) {
        state = Mutex(initial)
        self.report = report
    }

    func add(_ bytes: Int) { update { $0.bytes += bytes } }
    func timed(_ change: (inout PullProgress) -> Void) { update(change) }
    func layerDone() { update { $0.layersDone += 1 } }

    private func update(_ change: (inout PullProgress) -> Void) {
        let now = state.withLock { s in
            change(&s)
            return s
        }
        report?(now)
    }
}
