import BerthCluster
@testable import BerthController
import BerthModel
import BerthStore
import Foundation
import Testing

final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var t = 1000.0
    func now() -> Double { lock.withLock { t } }
    func advance(_ s: Double) { lock.withLock { t += s } }
}

func withControlPlane(_ body: (ControlPlane, EmbeddedStore, TestClock, String) async throws -> Void) async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-cp-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let clock = TestClock()
    var options = EmbeddedStore.Options()
    options.clock = { clock.now() }
    let store = try EmbeddedStore(directory: dir, options: options)
    let cp = try await ControlPlane(store: store, clock: { clock.now() })
    try await body(cp, store, clock, dir)
}

func node(_ name: String, cpu: Int64 = 4000, ready: Bool = true) -> NodeRecord {
    NodeRecord(name: name, allocatable: .init(cpuMilli: cpu, memory: 8 << 30, pods: 110), ready: ready)
}

func state(_ objects: [KubeObject]) -> DesiredState {
    var s = DesiredState()
    for o in objects { s.objects[o.key] = SourcedObject(object: o, origin: SourceLocation(path: "m.yaml", line: 1, column: 1)) }
    return s
}

func service(_ name: String = "web") -> KubeObject {
    var s = Service()
    s.metadata.name = name
    s.selector = ["app": name]
    var p = Service.Port()
    p.port = 80
    s.ports = [p]
    return .service(s)
}

func configMap(_ name: String, annotations: [String: String] = [:]) -> KubeObject {
    var c = ConfigMap()
    c.metadata.name = name
    c.metadata.annotations = annotations
    return .configMap(c)
}

let webKey = ObjectKey(kind: .deployment, namespace: "default", name: "web")

/// Reports every pod of web as running and ready, with an IP, as node agents would.
func runAll(_ cp: ControlPlane) async throws {
    for (i, p) in await cp.pods(of: webKey).enumerated() where !p.terminating && p.nodeName != nil {
        try await cp.reportPod(namespace: p.namespace, name: p.name, phase: .running, ready: true, podIP: "10.244.0.\(i + 2)")
    }
    try await cp.reconcile()
}

@Suite(.serialized) struct ControlPlaneTests {
    @Test func deployScheduleServeAndSurviveARestart() async throws {
        try await withControlPlane { cp, store, clock, dir in
            try await cp.registerNode(node("n1"))
            try await cp.registerNode(node("n2"))
            try await cp.apply(state([.deployment(deployment(replicas: 3)), service()]))
            let pods = await cp.pods(of: webKey)
            #expect(pods.count == 3)
            #expect(pods.allSatisfy { $0.nodeName != nil })
            #expect(Set(pods.compactMap(\.nodeName)) == ["n1", "n2"])
            try await runAll(cp)
            let endpoints = await cp.endpoints(of: ObjectKey(kind: .service, namespace: "default", name: "web"))
            #expect(endpoints?.addresses.count == 3)
            #expect(endpoints?.addresses.allSatisfy { $0.ports == ["80/TCP": 80] } == true)
            #expect(await cp.status(of: webKey)?.availableReplicas == 3)
            // Each node was given a pod network, stored for its agent.
            let networks = try await store.list(prefix: ClusterKey.podCIDRs.path).values.map { try JSONDecoder().decode(PodCIDRRecord.self, from: Data($0.value)) }
            #expect(networks.map(\.node) == ["n1", "n2"] && Set(networks.compactMap(\.cidr)) == ["10.244.0.0/24", "10.244.1.0/24"])
            // Everything is in the store: a new control plane over it sees the same pods.
            let again = try await ControlPlane(store: store, clock: { clock.now() })
            #expect(await again.pods(of: webKey).map(\.name) == pods.map(\.name))
            _ = dir
        }
    }

