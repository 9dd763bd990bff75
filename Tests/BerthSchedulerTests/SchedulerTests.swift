import BerthModel
@testable import BerthScheduler
import Testing

let gi: Int64 = 1024 * 1024 * 1024

func node(_ name: String, cpu: Int64 = 4000, memory: Int64 = 8 * gi, pods: Int64 = 110, labels: [String: String] = [:],
          taints: [Taint] = [], extended: [String: Int64] = [:], ready: Bool = true) -> NodeSpec {
    NodeSpec(name: name, labels: labels, taints: taints,
             allocatable: ResourceAmounts(cpuMilli: cpu, memory: memory, ephemeralStorage: 100 * gi, pods: pods, extended: extended),
             ready: ready)
}

func pod(_ name: String, cpu: Int64 = 0, memory: Int64 = 0, owner: String = "Deployment/web", selector: [String: String] = [:],
         tolerations: [Toleration] = [], hostPorts: [Int] = [], extended: [String: Int64] = [:], key: String? = nil) -> PodRequest {
    PodRequest(namespace: "default", name: name, owner: owner,
               requests: ResourceAmounts(cpuMilli: cpu, memory: memory, extended: extended),
               nodeSelector: selector, tolerations: tolerations, hostPorts: hostPorts, equivalenceKey: key ?? "\(owner)/\(cpu)/\(memory)/\(selector)/\(extended)")
}

@Suite struct SchedulerScoringTests {
    /// Golden values from kube-scheduler's formulas, worked by hand:
    /// n1 after the pod: cpu 3500/4000, memory 2/8 Gi → LeastAllocated (12 + 75)/2 = 43, Balanced (1 − |0.875 − 0.25|/2) = 68
    /// n2 after the pod: cpu 1500/4000, memory 7/8 Gi → LeastAllocated (62 + 12)/2 = 37, Balanced (1 − |0.375 − 0.875|/2) = 75
    /// Spread and TaintToleration give 100 on both: n1 43 + 68 + 200 + 300 = 611, n2 37 + 75 + 500 = 612.
    @Test func balancedAllocationDecidesAClosePair() {
        #expect(Scheduler.leastAllocated(3500, 4000) == 12)
        #expect(Scheduler.leastAllocated(2 * gi, 8 * gi) == 75)
        #expect(Scheduler.balanced(3500, 4000, 2 * gi, 8 * gi) == 68)
        #expect(Scheduler.balanced(1500, 4000, 7 * gi, 8 * gi) == 75)
        let s = Scheduler(nodes: [node("n1"), node("n2")])
        s.assume(pod("existing-1", cpu: 3000, memory: 1 * gi, owner: "Deployment/other"), onNode: "n1")
        s.assume(pod("existing-2", cpu: 1000, memory: 6 * gi, owner: "Deployment/other"), onNode: "n2")
        #expect(s.schedule(pod("p", cpu: 500, memory: 1 * gi)) == .bind(node: "n2"))
    }

    @Test func podsOfOneOwnerSpreadOverNodes() {
        let s = Scheduler(nodes: [node("n1"), node("n2"), node("n3")])
        var placed: [String: Int] = [:]
        for i in 0..<9 {
            if case .bind(let n) = s.schedule(pod("web-\(i)", cpu: 100, memory: gi / 4)) { placed[n, default: 0] += 1 }
        }
        #expect(placed == ["n1": 3, "n2": 3, "n3": 3])
    }

    @Test func preferNoScheduleTaintsAreAvoidedNotForbidden() {
        let tainted = node("n1", taints: [Taint(key: "spot", value: "true", effect: .preferNoSchedule)])
        let s = Scheduler(nodes: [tainted, node("n2")])
        #expect(s.schedule(pod("a", cpu: 100)) == .bind(node: "n2"))
        let only = Scheduler(nodes: [tainted])
        #expect(only.schedule(pod("b", cpu: 100)) == .bind(node: "n1"))
    }
}

@Suite struct SchedulerFilterTests {
    @Test func reasonsCountEveryNode() {
        let s = Scheduler(nodes: [node("n1", memory: gi), node("n2", memory: gi), node("n3", memory: gi, labels: ["disk": "hdd"])])
        let d = s.schedule(pod("big", memory: 2 * gi, selector: ["disk": "hdd"]))
        #expect(d == .unschedulable(reason: "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector."))
        let d2 = s.schedule(pod("big2", memory: 9 * gi))
        #expect(d2 == .unschedulable(reason: "0/3 nodes are available: 3 Insufficient memory."))
    }

    @Test func taintsTolerationsReadinessAndCordons() {
        let noSchedule = Taint(key: "dedicated", value: "gpu", effect: .noSchedule)
        let s = Scheduler(nodes: [node("n1", taints: [noSchedule]), node("n2", ready: false),
                                  NodeSpec(name: "n3", allocatable: ResourceAmounts(cpuMilli: 1000, memory: gi, pods: 10), unschedulable: true)])
        #expect(s.schedule(pod("a")) == .unschedulable(reason:
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were not ready, 1 node(s) were unschedulable."))
        var t = Toleration()
        t.key = "dedicated"
        t.op = .equal
        t.value = "gpu"
        t.effect = .noSchedule
        #expect(s.schedule(pod("b", tolerations: [t], key: "tolerating")) == .bind(node: "n1"))
        var any = Toleration()
        any.op = .exists
        #expect(s.schedule(pod("c", tolerations: [any], key: "tolerates-all")) == .bind(node: "n1"))
    }

    @Test func requiredNodeAffinity() {
        var term = NodeSelectorTerm()
        var r = NodeSelectorTerm.Requirement()
        r.key = "zone"
        r.op = .in
        r.values = ["b", "c"]
        term.matchExpressions = [r]
        var p = pod("a", key: "affinity")
        p.nodeAffinity = [term]
        let s = Scheduler(nodes: [node("n1", labels: ["zone": "a"]), node("n2", labels: ["zone": "c"])])
        #expect(s.schedule(p) == .bind(node: "n2"))
    }

    @Test func podCountHostPortsAndExtendedResources() {
        let s = Scheduler(nodes: [node("n1", pods: 1), node("gpu", extended: ["nvidia.com/gpu": 1])])
        #expect(s.schedule(pod("g1", extended: ["nvidia.com/gpu": 1])) == .bind(node: "gpu"))
        #expect(s.schedule(pod("g2", extended: ["nvidia.com/gpu": 1])) == .unschedulable(reason:
            "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."))
        let ports = Scheduler(nodes: [node("a"), node("b")])
        #expect(ports.schedule(pod("h1", hostPorts: [80], key: "hp")) == .bind(node: "a"))
        #expect(ports.schedule(pod("h2", hostPorts: [80], key: "hp")) == .bind(node: "b"))
        #expect(ports.schedule(pod("h3", hostPorts: [80], key: "hp")) == .unschedulable(reason:
            "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."))
        let full = Scheduler(nodes: [node("n1", pods: 1)])
        #expect(full.schedule(pod("x")) == .bind(node: "n1"))
        #expect(full.schedule(pod("y")) == .unschedulable(reason: "0/1 nodes are available: 1 Too many pods."))
        full.forget(pod("x"), onNode: "n1")
        #expect(full.schedule(pod("y")) == .bind(node: "n1"))
    }

    @Test func adaptiveShareOfNodesToScore() {
        func share(_ n: Int) -> Int { Scheduler(nodes: (0..<n).map { node("n\($0)") }).feasibleNodesToFind() }
        #expect(share(50) == 50)
        #expect(share(1000) == 420)
        #expect(share(5000) == 500)
        #expect(share(15000) == 750)
    }
}
