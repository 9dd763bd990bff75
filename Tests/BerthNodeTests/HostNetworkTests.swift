import BerthLinux
import Testing

@Suite struct HostNetworkTests {
    /// A failing `ip` is reported as a program's failure: what ran, its exit status and what it said,
    /// never an errno it did not have ("…: Success").
    @Test func aFailingToolKeepsItsExitStatusAndOutput() throws {
        do {
            try HostNetwork(namespace: nil).run([HostNetwork.ip, "link", "show", "dev", "berth-absent9"])
            Issue.record("ip link show found a link that does not exist")
        } catch {
            let text = "\(error)"
            #expect(text.hasPrefix("network: /usr/sbin/ip link show: exit status 1: "), "\(text)")
            #expect(text.contains("berth-absent9"), "\(text)")
            #expect(!text.contains("Success"), "\(text)")
        }
    }
}
