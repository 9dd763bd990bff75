import CYAML

/// Input limits that keep a hostile manifest from making berth slow or large.
public struct InputLimits: Sendable, Hashable {
    public var maxFileBytes = 1 << 20
    public var maxDocuments = 1_000
    public var maxDepth = 64
    /// Nodes that aliases (and merge keys) may add to one file in total.
    public var maxAliasExpansion = 100_000
    /// Manifest files in one commit, and how deep its directories may nest.
    public var maxFiles = 50_000
    public var maxTreeDepth = 32

    public init() {}
}

/// A syntax or limit error with where it happened.
public struct YAMLParseError: Error, Sendable, Equatable {
    public var mark: Mark
    public var message: String
}

/// Turns bytes into documents with libyaml's event API.
public enum YAMLParser {
    private enum Frame {
        case sequence(items: [YAMLNode], mark: Mark, tag: String?, anchor: String?, size: Int)
        case mapping(pairs: [YAMLNode.Pair], pendingKey: YAMLNode?, mark: Mark, tag: String?, anchor: String?, size: Int)
    }

    public static func parse(_ bytes: [UInt8], limits: InputLimits = InputLimits()) throws(YAMLParseError) -> [YAMLNode] {
        if bytes.count > limits.maxFileBytes {
            throw YAMLParseError(mark: Mark(line: 1, column: 1),
                                 message: "file is larger than the limit of \(limits.maxFileBytes) bytes")
        }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLParseError(mark: Mark(line: 1, column: 1), message: "cannot initialize the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        var result: Result<[YAMLNode], YAMLParseError> = .success([])
        bytes.withUnsafeBufferPointer { buf in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            var builder = Builder(limits: limits)
            result = Result { () throws(YAMLParseError) -> [YAMLNode] in
                try builder.run(&parser)
                return builder.documents
            }
        }
        return try result.get()
    }

    private struct Builder {
        let limits: InputLimits
        var documents: [YAMLNode] = []
        var stack: [Frame] = []
        var anchors: [String: YAMLNode] = [:]
        var expanded = 0
        var root: YAMLNode?

        init(limits: InputLimits) { self.limits = limits }

        static func mark(_ m: yaml_mark_t) -> Mark { Mark(line: Int(m.line) + 1, column: Int(m.column) + 1) }

        static func string(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            guard let p else { return nil }
            return String(cString: UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
        }

        mutating func run(_ parser: inout yaml_parser_t) throws(YAMLParseError) {
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    throw Builder.syntaxError(parser)
                }
                defer { yaml_event_delete(&event) }
                let mark = Builder.mark(event.start_mark)
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_DOCUMENT_START_EVENT:
                    anchors.removeAll()
                    root = nil
                case YAML_DOCUMENT_END_EVENT:
                    if let root {
                        // An empty document (`---` alone) holds a null scalar: skip it as Kubernetes does.
                        if case .scalar(_, _) = root.value, root.resolved == .null {} else {
                            documents.append(root)
                            if documents.count > limits.maxDocuments {
                                throw YAMLParseError(mark: root.mark,
                                    message: "more than \(limits.maxDocuments) documents in one file")
                            }
                        }
                    }
                case YAML_ALIAS_EVENT:
                    let name = Builder.string(event.data.alias.anchor) ?? ""
                    guard let target = anchors[name] else {
                        throw YAMLParseError(mark: mark, message: "alias *\(name) refers to an unknown anchor")
                    }
                    try charge(target.size, at: mark)
                    var node = target
                    node.mark = mark
                    try add(node)
                case YAML_SCALAR_EVENT:
                    let s = event.data.scalar
                    let text = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
                    let style: YAMLNode.ScalarStyle
                    switch s.style {
                    case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
                    case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
                    case YAML_LITERAL_SCALAR_STYLE: style = .literal
                    case YAML_FOLDED_SCALAR_STYLE: style = .folded
                    default: style = .plain
                    }
                    let tag = try Builder.checkTag(Builder.string(s.tag), at: mark)
                    let node = YAMLNode(value: .scalar(text, style), mark: mark, tag: tag, size: 1)
                    if let a = Builder.string(s.anchor) { anchors[a] = node }
                    try add(node)
                case YAML_SEQUENCE_START_EVENT:
                    try push(at: mark)
                    let tag = try Builder.checkTag(Builder.string(event.data.sequence_start.tag), at: mark)
                    stack.append(.sequence(items: [], mark: mark, tag: tag,
                                           anchor: Builder.string(event.data.sequence_start.anchor), size: 1))
                case YAML_MAPPING_START_EVENT:
                    try push(at: mark)
                    let tag = try Builder.checkTag(Builder.string(event.data.mapping_start.tag), at: mark)
                    stack.append(.mapping(pairs: [], pendingKey: nil, mark: mark, tag: tag,
                                          anchor: Builder.string(event.data.mapping_start.anchor), size: 1))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    let frame = stack.removeLast()
                    var node: YAMLNode
                    var anchor: String?
                    switch frame {
                    case let .sequence(items, m, tag, a, size):
                        node = YAMLNode(value: .sequence(items), mark: m, tag: tag, size: size)
                        anchor = a
                    case let .mapping(pairs, _, m, tag, a, size):
                        let (merged, added) = try Builder.applyMerges(pairs)
                        try charge(added, at: m)
                        node = YAMLNode(value: .mapping(merged), mark: m, tag: tag, size: size &+ added)
                        anchor = a
                    }
                    if let anchor { anchors[anchor] = node }
                    try add(node)
                default:
                    break
                }
            }
        }

