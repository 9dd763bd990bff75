import BerthTestSupport
import Foundation
import Testing

extension DaemonTests {
    /// The example app with exec and HTTP probes, a rollout and a pod kill every minute: the daemon's
    /// children, zombies, open files, memory, run directory entries and cgroups stay flat
    /// (scripts/soak.py) for 30 minutes; BERTH_SOAK_MINUTES sets another length (scripts/soak runs it
    /// on its own, for as long as asked).
    @Test func theDaemonLeaksNothingUnderChurn() throws {
        let minutes = ProcessInfo.processInfo.environment["BERTH_SOAK_MINUTES"] ?? "30"
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [root + "/scripts/soak.py", DaemonHarness.binaries + "/berth", "--minutes", minutes, "--period", "60"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("soak: flat"), "\(text)")
    }
}
