import BerthLinux
import BerthRuntime
import Crypto
import Foundation

/// A content-addressed image store under the state directory: verified blobs in `blobs/sha256/`, each
/// manifest unpacked once into `unpacked/<digest>/rootfs`, names in `refs/`.
public struct ImageStore: Sendable {
    public let root: String
    /// Most bytes a layer may decompress to.
    public var maxLayerBytes = 4 << 30

    public init(root: String) { self.root = root }

    static let layerTypes: [String: Bool] = [  // media type → gzip
        "application/vnd.oci.image.layer.v1.tar": false,
        "application/vnd.oci.image.layer.v1.tar+gzip": true,
        "application/vnd.docker.image.rootfs.diff.tar.gzip": true,
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": true,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": true,
    ]

    func json(_ data: Data, _ what: String) throws -> [String: Any] {
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw RuntimeError("\(what) is not a JSON object") }
        return o
    }

    static func sha256(_ bytes: some DataProtocol) -> String { hex(SHA256.hash(data: bytes)) }

    static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for b in digest { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A descriptor's digest and size, checked for form.
    static func descriptor(_ d: [String: Any], _ what: String) throws -> (digest: String, size: Int) {
        guard let digest = d["digest"] as? String, digest.hasPrefix("sha256:"), let size = d["size"] as? Int, size >= 0 else {
            throw RuntimeError("\(what): descriptor without a sha256 digest and size")
        }
        let hex = digest.dropFirst(7)
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { throw RuntimeError("\(what): malformed digest \(digest)") }
        return (digest, size)
    }

    func blobPath(_ digest: String) -> String { "\(root)/blobs/sha256/\(digest.dropFirst(7))" }

    /// Reads a blob from a layout and checks its digest and size.
    func blob(_ layout: String, _ d: [String: Any], _ what: String) throws -> (digest: String, bytes: [UInt8]) {
        let (digest, size) = try ImageStore.descriptor(d, what)
        guard let data = FileManager.default.contents(atPath: "\(layout)/blobs/sha256/\(digest.dropFirst(7))") else {
            throw RuntimeError("\(what): blob \(digest) is missing")
        }
        guard data.count == size else { throw RuntimeError("\(what): blob \(digest) is \(data.count) bytes, not \(size)") }
        guard ImageStore.sha256(data) == digest.dropFirst(7) else { throw RuntimeError("\(what): blob \(digest) does not match its digest") }
        return (digest, [UInt8](data))
    }

    /// Writes verified bytes as a blob (once; a blob already there is the same bytes).
    func putBlob(_ digest: String, _ bytes: [UInt8]) throws {
        let path = blobPath(digest)
        if Files.exists(path) { return }
        try Files.makeDirectories(root + "/blobs/sha256", mode: 0o700)
        let temp = path + ".tmp-\(UInt64.random(in: 0..<UInt64.max))"
        try Files.write(bytes, to: temp, mode: 0o600)
        guard rename(temp, path) == 0 else { unlink(temp); throw RuntimeError("cannot store blob \(digest)") }
    }

    /// Imports an OCI image layout directory, or an `oci-archive` tar of one; `tag` picks (and names) the manifest.
    @discardableResult
    public func importImage(_ path: String, tag: String?) throws -> ImageRecord {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw RuntimeError("\(path) does not exist") }
        if isDir.boolValue { return try importLayout(path, tag: tag) }
        // An archive: unpacked with the same care as a layer, into a directory that goes afterwards.
        guard let data = FileManager.default.contents(atPath: path) else { throw RuntimeError("cannot read \(path)") }
        let temp = root + "/tmp-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0x1f, 0x8b]) { bytes = try Tar.gunzip(bytes, limit: maxLayerBytes, what: path) }
        try LayerApplier(rootfs: temp).apply(try Tar.entries(bytes, what: path), layer: path)
        return try importLayout(temp, tag: tag)
    }

    /// Imports an OCI image layout directory; `tag` picks the manifest, and names it (normalised as a
    /// reference: `v1` is `docker.io/library/v1:latest`, the name a pod's `image: v1` finds).
    @discardableResult
    public func importLayout(_ layout: String, tag: String?) throws -> ImageRecord {
        guard FileManager.default.fileExists(atPath: layout + "/oci-layout"),
              let indexData = FileManager.default.contents(atPath: layout + "/index.json") else {
            throw RuntimeError("\(layout) is not an OCI image layout (oci-layout and index.json expected)")
        }
        let index = try json(indexData, "\(layout)/index.json")
        let manifests = index["manifests"] as? [[String: Any]] ?? []
        let refName = "org.opencontainers.image.ref.name"
        let chosen: [String: Any]
        if let tag {
            guard let m = manifests.first(where: { ($0["annotations"] as? [String: String])?[refName] == tag }) ?? (manifests.count == 1 ? manifests[0] : nil) else {
                throw RuntimeError("\(layout): no manifest tagged \(tag)")
            }
            chosen = m
        } else {
            guard manifests.count == 1 else { throw RuntimeError("\(layout) has \(manifests.count) manifests; name one as PATH:TAG") }
            chosen = manifests[0]
        }
        let name = tag ?? (chosen["annotations"] as? [String: String])?[refName] ?? "latest"
        let (manifestDigest, manifestBytes) = try blob(layout, chosen, "manifest")
        let manifest = try ImageManifest(Data(manifestBytes), digest: manifestDigest, maxLayers: Int.max)
        let config = try blob(layout, manifest.config, "config")
        try putBlob(config.digest, config.bytes)
        for (i, d) in manifest.layers.enumerated() {
            let layer = try blob(layout, d.descriptor, "layer \(i + 1) of \(manifestDigest)")
            try putBlob(layer.digest, layer.bytes)
        }
        try unpack(manifest)
        try putBlob(manifestDigest, manifestBytes)
        return try tagImage(ImageRefs.normalized(name), manifest: manifest, manifestBytes: manifestBytes.count, repoDigest: nil)
    }

    /// Unpacks a manifest's layers, all already in the store, once per manifest: the finished tree is
    /// renamed into place, so a failure or a crash leaves no half tree behind.
    func unpack(_ manifest: ImageManifest) throws {
        let unpacked = "\(root)/unpacked/\(manifest.digest.dropFirst(7))"
        if Files.exists(unpacked + "/rootfs") { return }
        let staging = try beginUnpack(manifest)
        do {
            for i in manifest.layers.indices { try applyLayer(manifest, i, staging: staging) }
            try finishUnpack(manifest, staging: staging)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
    }

    func beginUnpack(_ manifest: ImageManifest) throws -> String {
        let staging = "\(root)/unpacked/\(manifest.digest.dropFirst(7)).partial-\(UInt64.random(in: 0..<UInt64.max))"
        try Files.makeDirectories(root + "/unpacked", mode: 0o700)
        try FileManager.default.createDirectory(atPath: staging + "/rootfs", withIntermediateDirectories: true)
        return staging
    }

    /// Applies layer `i` from its stored blob.
    func applyLayer(_ manifest: ImageManifest, _ i: Int, staging: String) throws {
        try writeLayer(manifest, i, try inflateLayer(manifest, i, limit: maxLayerBytes), staging: staging)
    }

    /// Layer `i` as a tar, decompressed from its stored blob (at most `limit` bytes).
    func inflateLayer(_ manifest: ImageManifest, _ i: Int, limit: Int) throws -> InflatedLayer {
        let layer = manifest.layers[i]
        let start = ContinuousClock.now
        guard let data = Files.read(blobPath(layer.digest), limit: Int.max) else { throw RuntimeError("layer \(layer.digest) is not in the store") }
        let tar = layer.gzip ? try Tar.gunzip(data, limit: limit, what: "layer \(layer.digest)") : data
        return InflatedLayer(tar: tar, seconds: (ContinuousClock.now - start).seconds)
    }

    /// Writes a layer's entries into the staging tree; returns the seconds it took.
    @discardableResult
    func writeLayer(_ manifest: ImageManifest, _ i: Int, _ layer: InflatedLayer, staging: String) throws -> Double {
        let start = ContinuousClock.now
        let digest = manifest.layers[i].digest
        try LayerApplier(rootfs: staging + "/rootfs").apply(try Tar.entries(layer.tar, what: "layer \(digest)"), layer: digest)
        return (ContinuousClock.now - start).seconds
    }

    func finishUnpack(_ manifest: ImageManifest, staging: String) throws {
        let unpacked = "\(root)/unpacked/\(manifest.digest.dropFirst(7))"
        if rename(staging, unpacked) != 0 {
            // Another pull of the same manifest finished first: its tree is as good as ours.
            try? FileManager.default.removeItem(atPath: staging)
            guard Files.exists(unpacked + "/rootfs") else { throw RuntimeError("cannot move the unpacked \(manifest.digest) into place") }
        }
    }

    /// Points a name at an unpacked manifest; the image it named before goes if nothing else names it.
    func tagImage(_ name: String, manifest: ImageManifest, manifestBytes: Int, repoDigest: String?) throws -> ImageRecord {
        let total = manifestBytes + manifest.configSize + manifest.layers.reduce(0) { $0 + $1.size }
        try Files.makeDirectories(root + "/refs", mode: 0o700)
        let previous = ImageRefs.record(root: root, name: name)
        var line = "\(manifest.digest) \(total)"
        if let repoDigest { line += " " + repoDigest }
        try Files.write(Array((line + "\n").utf8), to: "\(root)/refs/\(ImageRefs.fileName(name))", mode: 0o600)
        if let previous, previous.digest != manifest.digest { collect(previous.digest) }
        return ImageRecord(name: name, digest: manifest.digest, size: total, repoDigest: repoDigest, usedAt: Date().timeIntervalSince1970)
    }

    public func list() -> [ImageRecord] { ImageRefs.list(root: root) }

    public func record(_ name: String) -> ImageRecord? { ImageRefs.record(root: root, name: name) }

    /// The unpacked root filesystem of a named image.
    public func rootfs(of name: String) -> String? { ImageRefs.rootfs(root: root, name: name) }

    /// Marks an image used now: garbage collection takes the longest unused first.
    public func touch(_ name: String) {
        utimes("\(root)/refs/\(ImageRefs.fileName(ImageRefs.normalized(name)))", nil)
    }

    /// Removes a name; the unpacked tree and blobs go when no other name uses them.
    public func remove(_ name: String) throws {
        guard let r = record(name) ?? list().first(where: { $0.name == name }) else { throw RuntimeError("no image named \(name)") }
        try FileManager.default.removeItem(atPath: "\(root)/refs/\(ImageRefs.fileName(r.name))")
        collect(r.digest)
    }

    /// Removes an image's unpacked tree, manifest, config and layers when no name refers to it any more
    /// (a layer another image still uses stays).
    func collect(_ digest: String) {
        let remaining = list()
        guard !remaining.contains(where: { $0.digest == digest }) else { return }
        try? FileManager.default.removeItem(atPath: "\(root)/unpacked/\(digest.dropFirst(7))")
        var kept = Set<String>()
        for r in remaining {
            kept.insert(r.digest)
            if let repo = r.repoDigest { kept.insert(repo) }
            if let m = manifest(r.digest) { kept.insert(m.configDigest); kept.formUnion(m.layers.map(\.digest)) }
        }
        var gone = [digest]
        if let m = manifest(digest) { gone += [m.configDigest] + m.layers.map(\.digest) }
        for d in gone where !kept.contains(d) { unlink(blobPath(d)) }
    }

    /// When the store's filesystem is fuller than `high` percent, removes images not in `used`, least
    /// recently used first, until it is below `low`. Returns what went.
    public func collectGarbage(keeping used: Set<String>, high: Double, low: Double) -> [ImageRecord] {
        func usage() -> Double? {
            var s = statvfs()
            guard statvfs(root, &s) == 0, s.f_blocks > 0 else { return nil }
            return 100 * Double(s.f_blocks - s.f_bavail) / Double(s.f_blocks)
        }
        guard let u = usage(), u > high else { return [] }
        var removed: [ImageRecord] = []
        for r in list().sorted(by: { $0.usedAt < $1.usedAt }) where !used.contains(r.name) {
            guard (try? remove(r.name)) != nil else { continue }
            removed.append(r)
            if let u = usage(), u <= low { break }
        }
        return removed
    }

    /// Removes what interrupted pulls left (partial blobs, staging trees) older than `age` seconds: a crash
    /// in the middle of a pull leaves them, nothing else refers to them.
    public func removeLeftovers(olderThan age: Double = 3600) {
        let now = Date().timeIntervalSince1970
        for dir in [root + "/blobs/sha256", root + "/unpacked"] {
            for name in Files.list(dir) where name.contains(".partial-") || name.contains(".tmp-") {
                var st = stat()
                guard lstat(dir + "/" + name, &st) == 0, now - Double(st.st_mtim.tv_sec) > age else { continue }
                try? FileManager.default.removeItem(atPath: dir + "/" + name)
            }
        }
    }

    func manifest(_ digest: String) -> ImageManifest? {
        guard let data = Files.read(blobPath(digest), limit: 4 << 20) else { return nil }
        return try? ImageManifest(Data(data), digest: digest, maxLayers: Int.max)
    }
}

