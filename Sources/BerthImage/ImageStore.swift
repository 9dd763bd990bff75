import BerthRuntime
import Foundation

/// A content-addressed image store under the state directory: verified blobs in `blobs/sha256/`, each
/// manifest unpacked once into `unpacked/<digest>/rootfs`, names in `refs/`.
public struct ImageStore {
    public let root: String
    /// Most bytes a layer may decompress to.
    public var maxLayerBytes = 4 << 30

    public init(root: String) { self.root = root }

    static let layerTypes: [String: Bool] = [  // media type → gzip
        "application/vnd.oci.image.layer.v1.tar": false,
        "application/vnd.oci.image.layer.v1.tar+gzip": true,
        "application/vnd.docker.image.rootfs.diff.tar.gzip": true,
    ]

    func json(_ data: Data, _ what: String) throws -> [String: Any] {
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw RuntimeError("\(what) is not a JSON object") }
        return o
    }

    /// Reads a blob from a layout and checks its digest and size.
    func blob(_ layout: String, _ descriptor: [String: Any], _ what: String) throws -> (digest: String, bytes: [UInt8]) {
        guard let digest = descriptor["digest"] as? String, digest.hasPrefix("sha256:"), let size = descriptor["size"] as? Int else {
            throw RuntimeError("\(what): descriptor without a sha256 digest and size")
        }
        let hex = String(digest.dropFirst(7))
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { throw RuntimeError("\(what): malformed digest \(digest)") }
        guard let data = FileManager.default.contents(atPath: "\(layout)/blobs/sha256/\(hex)") else {
            throw RuntimeError("\(what): blob \(digest) is missing")
        }
        let bytes = [UInt8](data)
        guard bytes.count == size else { throw RuntimeError("\(what): blob \(digest) is \(bytes.count) bytes, not \(size)") }
        guard SHA256.hex(bytes) == hex else { throw RuntimeError("\(what): blob \(digest) does not match its digest") }
        return (digest, bytes)
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

    /// Imports an OCI image layout directory; `tag` picks (and names) the manifest.
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
        let manifest = try json(Data(manifestBytes), "manifest \(manifestDigest)")
        guard let config = manifest["config"] as? [String: Any], let layers = manifest["layers"] as? [[String: Any]] else {
            throw RuntimeError("manifest \(manifestDigest): config and layers expected")
        }
        var blobs = [try blob(layout, config, "config")]
        var total = manifestBytes.count + blobs[0].bytes.count
        let unpacked = "\(root)/unpacked/\(manifestDigest.dropFirst(7))"
        let fresh = !FileManager.default.fileExists(atPath: unpacked + "/rootfs")
        let staging = unpacked + ".partial"
        if fresh {
            try? FileManager.default.removeItem(atPath: staging)
            try FileManager.default.createDirectory(atPath: staging + "/rootfs", withIntermediateDirectories: true)
        }
        do {
            for (i, descriptor) in layers.enumerated() {
                let what = "layer \(i + 1) of \(manifestDigest)"
                let media = descriptor["mediaType"] as? String ?? ""
                guard let gzip = ImageStore.layerTypes[media] else { throw RuntimeError("\(what): unsupported media type \(media)") }
                let (digest, bytes) = try blob(layout, descriptor, what)
                blobs.append((digest, bytes))
                total += bytes.count
                if fresh {
                    let tar = gzip ? try Tar.gunzip(bytes, limit: maxLayerBytes, what: "layer \(digest)") : bytes
                    try LayerApplier(rootfs: staging + "/rootfs").apply(try Tar.entries(tar, what: "layer \(digest)"), layer: digest)
                }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        // Unpacked once per manifest: the finished tree is renamed into place.
        if fresh {
            try FileManager.default.createDirectory(atPath: (unpacked as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.moveItem(atPath: staging, toPath: unpacked)
        }
        try FileManager.default.createDirectory(atPath: root + "/blobs/sha256", withIntermediateDirectories: true)
        for b in [(manifestDigest, manifestBytes)] + blobs {
            let path = "\(root)/blobs/sha256/\(b.0.dropFirst(7))"
            if !FileManager.default.fileExists(atPath: path) { try Data(b.1).write(to: URL(fileURLWithPath: path)) }
        }
        try FileManager.default.createDirectory(atPath: root + "/refs", withIntermediateDirectories: true)
        let previous = list().first { $0.name == safe(name) }
        try "\(manifestDigest) \(total)\n".write(toFile: "\(root)/refs/\(safe(name))", atomically: true, encoding: .utf8)
        // A name moved to another image: the old one goes if nothing else names it.
        if let previous, previous.digest != manifestDigest { collect(previous.digest) }
        return ImageRecord(name: name, digest: manifestDigest, size: total)
    }

    func safe(_ name: String) -> String { ImageRefs.safe(name) }

    public func list() -> [ImageRecord] { ImageRefs.list(root: root) }

    /// The unpacked root filesystem of a named image.
    public func rootfs(of name: String) -> String? { ImageRefs.rootfs(root: root, name: name) }

    /// Removes a name; the unpacked tree and blobs go when no other name uses them.
    public func remove(_ name: String) throws {
        guard let r = list().first(where: { $0.name == safe(name) }) else { throw RuntimeError("no image named \(name)") }
        try FileManager.default.removeItem(atPath: "\(root)/refs/\(safe(name))")
        collect(r.digest)
    }

    /// Removes an image's unpacked tree and manifest blob when no name refers to it any more.
    func collect(_ digest: String) {
        guard !list().contains(where: { $0.digest == digest }) else { return }
        try? FileManager.default.removeItem(atPath: "\(root)/unpacked/\(digest.dropFirst(7))")
        try? FileManager.default.removeItem(atPath: "\(root)/blobs/sha256/\(digest.dropFirst(7))")
    }
}
