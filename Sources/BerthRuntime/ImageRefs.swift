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
