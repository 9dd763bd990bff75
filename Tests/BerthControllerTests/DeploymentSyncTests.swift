import BerthCluster
@testable import BerthController
import BerthModel
import Testing

func deployment(_ name: String = "web", replicas: Int = 4, image: String = "v1", surge: IntOrString = .string("25%"),
                unavailable: IntOrString = .string("25%"), strategy: Deployment.StrategyType = .rollingUpdate) -> Deployment {
    var d = Deployment()
    d.metadata.name = name
    d.replicas = replicas
    d.selector = LabelSelector(matchLabels: ["app": name])
    d.template.labels = ["app": name]
    var c = Container()
    c.name = "app"
    c.image = image
    d.template.spec.containers = [c]
    d.maxSurge = surge
    d.maxUnavailable = unavailable
    d.strategy = strategy
    return d
}

/// A tiny cluster for driving syncs: created pods land on node n1; `settle` finishes deletions and makes
/// running pods ready, as node agents would.
struct Sim {
    var pods: [PodRecord] = []
    var revisions: [RevisionRecord] = []
    var status: DeploymentStatus?
    var now = 100.0
    var counter = 0
    var readyNodes: Set<String> = ["n1"]

    mutating func sync(_ d: Deployment) -> DeploymentPlan {
        var counter = self.counter
        let nodes = readyNodes
        let plan = DeploymentSync.sync(d, pods: pods, revisions: revisions, previous: status, nodeReady: { nodes.contains($0) },
                                       now: now) { counter += 1; return String(counter) }
        self.counter = counter
        for name in plan.deletes { if let i = pods.firstIndex(where: { $0.name == name }) { pods[i].terminating = true } }
        for var p in plan.creates {
            p.nodeName = "n1"
            pods.append(p)
        }
        for r in plan.revisionWrites {
            revisions.removeAll { $0.hash == r.hash }
            revisions.append(r)
        }
        revisions.removeAll { plan.revisionDeletes.contains($0.key) }
        status = plan.status
        return plan
    }

    /// Terminating pods go; every other pod becomes ready (available at once with minReadySeconds 0).
    mutating func settle(ready: Bool = true) {
        pods.removeAll(where: \.terminating)
        now += 1
        for i in pods.indices where !pods[i].ready && ready {
            pods[i].phase = .running
            pods[i].ready = true
            pods[i].readySince = now
        }
        now += 1
    }

    func count(_ hash: String) -> Int { pods.filter { $0.revisionHash == hash && !$0.terminating }.count }
}

@Suite struct DeploymentRolloutTests {
    /// (new, old) pods after each sync, pods becoming ready between syncs, worked out with Kubernetes'
    /// reconcileNewReplicaSet / reconcileOldReplicaSets arithmetic. E.g. 10 replicas at 25%/25%: surge 3,
    /// unavailable 2; sync 1 creates min(13 − 10, 10) = 3 new and may scale old down by 13 − 8 − 3 = 2.
    @Test(arguments: [
        (4, IntOrString.string("25%"), IntOrString.string("25%"), [[1, 3], [2, 2], [3, 1], [4, 0]]),
        (3, .int(0), .int(1), [[0, 2], [1, 2], [1, 1], [2, 1], [2, 0], [3, 0]]),
        (3, .int(1), .int(0), [[1, 3], [1, 2], [2, 2], [2, 1], [3, 1], [3, 0]]),
        (10, .string("25%"), .string("25%"), [[3, 8], [5, 5], [8, 3], [10, 0]]),
    ])
    func rollingUpdateSteps(replicas: Int, surge: IntOrString, unavailable: IntOrString, steps: [[Int]]) {
        var sim = Sim()
        let v1 = deployment(replicas: replicas, surge: surge, unavailable: unavailable)
        _ = sim.sync(v1)
        sim.settle()
        #expect(sim.pods.count == replicas)
        let v2 = deployment(replicas: replicas, image: "v2", surge: surge, unavailable: unavailable)
        let newHash = TemplateHash.of(v2.template)
        var seen: [[Int]] = []
        for _ in 0..<20 {
            _ = sim.sync(v2)
            let snapshot = [sim.count(newHash), sim.pods.filter { $0.revisionHash != newHash && !$0.terminating }.count]
            // Never more than replicas + maxSurge pods, never fewer than replicas - maxUnavailable available.
            #expect(sim.pods.filter { !$0.terminating }.count <= replicas + (surge.scaled(total: replicas, roundUp: true) ?? 0))
            if seen.last != snapshot { seen.append(snapshot) }
            sim.settle()
            if snapshot == [replicas, 0] { break }
        }
        #expect(seen == steps)
        _ = sim.sync(v2)
        #expect(sim.status?.condition("Progressing")?.reason == "NewReplicaSetAvailable")
        #expect(sim.status?.updatedReplicas == replicas && sim.status?.availableReplicas == replicas)
    }

    @Test func revertReusesTheRevisionAndScalingMakesNone() {
        var sim = Sim()
        let a = deployment(replicas: 2), b = deployment(replicas: 2, image: "v2")
        _ = sim.sync(a)
        sim.settle()
        let hashA = TemplateHash.of(a.template)
        #expect(sim.status?.revision == 1)
        for _ in 0..<6 { _ = sim.sync(b); sim.settle() }
        #expect(sim.status?.revision == 2)
        // git revert: the template is A again, so revision A comes back with a new number and A's pod names.
        for _ in 0..<6 { _ = sim.sync(a); sim.settle() }
        #expect(sim.status?.revision == 3 && sim.status?.revisionHash == hashA)
        #expect(sim.revisions.count == 2)
        #expect(sim.pods.allSatisfy { $0.name.hasPrefix("web-\(hashA)-") })
        // Scaling: same template, same revision.
        let scaled = deployment(replicas: 5)
        let plan = sim.sync(scaled)
        #expect(plan.revisionWrites.isEmpty && plan.creates.count == 3)
        #expect(sim.status?.revision == 3)
    }