/// A layer's tar, and the seconds its decompression took.
struct InflatedLayer: Sendable {
    var tar: [UInt8]
    var seconds: Double
}

/// An image manifest (OCI or Docker schema 2): its config and layers, checked for form.
struct ImageManifest: Sendable {
    struct Layer: Sendable {
        var digest: String
        var size: Int
        var gzip: Bool
        var descriptor: [String: Any] { ["digest": digest, "size": size] }
    }

    var digest: String
    var configDigest: String
    var configSize: Int
    var layers: [Layer]
    var config: [String: Any] { ["digest": configDigest, "size": configSize] }

    init(_ data: Data, digest: String, maxLayers: Int) throws {
        self.digest = digest
        guard let m = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw RuntimeError("manifest \(digest) is not a JSON object") }
        guard let config = m["config"] as? [String: Any], let layers = m["layers"] as? [[String: Any]] else {
            throw RuntimeError("manifest \(digest): config and layers expected")
        }
        guard layers.count <= maxLayers else { throw RuntimeError("manifest \(digest) has \(layers.count) layers, more than the limit of \(maxLayers)") }
        (configDigest, configSize) = try ImageStore.descriptor(config, "config of \(digest)")
        self.layers = try layers.enumerated().map { i, d in
            let what = "layer \(i + 1) of \(digest)"
            let (ld, size) = try ImageStore.descriptor(d, what)
            let media = d["mediaType"] as? String ?? ""
            guard let gzip = ImageStore.layerTypes[media] else { throw RuntimeError("\(what): unsupported media type \(media)") }
            return Layer(digest: ld, size: size, gzip: gzip)
        }
    }
}
