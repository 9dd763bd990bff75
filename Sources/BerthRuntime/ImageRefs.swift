import BerthYAMLCore
import BerthLinux

/// An image in the store: a name (tag) and the digest of its manifest.
public struct ImageRecord: Sendable, Equatable {
    public init(name: String, digest: String, size: Int) {
        self.name = name
        self.digest = digest
        self.size = size
    }

    public var name: String
    public var digest: String
    public var size: Int
}

/// The names of the image store (`refs/<name>` holds "sha256:<hex> <size>") and where each image is
/// unpacked. Here rather than with the importer so that the runtime's small binary can find a rootfs.
public enum ImageRefs {
    /// A name as a file name: anything but letters, digits and `-_.:` becomes `_`.
    public static func safe(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || "-_.:".contains($0) ? $0 : "_" })
    }

    public static func list(root: String) -> [ImageRecord] {
        Files.list(root + "/refs").filter { !$0.hasPrefix(".") }.sorted().compactMap { n in
            guard let text = Files.readText("\(root)/refs/\(n)", limit: 4096) else { return nil }
            let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            return ImageRecord(name: n, digest: String(parts.first ?? ""), size: Int(parts.count > 1 ? parts[1] : "0") ?? 0)
        }
    }

    /// The unpacked root filesystem of a named image (read-only by convention: containers write to an overlay).
    public static func rootfs(root: String, name: String) -> String? {
        guard let r = list(root: root).first(where: { $0.name == safe(name) }) else { return nil }
        return "\(root)/unpacked/\(r.digest.dropFirst(7))/rootfs"
    }
}

/// What an image says to run when a pod's container does not: its config's Entrypoint, Cmd, Env,
/// WorkingDir and User.
public struct ImageDefaults: Sendable, Equatable {
    public var entrypoint: [String] = []
    public var cmd: [String] = []
    public var env: [String] = []
    public var workingDir: String?
    public var user: String?
    public init() {}
}

extension ImageRefs {
    /// The defaults of a named image, from its stored manifest and config blobs.
    public static func defaults(root: String, name: String) -> ImageDefaults? {
        guard let r = list(root: root).first(where: { $0.name == safe(name) }) else { return nil }
        func document(_ digest: String) -> YAMLNode? {
            guard digest.hasPrefix("sha256:"), digest.dropFirst(7).allSatisfy(\.isHexDigit),
                  let bytes = Files.read("\(root)/blobs/sha256/\(digest.dropFirst(7))", limit: 4 << 20) else { return nil }
            return (try? YAMLParser.parse(bytes, limits: OCIConfig.inputLimits))?.first
        }
        func field(_ node: YAMLNode?, _ key: String) -> YAMLNode? {
            guard case .mapping(let pairs)? = node?.value else { return nil }
            return pairs.first { $0.key.scalarText == key }?.value
        }
        func strings(_ node: YAMLNode?) -> [String] {
            guard case .sequence(let items)? = node?.value else { return [] }
            return items.compactMap(\.scalarText)
        }
        guard let manifest = document(r.digest), let configDigest = field(field(manifest, "config"), "digest")?.scalarText,
              let config = document(configDigest) else { return nil }
        let c = field(config, "config")
        var d = ImageDefaults()
        d.entrypoint = strings(field(c, "Entrypoint"))
        d.cmd = strings(field(c, "Cmd"))
        d.env = strings(field(c, "Env"))
        d.workingDir = field(c, "WorkingDir")?.scalarText.flatMap { $0.isEmpty ? nil : $0 }
        d.user = field(c, "User")?.scalarText.flatMap { $0.isEmpty ? nil : $0 }
        return d
    }
}