    @Test func pruneWhatLeftGitAndGuardAgainstDeletingEverything() async throws {
        try await withControlPlane { cp, _, _, _ in
            try await cp.registerNode(node("n1"))
            try await cp.apply(state([.deployment(deployment(replicas: 2)), service(), configMap("settings")]))
            try await runAll(cp)
            // Nothing of what berth created is in this commit: refused.
            await #expect(throws: ControlPlaneError.self) { try await cp.apply(state([configMap("other")])) }
            await #expect(throws: ControlPlaneError.self) { try await cp.apply(state([])) }
            #expect(await cp.pods(of: webKey).filter { !$0.terminating }.count == 2)
            // The Deployment and Service leave Git; the ConfigMap stays.
            let pruned = try await cp.apply(state([configMap("settings")]))
            #expect(pruned == [webKey, ObjectKey(kind: .service, namespace: "default", name: "web")].sorted())
            #expect(await cp.pods(of: webKey).allSatisfy(\.terminating))
            #expect(await cp.endpoints(of: ObjectKey(kind: .service, namespace: "default", name: "web")) == nil)
            for p in await cp.pods(of: webKey) { try await cp.podStopped(namespace: p.namespace, name: p.name) }
            #expect(await cp.pods(of: webKey).isEmpty)
            // Opting in: with the annotation, or --allow-empty.
            try await cp.apply(state([configMap("marker", annotations: [ControlPlane.allowPruneAllAnnotation: "true"])]))
            try await cp.apply(state([]), allowEmpty: true)
            #expect(await cp.inventoryKeys.isEmpty)
        }
    }

    @Test func unschedulablePodsWaitWithAReasonAndBackOff() async throws {
        try await withControlPlane { cp, _, clock, _ in
            try await cp.registerNode(node("small", cpu: 100))
            var d = deployment(replicas: 1)
            var c = d.template.spec.containers[0]
            c.resources.requests["cpu"] = try Quantity(parsing: "2")
            d.template.spec.containers = [c]
            try await cp.apply(state([.deployment(d)]))
            let pod = try #require(await cp.pods(of: webKey).first)
            #expect(pod.nodeName == nil)
            #expect(pod.unschedulableReason == "0/1 nodes are available: 1 Insufficient cpu.")
            // A big node arrives; within the backoff nothing happens, after it the pod is placed.
            try await cp.registerNode(node("big", cpu: 8000))
            try await cp.reconcile()
            #expect(await cp.pods(of: webKey).first?.nodeName == nil)
            clock.advance(1.1)
            try await cp.reconcile()
            #expect(await cp.pods(of: webKey).first?.nodeName == "big")
            #expect(await cp.pods(of: webKey).first?.unschedulableReason == nil)
        }
    }

    /// A lost node's pods are removed at once, not left terminating: the node fenced itself (its agent
    /// stops them when it cannot renew its lease), and nobody is left to report them stopped.
    @Test func podsOnALostNodeAreReplacedElsewhere() async throws {
        try await withControlPlane { cp, _, clock, _ in
            try await cp.registerNode(node("n1"))
            try await cp.apply(state([.deployment(deployment(replicas: 2))]))
            try await runAll(cp)
            try await cp.registerNode(node("n2"))
            try await cp.registerNode(node("n1", ready: false))
            // Not ready for less than the confirmation: nothing moves yet.
            try await cp.reconcile()
            #expect(await cp.pods(of: webKey).allSatisfy { $0.nodeName == "n1" && !$0.terminating })
            clock.advance(3.1)
            try await cp.reconcile()
            let pods = await cp.pods(of: webKey)
            #expect(pods.count == 2)
            #expect(pods.filter { !$0.terminating }.map(\.nodeName) == ["n2", "n2"])
        }
    }

