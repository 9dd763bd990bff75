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

@Suite struct SystemdCgroupPathTests {
    /// runc's --systemd-cgroup form of linux.cgroupsPath, placed where systemd puts the unit.
    @Test func slicePrefixNameBecomesTheUnitsPath() throws {
        #expect(try ContainerManager.systemdPath("system.slice:docker:abc") == "system.slice/docker-abc.scope")
        #expect(try ContainerManager.systemdPath(":crio:abc") == "system.slice/crio-abc.scope")
        #expect(try ContainerManager.systemdPath("machine-a-b.slice::abc") == "machine.slice/machine-a.slice/machine-a-b.slice/abc.scope")
        #expect(try ContainerManager.systemdPath("user.slice:x:pod.slice") == "user.slice/pod.slice")
        #expect(throws: RuntimeError.self) { try ContainerManager.systemdPath("/berth/abc") }
        #expect(throws: RuntimeError.self) { try ContainerManager.systemdPath("system.slice:a:../../x") }
        #expect(throws: RuntimeError.self) { try ContainerManager.systemdPath("notaslice:a:b") }
    }
}
