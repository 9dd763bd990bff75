import BerthModel
import BerthYAML
import Testing

/// Hostile input: every limit gives a clear finding instead of a slow or large daemon.
@Suite struct LimitTests {
    static func billionLaughs() -> String {
        var lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: lol}",
                     "a0: &a0 [\(Array(repeating: "\"lol\"", count: 9).joined(separator: ","))]"]
        for i in 1...9 {
            lines.append("a\(i): &a\(i) [\(Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ","))]")
        }
        lines.append("data: {x: *a9}")
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func billionLaughsIsRejectedQuickly() {
        let clock = ContinuousClock()
        var result: LoadResult?
        let elapsed = clock.measure { result = load(LimitTests.billionLaughs()) }
        #expect(result?.findings.map(short) == [
            "9:10: error: aliases expand to more than 100000 nodes (the alias expansion limit) ()",
        ])
        #expect(elapsed < .milliseconds(100))
    }

    @Test func aliasBudgetIsConfigurable() {
        var limits = InputLimits()
        limits.maxAliasExpansion = 5
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &d {a: b, c: d, e: f}\nbinaryData: *d\n"
        #expect(load(yaml, limits: limits).findings.map(short) == [
            "5:13: error: aliases expand to more than 5 nodes (the alias expansion limit) ()",
        ])
    }

    @Test func nestingLimit() {
        let deep = "a: " + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "\n"
        #expect(load(deep).findings.map(short) == ["1:67: error: nesting deeper than 64 levels ()"])
    }

    @Test func fileSizeLimit() {
        var limits = InputLimits()
        limits.maxFileBytes = 100
        let big = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  k: \"" + String(repeating: "x", count: 200) + "\"\n"
        #expect(load(big, limits: limits).findings.map(short) == [
            "1:1: error: file is larger than the limit of 100 bytes ()",
        ])
        #expect(load(big).findings.isEmpty)
    }

    @Test func documentCountLimit() {
        var limits = InputLimits()
        limits.maxDocuments = 3
        let doc = { (n: Int) in "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c\(n)}\n" }
        let text = (0..<5).map(doc).joined()
        #expect(load(text, limits: limits).findings.map(short) == ["14:1: error: more than 3 documents in one file ()"])
        #expect(load((0..<3).map(doc).joined(), limits: limits).findings.isEmpty)
    }

    @Test func invalidUTF8() {
        let bytes: [UInt8] = Array("apiVersion: v1\nkind: ConfigMap\n".utf8) + [0xff, 0xfe, 0x0a]
        let r = ManifestLoader().load([ManifestFile(path: "bad.yaml", bytes: bytes)])
        #expect(r.findings.count == 1)
        #expect(r.findings.first?.message.hasPrefix("not valid UTF-8 text") == true)
    }
}

@Suite struct IgnoreRulesTests {
    @Test(arguments: [
        ("drafts/", "drafts/a.yaml", false, true),
        ("drafts/", "x/drafts/a.yaml", false, true),
        ("drafts/", "drafts", false, false),
        ("/drafts", "x/drafts/a.yaml", false, false),
        ("*.json", "a/b/c.json", false, true),
        ("*.json\n!keep.json", "a/keep.json", false, false),
        ("secret/**", "secret/a/b.yaml", false, true),
        ("a/**/z.yaml", "a/z.yaml", false, true),
        ("a/**/z.yaml", "a/b/c/z.yaml", false, true),
        ("tmp-*.yaml", "tmp-1.yaml", false, true),
        ("tmp-?.yaml", "tmp-10.yaml", false, false),
        ("[ab].yaml", "b.yaml", false, true),
        ("# comment\n\n\\#x.yaml", "#x.yaml", false, true),
        ("dir/\n!dir/keep.yaml", "dir/keep.yaml", false, true),
    ])
    func matches(rules: String, path: String, isDirectory: Bool, ignored: Bool) {
        #expect(IgnoreRules(text: rules).isIgnored(path, isDirectory: isDirectory) == ignored)
    }
}
