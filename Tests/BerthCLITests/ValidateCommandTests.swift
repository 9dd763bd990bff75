import Foundation
import Testing

@Suite struct ValidateCommandTests {
    let exampleRepo = Shell.packageRoot.appendingPathComponent("example-repo").path

    @Test func exampleRepoIsClean() throws {
        let r = try Shell.run(Shell.berth, ["validate", exampleRepo])
        #expect(r.status == 0)
        #expect(r.stdout == "5 files, 8 objects: 0 errors, 0 warnings\n")
    }

    @Test func brokenCopyOfExampleReportsExactFindings() throws {
        try Shell.withTempDir { dir in
            _ = try Shell.run("cp", ["-r", exampleRepo + "/.", dir])
            let web = dir + "/web.yaml"
            var text = try String(contentsOfFile: web, encoding: .utf8)
            text = text.replacingOccurrences(of: "          image: host\n", with: "          imag: host\n")
            text = text.replacingOccurrences(of: "              port: http\n", with: "              port: htp\n")
            try text.write(toFile: web, atomically: true, encoding: .utf8)
            try FileManager.default.removeItem(atPath: dir + "/secret.yaml")
            let r = try Shell.run(Shell.berth, ["validate", "."], cwd: dir)
            #expect(r.status == 1)
            let expected = """
            migrate-job.yaml:35:13: error: Secret default/app-credentials is not defined in this set (set optional: true if it may be missing) (spec.template.spec.volumes[0].secret.secretName)
            web.yaml:37:11: error: missing required field "image" (spec.template.spec.containers[0].image)
            web.yaml:38:11: error: unknown field "imag" (did you mean "image"?) (spec.template.spec.containers[0].imag)
            web.yaml:46:15: error: named port "htp" is not a port of this container (did you mean "http"?) (spec.template.spec.containers[0].readinessProbe.httpGet.port)
            web.yaml:50:15: error: named port "htp" is not a port of this container (did you mean "http"?) (spec.template.spec.containers[0].livenessProbe.tcpSocket.port)
            worker.yaml:43:19: error: Secret default/app-credentials is not defined in this set (set optional: true if it may be missing) (spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef.name)
            4 files, 7 objects: 6 errors, 0 warnings

            """
            #expect(r.stdout == expected)
        }
    }

    @Test func jsonOutputAndStrictWarnings() throws {
        try Shell.withTempDir { dir in
            try Shell.write("""
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
            spec:
              dnsPolicy: ClusterFirst
              restartPolicy: Never
              containers:
                - name: c
                  image: host

            """, to: dir + "/pod.yml")
            let plain = try Shell.run(Shell.berth, ["validate", dir + "/pod.yml"])
            #expect(plain.status == 0)
            let json = try Shell.run(Shell.berth, ["validate", "-o", "json", dir + "/pod.yml"])
            #expect(json.status == 0)
            let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
            #expect(rows?.count == 1)
            #expect(rows?.first?["line"] as? Int == 6)
            #expect(rows?.first?["column"] as? Int == 3)
            #expect(rows?.first?["severity"] as? String == "warning")
            #expect(rows?.first?["field"] as? String == "spec.dnsPolicy")
            #expect(rows?.first?["message"] as? String == "berth does not implement \"dnsPolicy\"; it is ignored")
            let strict = try Shell.run(Shell.berth, ["validate", "--strict", dir + "/pod.yml"])
            #expect(strict.status == 1)
            #expect(strict.stdout.contains("pod.yml:6:3: error: berth does not implement"))
        }
    }

    @Test func usageErrorsAndUnreadablePathsExitTwo() throws {
        let missing = try Shell.run(Shell.berth, ["validate", "/nonexistent/berth-path"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent/berth-path: no such file or directory"))
        let badFlag = try Shell.run(Shell.berth, ["validate", "--no-such-flag"])
        #expect(badFlag.status == 2)
        let badFormat = try Shell.run(Shell.berth, ["validate", "-o", "xml", exampleRepo])
        #expect(badFormat.status == 2)
    }

    @Test func berthignoreExcludesPaths() throws {
        try Shell.withTempDir { dir in
            try Shell.write("broken: [\n", to: dir + "/drafts/x.yaml")
            try Shell.write("also broken: [\n", to: dir + "/tmp-notes.yaml")
            try Shell.write("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n", to: dir + "/ns.yaml")
            try Shell.write("drafts/\n/tmp-*.yaml\n", to: dir + "/.berthignore")
            let r = try Shell.run(Shell.berth, ["validate", dir])
            #expect(r.status == 0)
            #expect(r.stdout == "1 file, 1 object: 0 errors, 0 warnings\n")
        }
    }
}

@Suite struct HostileInputTests {
    @Test func billionLaughsStaysSmall() throws {
        try Shell.withTempDir { dir in
            var lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: lol}", "a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
            for i in 1...9 { lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ",") + "]") }
            lines.append("data: {x: *a9}")
            try Shell.write(lines.joined(separator: "\n") + "\n", to: dir + "/lol.yaml")
            let r = try Shell.peakRSS(Shell.berth, ["validate", dir + "/lol.yaml"])
            #expect(r.status == 1)
            #expect(r.maxRSSKiB > 0 && r.maxRSSKiB < 50 * 1024, "peak RSS \(r.maxRSSKiB) KiB")
        }
    }
}

@Suite struct WalkTests {
    @Test func symbolicLinksAreNotFollowedAndBigFilesAreNotRead() throws {
        try Shell.withTempDir { dir in
            try Shell.write("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n", to: dir + "/repo/ns.yaml")
            try FileManager.default.createSymbolicLink(atPath: dir + "/repo/passwd.yaml", withDestinationPath: "/etc/passwd")
            try FileManager.default.createSymbolicLink(atPath: dir + "/repo/loop", withDestinationPath: dir + "/repo")
            let r = try Shell.run(Shell.berth, ["validate", dir + "/repo"])
            #expect(r.status == 0)
            #expect(r.stdout == "1 file, 1 object: 0 errors, 0 warnings\n")
            // An endless file named on the command line is read only up to the limit.
            let zero = try Shell.run(Shell.berth, ["validate", "--max-file-bytes", "1000", "/dev/zero"])
            #expect(zero.status == 1)
            #expect(zero.stdout.hasPrefix("/dev/zero:1:1: error: file is larger than the limit of 1000 bytes"))
        }
    }
}
