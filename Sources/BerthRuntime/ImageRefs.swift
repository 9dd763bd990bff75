import BerthLinux
import BerthModel
import BerthYAMLCore
#if canImport(Glibc)
import Glibc
#endif

/// An image in the store: a name (a normalised reference) and the digest of its manifest.
public struct ImageRecord: Sendable, Equatable {
    public init(name: String, digest: String, size: Int, repoDigest: String? = nil, usedAt: Double = 0) {
        self.name = name
        self.digest = digest
        self.size = size
        self.repoDigest = repoDigest
        self.usedAt = usedAt
    }

    public var name: String
    /// The platform manifest whose layers are unpacked.
    public var digest: String
    /// Bytes of its blobs (manifest, config, compressed layers).
    public var size: Int
    /// What the registry answered for the reference (an index or the manifest): how a moved tag is noticed.
    public var repoDigest: String?
    /// When it was last pulled or used (the ref's mtime), oldest collected first.
    public var usedAt: Double

    /// Kubernetes' `imageID`: `registry/repository@sha256:…` for a pulled image, the manifest digest otherwise.
    public var imageID: String {
        guard let repoDigest, let ref = try? ImageReference(parsing: name) else { return digest }
        return ref.name + "@" + repoDigest
    }
}

/// The names of the image store (`refs/<name>` holds "sha256:<manifest> <size> [sha256:<repo digest>]")
/// and where each image is unpacked. Here rather than with the importer so that the runtime's small
/// binary can find a rootfs.
public enum ImageRefs {
    /// The stored form of a name: normalised when it is a valid reference (`redis` →
    /// `docker.io/library/redis:latest`), as written otherwise.
    public static func normalized(_ name: String) -> String {
        (try? ImageReference(parsing: name))?.description ?? name
    }

    /// A name as a file name, reversibly: `/`, `%` and anything but letters, digits and `-_.:@` as %XX.
    public static func fileName(_ name: String) -> String {
        var out = ""
        for b in name.utf8 {
            let c = Character(UnicodeScalar(b))
            if b < 0x80 && (c.isLetter || c.isNumber || "-_.:@".contains(c)) { out.append(c) } else {
                let hex = Array("0123456789ABCDEF")
                out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
            }
        }
        return out
    }

    static func name(ofFile file: String) -> String {
        Files.decodeEscapes(file[...], marker: UInt8(ascii: "%"), digits: 2, radix: 16)
    }

    public static func list(root: String) -> [ImageRecord] {
        Files.list(root + "/refs").filter { !$0.hasPrefix(".") }.sorted().compactMap { n in
            read("\(root)/refs/\(n)", name: name(ofFile: n))
        }
    }

    /// The stored image a name (as a pod or bundle writes it) refers to.
    public static func record(root: String, name: String) -> ImageRecord? {
        let stored = normalized(name)
        return read("\(root)/refs/\(fileName(stored))", name: stored)
    }

    /// One ref file: "sha256:<manifest> <size> [sha256:<repo digest>]", last used at its mtime.
    static func read(_ path: String, name: String) -> ImageRecord? {
        guard let text = Files.readText(path, limit: 4096) else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard let digest = parts.first else { return nil }
        var st = stat()
        let usedAt = stat(path, &st) == 0 ? Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9 : 0
        return ImageRecord(name: name, digest: String(digest), size: Int(parts.count > 1 ? parts[1] : "0") ?? 0,
                           repoDigest: parts.count > 2 ? String(parts[2]) : nil, usedAt: usedAt)
    }

    /// The unpacked root filesystem of a named image (read-only by convention: containers write to an overlay).
    public static func rootfs(root: String, name: String) -> String? {
        guard let r = record(root: root, name: name) else { return nil }
        let path = "\(root)/unpacked/\(r.digest.dropFirst(7))/rootfs"
        return Files.exists(path) ? path : nil
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
        guard let r = record(root: root, name: name) else { return nil }
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
