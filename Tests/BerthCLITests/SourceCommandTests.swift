import BerthTestSupport
import Foundation
import Testing

@Suite struct SourceCommandTests {
    @Test func showsObjectsFindingsAndExitCodes() throws {
        try GitWorkspace.with { ws in
            let (_, work) = try ws.makeRepository("app")
            let good = try ws.commit([
                "deploy/cfg.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: team}\ndata: {a: b}\n",
                "deploy/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
            ], in: work, message: "good")
            let daemon = try ws.gitDaemon()
            defer { daemon.stop() }
            let url = "git://127.0.0.1:\(daemon.port)/app.git"
            let state = ws.path("state")
            let r = try Shell.run(Shell.berth, ["source", "show", "--repo", url, "--path", "deploy", "--state-dir", state])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == """
            commit \(good) (branch main): good
            KIND       NAMESPACE/NAME  SOURCE
            ConfigMap  team/cfg        deploy/cfg.yaml:1
            Namespace  team            deploy/ns.yaml:1
            2 files, 2 objects: 0 errors, 0 warnings; would be applied

            """)

            let json = try Shell.run(Shell.berth, ["source", "show", "--repo", url, "--path", "deploy", "--state-dir", state, "-o", "json"])
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(object?["commit"] as? String == good)
            #expect(object?["valid"] as? Bool == true)
            #expect((object?["objects"] as? [[String: Any]])?.count == 2)

            try ws.commit(["deploy/cfg.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: 1}\n"], in: work, message: "bad")
            let bad = try Shell.run(Shell.berth, ["source", "show", "--repo", url, "--path", "deploy", "--state-dir", state])
            #expect(bad.status == 1)
            #expect(bad.stdout.contains("deploy/cfg.yaml:4:11: error: expected a string, found a number; quote it: \"1\" (data[a])"))
            #expect(bad.stdout.hasSuffix("would be rejected\n"))

            let missing = try Shell.run(Shell.berth, ["source", "show", "--repo", url, "--ref", "nope", "--state-dir", state])
            #expect(missing.status == 2)
            #expect(missing.stderr == "berth source show: branch nope does not exist on \(url)\n")

            let password = try Shell.run(Shell.berth, ["source", "show", "--repo", "http://u:secret@127.0.0.1/x.git"])
            #expect(password.status == 2)
            #expect(!password.stderr.contains("secret"))
        }
    }
}

@Suite struct SourceCommandTransportTests {
    @Test func httpWithPasswordFromEnvironmentOrFileAndLocalPaths() throws {
        try GitWorkspace.with { ws in
            let (bare, work) = try ws.makeRepository("app")
            let head = try ws.commit(["cfg.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"], in: work, message: "one")
            let server = try ws.httpBackend(user: "deploy", password: "t0ken-value")
            defer { server.stop() }
            let url = "http://127.0.0.1:\(server.port)/git/app.git"
            let state = ws.path("state")

            let env = try Shell.run(Shell.berth, ["source", "show", "--repo", url, "--username", "deploy",
                                                  "--password-env", "BERTH_TEST_TOKEN", "--state-dir", state],
                                    env: ["BERTH_TEST_TOKEN": "t0ken-value"])
            #expect(env.status == 0, "\(env.stderr)")
            #expect(env.stdout.hasPrefix("commit \(head) (branch main): one\n"))

            try "wrong\n".write(toFile: ws.path("token"), atomically: true, encoding: .utf8)
            let wrong = try Shell.run(Shell.berth, ["source", "show", "--repo", url, "--username", "deploy",
                                                    "--password-file", ws.path("token"), "--state-dir", state])
            #expect(wrong.status == 2)
            #expect(wrong.stderr.contains("authentication failed for \(url): the server refused the username or password"))
            #expect(!wrong.stderr.contains("wrong"))

            for repo in [bare, "file://" + bare] {
                let local = try Shell.run(Shell.berth, ["source", "show", "--repo", repo, "--state-dir", state])
                #expect(local.status == 0, "\(repo): \(local.stderr)")
                #expect(local.stdout.hasPrefix("commit \(head)"))
            }
            let missing = try Shell.run(Shell.berth, ["source", "show", "--repo", ws.path("nope.git"), "--state-dir", state])
            #expect(missing.status == 2)
            #expect(missing.stderr.contains("repository \(ws.path("nope.git")) does not exist"))
        }
    }
}
