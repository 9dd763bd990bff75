import BerthImage
import BerthModel
import BerthNode
import BerthTestSupport
import BerthYAML
import Foundation
import Testing

extension NodeAgentTests {
    /// The node pulls what pods name from a real registry (Debian's docker-registry on loopback), with the
    /// kubelet's pull policies, pull secrets and back-off.
    @Suite struct ImagePullTests {
        static func imagePod(_ name: String, _ image: String, policy: ImagePullPolicy? = nil, secrets: [String]? = nil) -> Pod {
            var c = Container()
            c.name = "main"
            c.image = image
            c.imagePullPolicy = policy
            c.command = ["/bin/sh", "-c", "cat /etc/motd; exec sleep 1000"]
            var p = pod(name, c)
            p.spec.imagePullSecrets = secrets
            return p
        }

        static func pullSecret(_ name: String, host: String, user: String, password: String) -> Secret {
            var s = Secret()
            s.metadata = ObjectMeta(name: name, namespace: "default")
            s.type = "kubernetes.io/dockerconfigjson"
            let auth = Data("\(user):\(password)".utf8).base64EncodedString()
            s.data = [".dockerconfigjson": Array("{\"auths\":{\"\(host)\":{\"auth\":\"\(auth)\"}}}".utf8)]
            return s
        }

        static func state(_ agent: NodeAgent, _ name: String) async -> ContainerStatus.State? {
            await agent.status(namespace: "default", name: name)?.containerStatuses.first?.state
        }

        @Test func pullPoliciesSecretsAndBackOff() async throws {
            let dir = "/tmp/berth-pull-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try TestImages.make(dir + "/layout", tag: "v1", files: ["etc/motd": "one\n"])
            try TestImages.make(dir + "/layout", tag: "v2", files: ["etc/motd": "two\n"])
            let registry = try TestRegistry(dir: dir + "/registry", auth: .basic(user: "puller", password: "pa55word"))
            defer { registry.stop() }
            let host = registry.host
            try registry.push(dir + "/layout:v1", to: "app/web:1")
            try registry.push(dir + "/layout:v1", to: "app/web:latest")
            let registries = try RegistriesConfig.decode(Array(registry.registriesYAML(credentials: false).utf8), path: "registries.yaml")
            try await NodeHarness.with(configure: { c in
                c.imageStore = c.stateDir + "/images"
                // The node knows the registry is plain HTTP, but has no password: pods bring theirs.
                c.registry.registries = registries
            }) { h, agent in
                let good = Self.pullSecret("regcred", host: host, user: "puller", password: "pa55word")
                let bad = Self.pullSecret("badcred", host: host, user: "puller", password: "not-the-password")
                let view = ClusterView(secrets: [good, bad])
                var pods = [Self.imagePod("tagged", "\(host)/app/web:1", secrets: ["regcred"]),
                            Self.imagePod("latest", "\(host)/app/web", secrets: ["regcred"]),
                            Self.imagePod("never", "\(host)/app/other:1", policy: .never),
                            Self.imagePod("missing", "\(host)/app/missing:1", secrets: ["regcred"]),
                            Self.imagePod("refused", "\(host)/app/web:2", secrets: ["badcred"])]
                await agent.update(pods: pods, view: view)
                try await NodeHarness.eventually("the pods with a good secret run", timeout: 30) {
                    let a = await agent.status(namespace: "default", name: "tagged")?.phase, b = await agent.status(namespace: "default", name: "latest")?.phase
                    return a == .running && b == .running
                }
                try await NodeHarness.eventually("the image's file is printed") { await agent.log("tagged", "main") == "one\n" }
                let tagged = await agent.status(namespace: "default", name: "tagged")!.containerStatuses[0]
                #expect(tagged.imageID?.hasPrefix("\(host)/app/web@sha256:") == true)
                #expect(await Self.state(agent, "never") == .waiting(reason: "ErrImageNeverPull",
                                                                      message: "container image \"\(host)/app/other:1\" is not present with pull policy of Never"))
                // Pulls that fail: the registry's reason, then the back-off; the password shows nowhere.
                try await NodeHarness.eventually("the missing image is reported") { await Self.state(agent, "missing")?.reason == "ErrImagePull" }
                guard case .waiting(_, let missing?) = await Self.state(agent, "missing") else { Issue.record("not waiting"); return }
                #expect(missing.contains("manifest unknown"), "\(missing)")
                try await NodeHarness.eventually("the refused pull is reported") {
                    ["ErrImagePull", "ImagePullBackOff"].contains(await Self.state(agent, "refused")?.reason ?? "")
                }
                guard case .waiting(_, let refused?) = await Self.state(agent, "refused") else { Issue.record("not waiting"); return }
                #expect(refused.contains("401 unauthorized"), "\(refused)")
                #expect(!refused.contains("not-the-password"))
                // Back-off, on a pod of its own made now: ImagePullBackOff between attempts, the attempts 1 s then
                // 2 s apart (this node's 1 s doubling).
                pods.append(Self.imagePod("backoff", "\(host)/app/absent:1", secrets: ["regcred"]))
                await agent.update(pods: pods, view: view)
                var attempts: [Date] = []
                var sawBackOff = false
                var last = ""
                let deadline = Date().addingTimeInterval(12)
                while attempts.count < 3 && Date() < deadline {
                    let reason = await Self.state(agent, "backoff")?.reason ?? ""
                    if reason == "ImagePullBackOff" { sawBackOff = true }
                    if reason == "ErrImagePull" && last != "ErrImagePull" { attempts.append(Date()) }
                    last = reason
                    try await Task.sleep(nanoseconds: 20_000_000)
                }
                #expect(sawBackOff)
                #expect(attempts.count == 3)
                if attempts.count == 3 {
                    let first = attempts[1].timeIntervalSince(attempts[0]), second = attempts[2].timeIntervalSince(attempts[1])
                    // An attempt is seen when the agent next answers, up to a tick late under load (0.65 s once in
                    // the full suite), which shortens the interval before it by as much.
                    #expect(first > 0.5 && first < 2.5, "first back-off \(first)")
                    #expect(second > 1.5 && second < 3.5 && second > first, "second back-off \(second) after \(first)")
                }

                // `:latest` moves in the registry: a new pod (Always) runs the new image, the old one keeps running.
                try registry.push(dir + "/layout:v2", to: "app/web:latest")
                pods.append(Self.imagePod("latest-2", "\(host)/app/web", secrets: ["regcred"]))
                // IfNotPresent with the image present asks nothing, even without a secret.
                pods.append(Self.imagePod("present", "\(host)/app/web:1", policy: .ifNotPresent))
                await agent.update(pods: pods, view: view)
                try await NodeHarness.eventually("the new pods run", timeout: 30) {
                    let a = await agent.status(namespace: "default", name: "latest-2")?.phase, b = await agent.status(namespace: "default", name: "present")?.phase
                    return a == .running && b == .running
                }
                try await NodeHarness.eventually("the new pod prints the new file") { await agent.log("latest-2", "main") == "two\n" }
                #expect(await agent.log("latest", "main") == "one\n")
                #expect(await agent.status(namespace: "default", name: "latest")?.phase == .running)
                _ = h
            }
        }
    }
}
