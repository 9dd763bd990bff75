import BerthModel
import Dispatch

/// A manifest file's path (as it is to be reported) and contents.
public struct ManifestFile: Sendable {
    public var path: String
    public var bytes: [UInt8]

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }
}

/// What loading a set of manifests gave: the desired state and every finding.
public struct LoadResult: Sendable {
    public var desired: DesiredState
    public var findings: [Finding]
    public var fileCount: Int
    public var documentCount: Int

    public var errorCount: Int { findings.count { $0.severity == .error } }
    public var warningCount: Int { findings.count { $0.severity == .warning } }
    /// A set with any error is rejected whole.
    public var isValid: Bool { errorCount == 0 }
}

/// Loads and validates a whole set of manifest files at once, in parallel, from bytes: the same code
/// serves `berth validate` on directories, the hooks, and snapshots of Git commits.
public struct ManifestLoader: Sendable {
    public var limits: InputLimits

    public init(limits: InputLimits = InputLimits()) { self.limits = limits }

    /// The file names that are manifests.
    public static func isManifestName(_ name: String) -> Bool {
        name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json")
    }

    /// A class: a large set copies these through several arrays on every snapshot.
    final class Decoded: Sendable {
        let object: SourcedObject
        let document: YAMLNode
        let facts: ObjectFacts

        init(object: SourcedObject, document: YAMLNode, facts: ObjectFacts) {
            self.object = object
            self.document = document
            self.facts = facts
        }
    }

    /// One file parsed and decoded on its own; `assemble` adds the checks across files. Kept by
    /// snapshots so that an unchanged blob is not parsed again.
    public struct ParsedFile: Sendable {
        public internal(set) var path: String
        var decoded: [Decoded] = []
        var findings: [Finding] = []
        var documents = 0
    }

    public func load(_ files: [ManifestFile]) -> LoadResult {
        assemble(parse(files))
    }

    /// Parses files in parallel over the machine's cores.
    public func parse(_ files: [ManifestFile]) -> [ParsedFile] {
        var results = files.map { ParsedFile(path: $0.path) }
        results.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let out = buffer
            DispatchQueue.concurrentPerform(iterations: files.count) { i in
                out[i] = parse(files[i])
            }
        }
        return results
    }

    /// Validates a whole set of parsed files together and builds the desired state.
    public func assemble(_ results: [ParsedFile]) -> LoadResult {
        var decoded: [Decoded] = []
        var findings: [Finding] = []
        var documents = 0
        for r in results {
            decoded += r.decoded
            findings += r.findings
            documents += r.documents
        }
        let violations = SetValidator.validate(decoded.map(\.facts), origins: decoded.map(\.object.origin))
        for v in violations {
            let d = decoded[v.objectIndex]
            let mark = d.document.locate(v.field)
            findings.append(Finding(at: SourceLocation(path: d.object.origin.path, line: mark.line, column: mark.column),
                                    severity: v.severity, message: v.message, field: v.field.description))
        }
        findings += podSecurityFindings(decoded)
        var desired = DesiredState()
        desired.objects.reserveCapacity(decoded.count)
        for d in decoded where desired.objects[d.facts.key] == nil {
            desired.objects[d.facts.key] = d.object
        }
        return LoadResult(desired: desired, findings: Finding.sortedForDisplay(findings),
                          fileCount: results.count, documentCount: documents)
    }

    /// Pod Security admission over the whole set: each namespace's level comes from its Namespace manifest
    /// (baseline when it has none).
    func podSecurityFindings(_ decoded: [Decoded]) -> [Finding] {
        var findings: [Finding] = []
        func add(_ d: Decoded, _ field: FieldPath, _ message: String) {
            let mark = d.document.locate(field)
            findings.append(Finding(at: SourceLocation(path: d.object.origin.path, line: mark.line, column: mark.column),
                                    severity: .error, message: message, field: field.description))
        }
        var levels: [String: PodSecurity.Level] = [:]
        for d in decoded {
            guard case .namespace(let n) = d.object.object, let value = n.metadata.labels[PodSecurity.enforceLabel] else { continue }
            if let level = PodSecurity.Level(rawValue: value) {
                levels[n.metadata.name] = level
            } else {
                add(d, FieldPath(dotted: "metadata.labels").key(PodSecurity.enforceLabel),
                    "unknown Pod Security level \"\(value)\": use privileged, baseline or restricted")
            }
        }
        for d in decoded {
            let key = d.facts.key
            let level = levels[key.namespace] ?? .baseline
            for (field, message) in PodSecurity.check(d.document, object: d.object.object, level: level) {
                add(d, field, message + " (namespace \(key.namespace) enforces \(level.rawValue))")
            }
        }
        return findings
    }

    public func parse(_ file: ManifestFile) -> ParsedFile {
        var result = ParsedFile(path: file.path)
        let documents: [YAMLNode]
        do {
            documents = try YAMLParser.parse(file.bytes, limits: limits)
        } catch {
            result.findings.append(Finding(at: SourceLocation(path: file.path, line: error.mark.line, column: error.mark.column),
                                           severity: .error, message: error.message, field: ""))
            return result
        }
        result.documents = documents.count
        for document in documents {
            let ctx = DecodeContext(path: file.path, document: document)
            let object = ObjectDecoder.decode(document, ctx: ctx)
            result.findings += ctx.findings
            if let object {
                let origin = SourceLocation(path: file.path, line: document.mark.line, column: document.mark.column)
                result.decoded.append(Decoded(object: SourcedObject(object: object, origin: origin), document: document,
                                              facts: ObjectFacts(object)))
            }
        }
        return result
    }
}
