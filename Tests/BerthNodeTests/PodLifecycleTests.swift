import BerthLinux
import BerthModel
import BerthNode
import Foundation
import Testing

@Suite(.serialized, .enabled(if: getuid() == 0, "pods need root")) struct PodLifecycleTests {
    /// Init containers run first, in order, into a shared emptyDir; the container gets env from values,
    /// ConfigMaps, Secrets and fields; the pod runs and has an IP from the node's range.
    @Test func initContainersEnvironmentAndVolumes() async throws {
        try await NodeHarness.with { h, agent in
            var cm = ConfigMap()
            cm.metadata = ObjectMeta(name: "settings", namespace: "default")
            cm.data = ["greeting": "hello", "mode": "fast"]
            var secret = Secret()
            secret.metadata = ObjectMeta(name: "creds", namespace: "default")
            secret.data = ["password": Array("s3cret".utf8)]
            var p = pod("app", container("main", "cat /work/steps; echo \"$GREETING $POD_NAME $POD_NS $POD_IP $PASSWORD $mode $NODE\"; exec sleep 1000"))
            p.spec.initContainers = [container("first", "echo one >> /work/steps"), container("second", "echo two >> /work/steps")]
            var work = Volume()
            work.name = "work"
            p.spec.volumes = [work]
            for i in p.spec.initContainers.indices { p.spec.initContainers[i].volumeMounts = [mount("work", "/work")] }
            p.spec.containers[0].volumeMounts = [mount("work", "/work")]
            p.spec.containers[0].env = [env("GREETING", .configMapKeyRef(key("settings", "greeting"))), env("PASSWORD", .secretKeyRef(key("creds", "password"))),
                                        env("POD_NAME", .fieldRef(fieldPath: "metadata.name")), env("POD_NS", .fieldRef(fieldPath: "metadata.namespace")),
                                        env("POD_IP", .fieldRef(fieldPath: "status.podIP")), env("NODE", .fieldRef(fieldPath: "spec.nodeName"))]
            var from = EnvFromSource()
            from.source = .configMap(name: "settings", optional: false)
            p.spec.containers[0].envFrom = [from]
            await agent.update(pods: [p], view: ClusterView(configMaps: [cm], secrets: [secret]))
            try await NodeHarness.eventually("the pod runs") { await agent.status(namespace: "default", name: "app")?.phase == .running }
            let s = await agent.status(namespace: "default", name: "app")!
            #expect(s.podIP?.hasPrefix("10.244.0.") == true)
            #expect(s.initContainerStatuses.map(\.state.reason) == ["Completed", "Completed"])
            #expect(s.ready)
            try await NodeHarness.eventually("the container printed its environment") { await agent.log("app", "main").contains("hello") }
            #expect(await agent.log("app", "main") == "one\ntwo\nhello app default \(s.podIP!) s3cret fast node-1\n")
        }
    }

    /// A missing ConfigMap key keeps the container waiting with CreateContainerConfigError, and it starts
    /// once the key appears.
    @Test func aMissingKeyWaitsThenStarts() async throws {
        try await NodeHarness.with { h, agent in
            var p = pod("waiter", container("main", "echo $V; exec sleep 1000"))
            p.spec.containers[0].env = [env("V", .configMapKeyRef(key("late", "v")))]
            await agent.update(pods: [p], view: ClusterView())
            try await NodeHarness.eventually("the container waits") {
                await agent.status(namespace: "default", name: "waiter")?.containerStatuses.first?.state.reason == "CreateContainerConfigError"
            }
            let waiting = await agent.status(namespace: "default", name: "waiter")!
            #expect(waiting.phase == .pending)
            guard case .waiting(_, let message?) = waiting.containerStatuses[0].state else { Issue.record("not waiting"); return }
            #expect(message.contains("configmap \"late\" not found"))
            var cm = ConfigMap()
            cm.metadata = ObjectMeta(name: "late", namespace: "default")
            cm.data = ["v": "arrived"]
            await agent.update(pods: [p], view: ClusterView(configMaps: [cm]))
            try await NodeHarness.eventually("the container runs") { await agent.status(namespace: "default", name: "waiter")?.phase == .running }
            try await NodeHarness.eventually("it printed the value") { await agent.log("waiter", "main") == "arrived\n" }
        }
    }
}

func mount(_ name: String, _ path: String, subPath: String? = nil, readOnly: Bool = false) -> VolumeMount {
    var m = VolumeMount()
    m.name = name
    m.mountPath = path
    m.subPath = subPath
    m.readOnly = readOnly
    return m
}

func env(_ name: String, _ source: EnvVarSource) -> EnvVar {
    var e = EnvVar()
    e.name = name
    e.valueFrom = source
    return e
}

func key(_ name: String, _ key: String) -> KeySelector {
    var k = KeySelector()
    k.name = name
    k.key = key
    return k
}