    /// A node whose lease runs out (the store deletes its lease record) is not ready: no new pod goes
    /// there and its pods are replaced, unless most nodes went at once; a renewed lease makes it ready.
    @Test func aNodeWhoseLeaseRunsOutIsNotReadyUnlessMostNodesWent() async throws {
        try await withControlPlane { cp, _, clock, _ in
            for n in ["n1", "n2", "n3"] { try await cp.registerNode(node(n)) }
            try await cp.apply(state([.deployment(deployment(replicas: 3))]))
            try await runAll(cp)
            let placed = await cp.pods(of: webKey)
            #expect(Set(placed.compactMap(\.nodeName)) == ["n1", "n2", "n3"])
            let onN3 = try #require(placed.first { $0.nodeName == "n3" })
            try await cp.nodeLeaseRunsOut("n3")
            clock.advance(3.1)
            try await cp.reconcile()
            var pods = await cp.pods(of: webKey)
            #expect(!pods.contains { $0.name == onN3.name })
            #expect(pods.count == 3 && pods.allSatisfy { !$0.terminating && ($0.nodeName == "n1" || $0.nodeName == "n2") })
            try await runAll(cp)
            // Two of three gone: more likely this side is cut off; n2's pods stay where they are.
            try await cp.nodeLeaseRunsOut("n2")
            clock.advance(3.1)
            try await cp.reconcile()
            pods = await cp.pods(of: webKey).filter { !$0.terminating }
            #expect(pods.count == 3 && pods.contains { $0.nodeName == "n2" })
            // n3 renews: ready again, and what is placed next may go there. n2, now the only one gone, is lost.
            try await cp.registerNode(node("n3"))
            try await cp.apply(state([.deployment(deployment(replicas: 6))]))
            try await runAll(cp)
            let placedAgain = await cp.pods(of: webKey).filter { !$0.terminating }.compactMap(\.nodeName)
            #expect(placedAgain.count == 6)
            #expect(Set(placedAgain) == ["n1", "n3"])
        }
    }

    /// Nodes whose leases run out a moment apart (their renewals were out of phase) vanished together:
    /// the first is not taken for lost before the second is seen, so the 55% rule holds and nothing moves.
    @Test func nodesThatVanishWithinTheConfirmationAreAPartition() async throws {
        try await withControlPlane { cp, _, clock, _ in
            for n in ["n1", "n2", "n3"] { try await cp.registerNode(node(n)) }
            try await cp.apply(state([.deployment(deployment(replicas: 3))]))
            try await runAll(cp)
            let placed = await cp.pods(of: webKey).map(\.name)
            try await cp.nodeLeaseRunsOut("n1")
            clock.advance(2)
            try await cp.reconcile()
            try await cp.nodeLeaseRunsOut("n2")
            clock.advance(5)
            try await cp.reconcile()
            let pods = await cp.pods(of: webKey)
            #expect(pods.map(\.name) == placed && pods.allSatisfy { !$0.terminating })
        }
    }
}

@Suite(.serialized) struct ControlPlaneTimerTests {
    @Test func aStuckRolloutIsMarkedAtItsDeadlineWithoutAnyChange() async throws {
        try await withControlPlane { cp, _, clock, _ in
            try await cp.registerNode(node("n1"))
            var d = deployment(replicas: 1)
            d.progressDeadlineSeconds = 30
            try await cp.apply(state([.deployment(d)]))
            #expect(await cp.status(of: webKey)?.condition("Progressing")?.reason == "ReplicaSetUpdated")
            clock.advance(29)
            try await cp.reconcile()
            #expect(await cp.status(of: webKey)?.condition("Progressing")?.reason == "ReplicaSetUpdated")
            clock.advance(2)
            try await cp.reconcile()
            #expect(await cp.status(of: webKey)?.condition("Progressing")?.reason == "ProgressDeadlineExceeded")
        }
    }
}

@Suite(.serialized) struct ControlPlaneWorkloadTests {
    @Test func jobsRunToCompletion() async throws {
        try await withControlPlane { cp, _, _, _ in
            try await cp.registerNode(node("n1"))
            var j = Job()
            j.metadata.name = "migrate"
            j.spec = jobSpec(completions: 1)
            let key = ObjectKey(kind: .job, namespace: "default", name: "migrate")
            try await cp.apply(state([.job(j)]))
            let pods = await cp.pods(of: key)
            #expect(pods.count == 1 && pods[0].nodeName == "n1")
            try await cp.reportPod(namespace: "default", name: pods[0].name, phase: .succeeded, ready: false, podIP: nil)
            try await cp.reconcile()
            #expect(await cp.jobStatus(of: key)?.condition("Complete")?.status == true)
        }
    }

