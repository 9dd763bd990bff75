import BerthTestSupport
import Foundation
import Testing

/// `berth image pull/ls/prune` against a real registry, and what `berth validate` says of image names,
/// pull secrets and registries files.
@Suite(.serialized) struct RegistryCommandTests {
    @Test func pullListPruneFromTheCommandLine() throws {
        try Shell.withTempDir { dir in
            try TestImages.make(dir + "/layout", tag: "v1", files: ["etc/motd": "one\n"])
            let registry = try TestRegistry(dir: dir + "/registry", auth: .basic(user: "cli", password: "cli-pass"))
            defer { registry.stop() }
            try registry.push(dir + "/layout:v1", to: "tools/box:1")
            try registry.push(dir + "/layout:v1", to: "tools/other:1")
            // Mirrors and TLS from registries.yaml, the password from a Docker config.json.
            try registry.registriesYAML(credentials: false).write(toFile: dir + "/registries.yaml", atomically: true, encoding: .utf8)
            let auth = Data("cli:cli-pass".utf8).base64EncodedString()
            try "{\"auths\":{\"\(registry.host)\":{\"auth\":\"\(auth)\"}}}".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            let state = dir + "/state"
            let flags = ["--state-dir", state, "--registries", dir + "/registries.yaml", "--registry-credentials", dir + "/config.json"]
            let pulled = try Shell.run(Shell.berth, ["image", "pull"] + flags + ["\(registry.host)/tools/box:1"])
            #expect(pulled.status == 0, "\(pulled.stderr)")
            #expect(pulled.stdout.hasPrefix("\(registry.host)/tools/box:1 \(registry.host)/tools/box@sha256:"))
            #expect(try Shell.run(Shell.berth, ["image", "pull"] + flags + ["\(registry.host)/tools/other:1"]).status == 0)
            // Without the credentials file: the registry's refusal, exit 1.
            let refused = try Shell.run(Shell.berth, ["image", "pull", "--state-dir", state, "--registries", dir + "/registries.yaml", "\(registry.host)/tools/box:1"])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("401 unauthorized"), "\(refused.stderr)")
            // A pod in the node's state uses one of them: ls names it, prune keeps it.
            try FileManager.default.createDirectory(atPath: state + "/node/pods", withIntermediateDirectories: true)
            let podState = """
                {"pod":{"metadata":{"name":"web","namespace":"shop","labels":{},"annotations":{}},"spec":{"containers":[{"name":"c","image":"\(registry.host)/tools/box:1","command":[],"args":[],"env":[],"envFrom":[],"ports":[],"resources":{"requests":{},"limits":{}},"volumeMounts":[]}],"initContainers":[],"volumes":[],"nodeSelector":{},"nodeAffinity":[],"tolerations":[]}},"uid":"u","createdAt":0,"runs":[],"retryAt":0}
                """
            try podState.write(toFile: state + "/node/pods/shop_web.json", atomically: true, encoding: .utf8)
            let ls = try Shell.run(Shell.berth, ["image", "ls", "--state-dir", state])
            #expect(ls.stdout.contains("\(registry.host)/tools/box:1\tsha256:"), "\(ls.stdout)")
            #expect(ls.stdout.split(separator: "\n").contains { $0.contains("tools/box:1") && $0.hasSuffix("\tshop/web") }, "\(ls.stdout)")
            let prune = try Shell.run(Shell.berth, ["image", "prune", "--state-dir", state])
            #expect(prune.stdout == "removed \(registry.host)/tools/other:1\n", "\(prune.stdout) \(prune.stderr)")
            #expect(try Shell.run(Shell.berth, ["image", "ls", "--state-dir", state]).stdout.split(separator: "\n").count == 2)
            // A bad reference and a bad registries file are told with their place.
            let invalid = try Shell.run(Shell.berth, ["image", "pull", "--state-dir", state, "Redis:7"])
            #expect(invalid.status == 1 && invalid.stderr.contains("invalid image name \"Redis:7\""), "\(invalid.stderr)")
            try "mirrors:\n  docker.io:\n    endpoints: [\"http://x\"]\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
            let bad = try Shell.run(Shell.berth, ["image", "pull", "--state-dir", state, "--registries", dir + "/bad.yaml", "redis:7"])
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("\(dir)/bad.yaml:3:5: error: unknown field \"endpoints\" (did you mean \"endpoint\"?)"), "\(bad.stderr)")
        }
    }

    @Test func validateChecksImageNamesAndPullSecrets() throws {
        try Shell.withTempDir { dir in
            try Shell.write("""
            apiVersion: v1
            kind: Secret
            metadata:
              name: broken
            type: kubernetes.io/dockerconfigjson
            stringData:
              .dockerconfigjson: '{"auths": {"r.example": {"username": 1}}}'
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
            spec:
              imagePullSecrets:
                - name: regcred
              containers:
                - name: a
                  image: Redis:7
                  imagePullPolicy: Sometimes
                - name: b
                  image: redis@sha256:abc

            """, to: dir + "/pod.yaml")
            let r = try Shell.run(Shell.berth, ["validate", dir + "/pod.yaml"])
            #expect(r.status == 1)
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix("\(dir)/pod.yaml:6:1: error: a kubernetes.io/dockerconfigjson Secret auths entry for r.example has neither") }, "\(r.stdout)")
            #expect(lines.contains("\(dir)/pod.yaml:18:7: error: InvalidImageName: invalid image name \"Redis:7\": repository part \"Redis\" must be lowercase letters and digits joined by '.', '_', '__' or '-' (spec.containers[0].image)"), "\(r.stdout)")
            #expect(lines.contains { $0.hasPrefix("\(dir)/pod.yaml:19:24: error: unsupported value \"Sometimes\": must be one of Always, IfNotPresent, Never") }, "\(r.stdout)")
            #expect(lines.contains { $0.hasPrefix("\(dir)/pod.yaml:21:7: error: InvalidImageName: invalid image name \"redis@sha256:abc\"") }, "\(r.stdout)")
            #expect(lines.contains { $0.hasPrefix("\(dir)/pod.yaml:15:7: error: Secret default/regcred is not defined in this set") }, "\(r.stdout)")
            #expect(!r.stdout.contains("username\": 1"))
        }
    }
}
