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

extension ImageRefs {
    /// An image's USER (`uid`, `name`, `uid:gid`, `name:group`) as ids. Names are looked up in the image's
    /// /etc/passwd and /etc/group, read inside `rootfs` (a link there cannot lead out); without a rootfs a
    /// name gives nil. The gid is the user's primary group when only a name is given, else nil.
    public static func user(_ spec: String, rootfs: String?) throws -> (uid: Int, gid: Int?)? {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let userPart = parts.first, !userPart.isEmpty else { return nil }
        func table(_ file: String) -> [[Substring]] {
            guard let rootfs, let text = Files.readTextInRoot(rootfs, file, limit: 1 << 20) else { return [] }
            return text.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false) }
        }
        var uid = Int(userPart), gid: Int?
        if uid == nil {
            guard rootfs != nil else { return nil }
            guard let row = table("/etc/passwd").first(where: { $0.count > 3 && $0[0] == userPart }),
                  let u = Int(row[2]) else { throw RuntimeError("image user \(userPart) is not in the image's /etc/passwd") }
            uid = u
            gid = Int(row[3])
        }
        if parts.count > 1, !parts[1].isEmpty {
            if let g = Int(parts[1]) {
                gid = g
            } else {
                guard rootfs != nil else { return nil }
                guard let row = table("/etc/group").first(where: { $0.count > 2 && $0[0] == parts[1] }),
                      let g = Int(row[2]) else { throw RuntimeError("image group \(parts[1]) is not in the image's /etc/group") }
                gid = g
            }
        }
        return (uid!, gid)
    }
}