    @Test func cronJobsStartJobsOnSchedule() async throws {
        try await withControlPlane { cp, _, clock, _ in
            try await cp.registerNode(node("n1"))
            var c = CronJob()
            c.metadata.name = "tick"
            c.schedule = "* * * * *"
            c.jobSpec = jobSpec(completions: 1)
            try await cp.apply(state([.cronJob(c)]))
            #expect(await cp.cronJobRunKeys.isEmpty)
            clock.advance(61)
            try await cp.reconcile()
            let runs = await cp.cronJobRunKeys
            #expect(runs.count == 1)
            #expect(await cp.pods(of: runs[0]).count == 1)
            // The CronJob leaves Git: its Jobs and their pods go with it.
            try await cp.apply(state([configMap("keep")]), allowEmpty: true)
            #expect(await cp.cronJobRunKeys.isEmpty)
        }
    }

    @Test func autoscalerSetsTheReplicas() async throws {
        try await withControlPlane { cp, _, _, _ in
            try await cp.registerNode(node("n1", cpu: 16000))
            var d = deployment(replicas: 2)
            var container = d.template.spec.containers[0]
            container.resources.requests["cpu"] = Quantity(milli: 100)
            d.template.spec.containers = [container]
            var h = HorizontalPodAutoscaler()
            h.metadata.name = "web"
            h.scaleTarget.kind = "Deployment"
            h.scaleTarget.name = "web"
            h.minReplicas = 1
            h.maxReplicas = 5
            h.targetCPUUtilization = 50
            try await cp.apply(state([.deployment(d), .horizontalPodAutoscaler(h)]))
            #expect(await cp.pods(of: webKey).count == 2)
            for p in await cp.pods(of: webKey) {
                try await cp.reportPod(namespace: "default", name: p.name, phase: .running, ready: true, podIP: "10.0.0.1", cpuUsageMilli: 100)
            }
            try await cp.reconcile()
            // 100% against 50%: ceil(2 × 2) = 4.
            #expect(await cp.autoscalerStatus(of: ObjectKey(kind: .horizontalPodAutoscaler, namespace: "default", name: "web"))?.desiredReplicas == 4)
            #expect(await cp.pods(of: webKey).filter { !$0.terminating }.count == 4)
        }
    }

    @Test func daemonSetsFollowNodes() async throws {
        try await withControlPlane { cp, _, _, _ in
            try await cp.registerNode(node("n1"))
            try await cp.registerNode(node("n2"))
            var ds = DaemonSet()
            ds.metadata.name = "agent"
            ds.selector = LabelSelector(matchLabels: ["app": "agent"])
            ds.template.labels = ["app": "agent"]
            var c = Container()
            c.name = "agent"
            c.image = "host"
            ds.template.spec.containers = [c]
            let key = ObjectKey(kind: .daemonSet, namespace: "default", name: "agent")
            try await cp.apply(state([.daemonSet(ds)]))
            #expect(await cp.pods(of: key).compactMap(\.nodeName).sorted() == ["n1", "n2"])
            try await cp.registerNode(node("n3"))
            try await cp.reconcile()
            #expect(await cp.pods(of: key).compactMap(\.nodeName).sorted() == ["n1", "n2", "n3"])
            #expect(await cp.daemonSetStatus(of: key)?.desiredNumberScheduled == 3)
        }
    }
}

@Suite struct ConfigurationOrderTests {
    @Test func podsWaitForTheConfigurationTheyNeed() async throws {
        try await withControlPlane { cp, _, _, _ in
            try await cp.registerNode(node("n1"))
            var d = deployment(replicas: 1)
            var c = d.template.spec.containers[0]
            var env = EnvFromSource()
            env.source = .configMap(name: "settings", optional: false)
            c.envFrom = [env]
            d.template.spec.containers = [c]
            try await cp.apply(state([.deployment(d)]))
            #expect(await cp.pods(of: webKey).first?.waitingReason == "CreateContainerConfigError: configmap \"settings\" not found")
            // The next commit brings the ConfigMap: the pod no longer waits.
            try await cp.apply(state([.deployment(d), configMap("settings")]))
            #expect(await cp.pods(of: webKey).count == 1)
            #expect(await cp.pods(of: webKey).first?.waitingReason == nil)
        }
    }
}

