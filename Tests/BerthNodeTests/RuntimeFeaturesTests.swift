@testable import BerthLinux
@testable import BerthRuntime
import BerthYAMLCore
import Testing

@Suite struct RuntimeFeaturesTests {
    /// What `features` lists, the config reader takes: every seccomp action and operator.
    @Test func listedSeccompActionsAndOperatorsAreTaken() throws {
        for name in SeccompProfile.operators { #expect(SeccompProfile.op(name) != nil, "\(name)") }
        for name in OCIConfig.seccompActions {
            let node = try #require(try YAMLParser.parse(Array("{\"a\": \"\(name)\"}".utf8), limits: OCIConfig.inputLimits).first)
            var reader = try Reader(node, path: "linux.seccomp", file: "config.json")
            #expect(throws: Never.self, "\(name)") { _ = try OCIConfig.action(&reader, "a", errnoKey: "errno") }
        }
    }
}