    @Test func aNewCommitTakesOverAnInFlightRollout() {
        var sim = Sim()
        _ = sim.sync(deployment(replicas: 4))
        sim.settle()
        _ = sim.sync(deployment(replicas: 4, image: "v2"))
        sim.settle()
        let v3 = deployment(replicas: 4, image: "v3")
        for _ in 0..<10 { _ = sim.sync(v3); sim.settle() }
        #expect(sim.pods.allSatisfy { $0.revisionHash == TemplateHash.of(v3.template) })
        #expect(sim.pods.count == 4)
    }

    @Test func recreateStopsEverythingFirst() {
        var sim = Sim()
        _ = sim.sync(deployment(replicas: 3, strategy: .recreate))
        sim.settle()
        let v2 = deployment(replicas: 3, image: "v2", strategy: .recreate)
        let first = sim.sync(v2)
        #expect(first.deletes.count == 3 && first.creates.isEmpty)
        let stillTerminating = sim.sync(v2)
        #expect(stillTerminating.creates.isEmpty)
        sim.settle()
        let second = sim.sync(v2)
        #expect(second.creates.count == 3)
    }

    @Test func progressDeadline() {
        var sim = Sim()
        var d = deployment(replicas: 2)
        d.progressDeadlineSeconds = 60
        _ = sim.sync(d)
        sim.now += 30
        _ = sim.sync(d)
        #expect(sim.status?.condition("Progressing")?.reason == "ReplicaSetUpdated")
        sim.now += 61
        _ = sim.sync(d)
        #expect(sim.status?.condition("Progressing") == Condition(type: "Progressing", status: false, reason: "ProgressDeadlineExceeded",
            message: "revision 1 (\(TemplateHash.of(d.template))) has timed out progressing"))
        #expect(sim.status?.condition("Available")?.status == false)
    }

    @Test func minReadySecondsDelaysAvailability() {
        var sim = Sim()
        var d = deployment(replicas: 1)
        d.minReadySeconds = 10
        _ = sim.sync(d)
        sim.settle()
        _ = sim.sync(d)
        #expect(sim.status?.readyReplicas == 1 && sim.status?.availableReplicas == 0)
        sim.now += 10
        _ = sim.sync(d)
        #expect(sim.status?.availableReplicas == 1)
    }

    @Test func selfHealingReplacesFailedPodsAndPodsOnLostNodes() {
        var sim = Sim()
        let d = deployment(replicas: 3)
        _ = sim.sync(d)
        sim.settle()
        sim.pods[0].phase = .failed
        let plan = sim.sync(d)
        #expect(plan.deletes == [sim.pods[0].name] && plan.creates.count == 1)
        sim.settle()
        sim.readyNodes = []
        let lost = sim.sync(d)
        #expect(lost.deletes.count == 3 && lost.creates.count == 3)
    }

    @Test func pausedDoesNotRollButScales() {
        var sim = Sim()
        _ = sim.sync(deployment(replicas: 2))
        sim.settle()
        var paused = deployment(replicas: 3, image: "v2")
        paused.paused = true
        let plan = sim.sync(paused)
        #expect(plan.revisionWrites.isEmpty && plan.creates.count == 1)
        #expect(plan.creates.first?.spec.containers.first?.image == "v1")
        #expect(sim.status?.condition("Progressing")?.reason == "DeploymentPaused")
    }

    @Test func revisionHistoryLimit() {
        var sim = Sim()
        for v in 1...5 {
            var d = deployment(replicas: 1, image: "v\(v)")
            d.revisionHistoryLimit = 2
            for _ in 0..<4 { _ = sim.sync(d); sim.settle() }
        }
        #expect(sim.revisions.map(\.number).sorted() == [3, 4, 5])
    }

    @Test func excessPodsGoInKubernetesOrder() {
        func pod(_ name: String, node: String?, phase: PodRecord.Phase, ready: Bool, since: Double? = nil, restarts: Int = 0, created: Double)
            -> PodRecord {
            var p = PodRecord(namespace: "default", name: name, ownerKind: "Deployment", ownerName: "web", revisionHash: "h",
                              labels: [:], spec: PodSpec(), createdAt: created)
            p.nodeName = node
            p.phase = phase
            p.ready = ready
            p.readySince = since
            p.restarts = restarts
            return p
        }
        let pods = [
            pod("ready-long", node: "n", phase: .running, ready: true, since: 10, created: 1),
            pod("ready-short", node: "n", phase: .running, ready: true, since: 50, created: 2),
            pod("unscheduled", node: nil, phase: .pending, ready: false, created: 3),
            pod("pending", node: "n", phase: .pending, ready: false, created: 4),
            pod("not-ready-restarts", node: "n", phase: .running, ready: false, restarts: 5, created: 5),
            pod("not-ready-new", node: "n", phase: .running, ready: false, created: 9),
        ]
        #expect(DeploymentSync.excessOrder(pods, now: 100).map(\.name)
                == ["unscheduled", "pending", "not-ready-restarts", "not-ready-new", "ready-short", "ready-long"])
    }
}