        mutating func charge(_ n: Int, at mark: Mark) throws(YAMLParseError) {
            expanded = expanded &+ n
            if expanded > limits.maxAliasExpansion || expanded < 0 {
                throw YAMLParseError(mark: mark,
                    message: "aliases expand to more than \(limits.maxAliasExpansion) nodes (the alias expansion limit)")
            }
        }

        func push(at mark: Mark) throws(YAMLParseError) {
            if stack.count >= limits.maxDepth {
                throw YAMLParseError(mark: mark, message: "nesting deeper than \(limits.maxDepth) levels")
            }
        }

        mutating func add(_ node: YAMLNode) throws(YAMLParseError) {
            guard let top = stack.popLast() else {
                root = node
                return
            }
            switch consume top {
            case .sequence(var items, let m, let tag, let a, let size):
                items.append(node)
                stack.append(.sequence(items: items, mark: m, tag: tag, anchor: a, size: size &+ node.size))
            case .mapping(var pairs, let pending, let m, let tag, let a, let size):
                if let key = pending {
                    pairs.append(YAMLNode.Pair(key: key, value: node))
                    stack.append(.mapping(pairs: pairs, pendingKey: nil, mark: m, tag: tag, anchor: a, size: size &+ node.size))
                } else {
                    guard case .scalar = node.value else {
                        throw YAMLParseError(mark: node.mark, message: "a mapping key must be a scalar, not \(node.kindDescription)")
                    }
                    stack.append(.mapping(pairs: pairs, pendingKey: node, mark: m, tag: tag, anchor: a, size: size &+ node.size))
                }
            }
        }

        /// YAML merge keys (`<<: *base`): explicit keys win over merged ones, earlier merges over later.
        static func applyMerges(_ pairs: [YAMLNode.Pair]) throws(YAMLParseError) -> ([YAMLNode.Pair], Int) {
            guard pairs.contains(where: { Builder.isMergeKey($0.key) }) else { return (pairs, 0) }
            var explicit: [YAMLNode.Pair] = []
            var sources: [YAMLNode] = []
            for p in pairs {
                if Builder.isMergeKey(p.key) {
                    switch p.value.value {
                    case .mapping: sources.append(p.value)
                    case .sequence(let items):
                        for item in items {
                            guard case .mapping = item.value else {
                                throw YAMLParseError(mark: item.mark, message: "a merge key (<<) takes a mapping or a list of mappings")
                            }
                            sources.append(item)
                        }
                    case .scalar:
                        throw YAMLParseError(mark: p.value.mark, message: "a merge key (<<) takes a mapping or a list of mappings")
                    }
                } else {
                    explicit.append(p)
                }
            }
            var seen = Set(explicit.compactMap { $0.key.scalarText })
            var result = explicit
            var added = 0
            for source in sources {
                guard case .mapping(let merged) = source.value else { continue }
                for p in merged {
                    guard let k = p.key.scalarText, !seen.contains(k) else { continue }
                    seen.insert(k)
                    result.append(p)
                    added &+= p.value.size &+ 1
                }
            }
            return (result, added)
        }

        static func isMergeKey(_ node: YAMLNode) -> Bool {
            if case .scalar("<<", .plain) = node.value { return true }
            return false
        }

        static func checkTag(_ tag: String?, at mark: Mark) throws(YAMLParseError) -> String? {
            guard let tag, tag != "!" else { return nil }
            let known = ["str", "int", "bool", "null", "float", "map", "seq", "binary", "merge"]
            if tag.hasPrefix("tag:yaml.org,2002:"), known.contains(String(tag.dropFirst(18))) { return tag }
            throw YAMLParseError(mark: mark, message: "unsupported YAML tag \(tag)")
        }

        static func syntaxError(_ parser: yaml_parser_t) -> YAMLParseError {
            let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
            var message = "syntax error: \(problem)"
            if let context = parser.context.map({ String(cString: $0) }) {
                let cm = mark(parser.context_mark)
                message += " (\(context) at line \(cm.line), column \(cm.column))"
            }
            var m = mark(parser.problem_mark)
            if parser.error == YAML_READER_ERROR {
                // Reader errors carry a byte offset, not a line.
                m = Mark(line: 1, column: 1)
                message = "not valid UTF-8 text: \(problem) at byte \(parser.problem_offset)"
            }
            return YAMLParseError(mark: m, message: message)
        }
    }
}
