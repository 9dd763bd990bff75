import BerthYAML
import Foundation

/// Finds manifest files under the paths given on the command line, honouring `.berthignore`.
struct ManifestPaths {
    struct Unreadable: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "\(path): \(reason)" }
    }

    /// Reads every manifest under `paths`; a named file is read whatever its extension.
    /// At most `maxBytes + 1` bytes are read from a file, enough for the loader to reject it as too large.
    static func collect(_ paths: [String], maxBytes: Int) throws -> [ManifestFile] {
        var files: [ManifestFile] = []
        var seen = Set<String>()
        for arg in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) else {
                throw Unreadable(path: arg, reason: "no such file or directory")
            }
            if isDir.boolValue {
                for relative in try walk(root: arg) {
                    let display = arg == "." ? relative : join(arg, relative)
                    if seen.insert(display).inserted {
                        files.append(try read(join(arg, relative), display: display, maxBytes: maxBytes))
                    }
                }
            } else if seen.insert(arg).inserted {
                files.append(try read(arg, display: arg, maxBytes: maxBytes))
            }
        }
        return files
    }

    static func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

    static func read(_ path: String, display: String, maxBytes: Int) throws -> ManifestFile {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw Unreadable(path: path, reason: "cannot be read")
        }
        defer { try? handle.close() }
        do {
            let data = try handle.read(upToCount: maxBytes + 1) ?? Data()
            return ManifestFile(path: display, bytes: [UInt8](data))
        } catch {
            throw Unreadable(path: path, reason: "cannot be read")
        }
    }

    /// Relative paths of the manifests below `root`, sorted. Hidden entries (`.git`) are skipped, and so
    /// are symbolic links and special files: a link in a pushed tree must not make a hook read outside it.
    static func walk(root: String) throws -> [String] {
        var rules = IgnoreRules()
        let ignorePath = join(root, IgnoreRules.fileName)
        if FileManager.default.fileExists(atPath: ignorePath) {
            guard let data = FileManager.default.contents(atPath: ignorePath) else {
                throw Unreadable(path: ignorePath, reason: "cannot be read")
            }
            rules = IgnoreRules(text: String(decoding: data, as: UTF8.self))
        }
        var out: [String] = []
        var pending = [""]
        while let dir = pending.popLast() {
            let full = dir.isEmpty ? root : join(root, dir)
            let entries: [String]
            do {
                entries = try FileManager.default.contentsOfDirectory(atPath: full)
            } catch {
                throw Unreadable(path: full, reason: "cannot be listed")
            }
            for name in entries where !name.hasPrefix(".") {
                let relative = dir.isEmpty ? name : dir + "/" + name
                let type = (try? FileManager.default.attributesOfItem(atPath: join(root, relative)))?[.type] as? FileAttributeType
                let isDir = type == .typeDirectory
                guard isDir || type == .typeRegular else { continue }
                if rules.isIgnored(relative, isDirectory: isDir) { continue }
                if isDir {
                    pending.append(relative)
                } else if ManifestLoader.isManifestName(name) {
                    out.append(relative)
                }
            }
        }
        return out.sorted()
    }
}
