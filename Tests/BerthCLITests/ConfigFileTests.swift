import Foundation
import Testing

/// Configuration files for `run`, `server` and `agent`: keys are the commands' long options, values are
/// checked as the command line's are, and every error names the file, line and column.
@Suite struct ConfigFileTests {
    @Test func checkAcceptsEveryKindOfOption() throws {
        try Shell.withTempDir { dir in
            let file = dir + "/config.yaml"
            try """
                # a node of the cluster
                server: https://10.0.0.1:7443
                node-name: gpu-1
                node-ip: 10.0.0.21
                label:
                  - accelerator=gpu
                  - zone=a
                taint: [gpu=true:NoSchedule]
                resource: nvidia.com/gpu=2
                node-lease: 15
                stop-workloads-on-exit: true
                allow-privileged: false
                """.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try Shell.run(Shell.berth, ["config", "check", file, "--command", "agent"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "\(file): 9 options for berth agent, all valid\n")
            // The same keys are not all a server's.
            let s = try Shell.run(Shell.berth, ["config", "check", file, "--command", "server"])
            #expect(s.status == 1)
            #expect(s.stderr.contains("\(file):2:1: \"server\" is not an option of berth server"), "\(s.stderr)")
        }
    }

    @Test func unknownKeysAndBadValuesNameTheirLine() throws {
        try Shell.withTempDir { dir in
            let cases: [(String, String)] = [
                ("server: https://h:7443\nnode-lese: 10\n", "2:1: \"node-lese\" is not an option of berth agent (did you mean \"node-lease\"?)"),
                ("node-lease: 1\n", "1:1: --node-lease is 2 to 300 seconds"),
                ("taint: gpu:Sometimes\n", "1:1: --taint gpu:Sometimes is not KEY[=VALUE]:EFFECT"),
                ("stop-workloads-on-exit: maybe\n", "1:25: stop-workloads-on-exit is a flag: true or false, not \"maybe\""),
                ("node-name: [a, b]\n", "1:12: node-name takes one value, not a list"),
                ("- server\n", "1:1: the configuration is a mapping of option names to values, not a list"),
                ("node-ip: 10.0.0.1\nnode-ip: 10.0.0.2\n", "2:1: \"node-ip\" is given twice"),
                ("node-ip: [\n", "2:1: "),
            ]
            for (i, (text, expected)) in cases.enumerated() {
                let file = dir + "/c\(i).yaml"
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                let r = try Shell.run(Shell.berth, ["config", "check", file])
                #expect(r.status == 1, "\(text)")
                #expect(r.stderr.contains("\(file):\(expected)"), "\(text): \(r.stderr)")
            }
        }
    }

    /// `berth agent --config F` reads F; a flag on the command line replaces the file's value; a bad value
    /// from the file is reported at its line.
    @Test func theCommandLineOverridesTheFile() throws {
        try Shell.withTempDir { dir in
            let file = dir + "/config.yaml"
            try "server: https://127.0.0.1:1\nnode-lease: 1\nstate-dir: \(dir)/state\n".write(toFile: file, atomically: true, encoding: .utf8)
            let bad = try Shell.run(Shell.berth, ["agent", "--config", file])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("\(file):2:1: "), "\(bad.stderr)")
            #expect(bad.stderr.contains("--node-lease is 2 to 300 seconds"))
            // With --node-lease given, the file's is not used: the agent goes on to join (no token: it says so).
            let overridden = try Shell.run(Shell.berth, ["agent", "--config", file, "--node-lease", "10"], env: ["BERTH_TOKEN": ""])
            #expect(!overridden.stderr.contains("node-lease"), "\(overridden.stderr)")
            #expect(overridden.stderr.contains("the join token is not K10"), "\(overridden.stderr)")
        }
    }
}