@Suite(.serialized) struct ControlPlaneRestartTests {
    @Test func cronJobRunsAndStatusesSurviveARestart() async throws {
        try await withControlPlane { cp, store, clock, _ in
            try await cp.registerNode(node("n1"))
            var c = CronJob()
            c.metadata.name = "tick"
            c.schedule = "* * * * *"
            c.jobSpec = jobSpec(completions: 1)
            try await cp.apply(state([.cronJob(c), .deployment(deployment(replicas: 1))]))
            clock.advance(61)
            try await cp.reconcile()
            let runs = await cp.cronJobRunKeys
            #expect(runs.count == 1)
            let status = await cp.status(of: webKey)

            let restarted = try await ControlPlane(store: store, clock: { clock.now() })
            try await restarted.apply(state([.cronJob(c), .deployment(deployment(replicas: 1))]))
            // The run it started before is known again (not started twice, not orphaned) ...
            #expect(await restarted.cronJobRunKeys == runs)
            #expect(await restarted.pods(of: runs[0]).count == 1)
            #expect(await restarted.status(of: webKey)?.revisionHash == status?.revisionHash)
            // ... and leaves with its CronJob.
            try await restarted.apply(state([.deployment(deployment(replicas: 1))]))
            #expect(await restarted.cronJobRunKeys.isEmpty)
            #expect(await restarted.pods(of: runs[0]).allSatisfy { $0.terminating || $0.nodeName == nil })
        }
    }
}

@Suite struct PodNameTests {
    @Test func aRestartedControlPlaneDoesNotReuseNames() async throws {
        try await withControlPlane { cp, store, clock, _ in
            try await cp.registerNode(node("n1"))
            try await cp.apply(state([.deployment(deployment(replicas: 2))]))
            let before = Set(await cp.pods(of: webKey).map(\.name))
            let restarted = try await ControlPlane(store: store, clock: { clock.now() })
            try await restarted.apply(state([.deployment(deployment(replicas: 4))]))
            let after = await restarted.pods(of: webKey)
            #expect(after.count == 4 && Set(after.map(\.name)).count == 4)
            #expect(before.isSubset(of: Set(after.map(\.name))))
            // Every pod the cache holds is in the store.
            for p in after { #expect(await store.get(p.key.path) != nil) }
        }
    }
}

extension ControlPlaneTests {
    /// A bare Pod runs under its own name on a node, is not replaced when it ends, is replaced when its
    /// manifest changes, and goes when it leaves Git.
    @Test func barePodsRun() async throws {
        try await withControlPlane { cp, _, _, _ in
            try await cp.registerNode(node("n1"))
            var p = Pod()
            p.metadata.name = "debug"
            var c = Container()
            c.name = "main"
            c.image = "host"
            p.spec.containers = [c]
            let key = ObjectKey(kind: .pod, namespace: "default", name: "debug")
            try await cp.apply(state([.pod(p), configMap("keep")]))
            var pods = await cp.pods(of: key)
            #expect(pods.map(\.name) == ["debug"] && pods[0].nodeName == "n1")
            try await cp.reportPod(namespace: "default", name: "debug", phase: .succeeded, ready: false, podIP: nil)
            try await cp.reconcile()
            #expect(await cp.pods(of: key).map(\.phase) == [.succeeded])

            p.spec.containers[0].args = ["changed"]
            try await cp.apply(state([.pod(p), configMap("keep")]))
            pods = await cp.pods(of: key)
            #expect(pods.count == 1 && pods[0].terminating)
            try await cp.podStopped(namespace: "default", name: "debug")
            try await cp.reconcile()
            pods = await cp.pods(of: key)
            #expect(pods.count == 1 && !pods[0].terminating && pods[0].spec.containers[0].args == ["changed"])

            try await cp.apply(state([configMap("keep")]))
            #expect(await cp.pods(of: key).allSatisfy(\.terminating))
        }
    }
}
