import BerthRuntime
import CBerthLinux
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Applies tar layers to a root filesystem without ever writing outside it: parent directories are opened
/// one component at a time without following symlinks, so an entry whose path goes through a symlink (or
/// is absolute, or has '..') is refused with the layer and entry named, before anything is written.
struct LayerApplier {
    let rootfs: String
    /// O_PATH (fcntl.h; not exported by Swift's Glibc module).
    private let oPath: Int32 = 0o10000000

    func apply(_ entries: [TarEntry], layer: String) throws {
        guard let root = Optional(open(rootfs, oPath | O_DIRECTORY | O_CLOEXEC)), root >= 0 else {
            throw RuntimeError("cannot open \(rootfs): \(String(cString: strerror(errno)))")
        }
        defer { close(root) }
        var created = Set<String>()
        for e in entries {
            let components = try clean(e.path, e, layer)
            guard let name = components.last else { continue }
            let parentPath = components.dropLast().joined(separator: "/")
            let parent = try openParent(root, Array(components.dropLast()), e, layer)
            defer { close(parent) }
            if name == ".wh..wh..opq" {
                // Opaque: what lower layers put in this directory goes; this layer's own entries stay.
                let dir = rootfs + "/" + parentPath
                for child in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
                where !created.contains(parentPath.isEmpty ? child : parentPath + "/" + child) {
                    try? FileManager.default.removeItem(atPath: dir + "/" + child)
                }
                continue
            }
            if name.hasPrefix(".wh.") {
                let target = String(name.dropFirst(4))
                try? FileManager.default.removeItem(atPath: rootfs + "/" + (parentPath.isEmpty ? target : parentPath + "/" + target))
                continue
            }
            let path = components.joined(separator: "/")
            created.insert(path)
            var st = stat()
            let exists = fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0
            let isDir = exists && (st.st_mode & S_IFMT) == S_IFDIR
            switch e.type {
            case UInt8(ascii: "5"):
                if exists && !isDir { unlinkat(parent, name, 0) }
                if !isDir || !exists, mkdirat(parent, name, 0o755) != 0 && errno != EEXIST {
                    throw failure(e, layer, "mkdir")
                }
            default:
                if exists {
                    if isDir { try? FileManager.default.removeItem(atPath: rootfs + "/" + path) } else { unlinkat(parent, name, 0) }
                }
                try create(e, parent: parent, name: name, root: root, layer: layer)
            }
            if e.type != UInt8(ascii: "2") && e.type != UInt8(ascii: "1") {
                fchmodat(parent, name, mode_t(e.mode), 0)
            }
            if e.type != UInt8(ascii: "1") { fchownat(parent, name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) }
        }
    }

    private func create(_ e: TarEntry, parent: Int32, name: String, root: Int32, layer: String) throws {
        switch e.type {
        case UInt8(ascii: "0"), UInt8(ascii: "7"):
            let fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(e.mode))
            guard fd >= 0 else { throw failure(e, layer, "create") }
            defer { close(fd) }
            var off = e.data.startIndex
            while off < e.data.endIndex {
                let n = e.data[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw failure(e, layer, "write") }
                off += n
            }
            for (key, value) in e.xattrs {
                _ = value.withUnsafeBytes { berth_fsetxattr(fd, key, $0.baseAddress, $0.count) }
            }
        case UInt8(ascii: "2"):
            guard symlinkat(e.linkname, parent, name) == 0 else { throw failure(e, layer, "symlink") }
        case UInt8(ascii: "1"):
            let target = try clean(e.linkname, e, layer)
            guard let targetName = target.last else { throw RuntimeError("layer \(layer): entry \(e.path): hard link without a target") }
            let targetParent = try openParent(root, Array(target.dropLast()), e, layer)
            defer { close(targetParent) }
            guard linkat(targetParent, targetName, parent, name, 0) == 0 else { throw failure(e, layer, "link") }
        case UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "6"):
            let kind: mode_t = e.type == UInt8(ascii: "3") ? S_IFCHR : e.type == UInt8(ascii: "4") ? S_IFBLK : S_IFIFO
            let dev = dev_t(berth_makedev(e.devmajor, e.devminor))
            guard mknodat(parent, name, kind | mode_t(e.mode), dev) == 0 else { throw failure(e, layer, "mknod") }
        default:
            throw RuntimeError("layer \(layer): entry \(e.path): unsupported tar entry type \(Character(UnicodeScalar(e.type)))")
        }
    }

    /// The path's components; absolute paths and '..' are refused.
    private func clean(_ path: String, _ e: TarEntry, _ layer: String) throws -> [String] {
        if path.hasPrefix("/") { throw RuntimeError("layer \(layer): entry \(path): absolute paths are not allowed") }
        let parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        if parts.contains("..") { throw RuntimeError("layer \(layer): entry \(path): '..' is not allowed") }
        return parts
    }

    /// Opens the directory the entry goes into, creating missing directories, never following a symlink.
    private func openParent(_ root: Int32, _ dirs: [String], _ e: TarEntry, _ layer: String) throws -> Int32 {
        var fd = dup(root)
        for d in dirs {
            var next = openat(fd, d, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT {
                mkdirat(fd, d, 0o755)
                next = openat(fd, d, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let err = errno
            close(fd)
            guard next >= 0 else {
                throw RuntimeError(err == ELOOP || err == ENOTDIR
                    ? "layer \(layer): entry \(e.path): would write through the symlink or file \(d)"
                    : "layer \(layer): entry \(e.path): \(String(cString: strerror(err)))")
            }
            fd = next
        }
        return fd
    }

    private func failure(_ e: TarEntry, _ layer: String, _ what: String) -> RuntimeError {
        RuntimeError("layer \(layer): entry \(e.path): \(what): \(String(cString: strerror(errno)))")
    }
}
