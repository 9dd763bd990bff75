import BerthModel

/// Where a pod goes, or why it cannot go anywhere now.
public enum Decision: Sendable, Hashable {
    case bind(node: String)
    /// Kubernetes' wording: `0/3 nodes are available: 2 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector.`
    case unschedulable(reason: String)
}

/// kube-scheduler's algorithm over an in-memory view of the nodes: filter (ready and schedulable, pods,
/// resources, node selector and required affinity, taints, host ports), then score the feasible nodes with
/// the default plugins and weights (LeastAllocated 1, BalancedAllocation 1, owner spread 2,
/// TaintToleration 3, NodeAffinity 2). Like kube-scheduler it stops looking once it has found an adaptive
/// share of feasible nodes, starting where the previous pod stopped. Pods of one template share their
/// node-constraint checks (equivalence cache). Not thread-safe: one scheduling loop owns it.
public final class Scheduler {
    public struct Weights: Sendable, Hashable {
        public var leastAllocated: Int64 = 1
        public var balancedAllocation: Int64 = 1
        public var spread: Int64 = 2
        public var taintToleration: Int64 = 3
        public var nodeAffinity: Int64 = 2
        public init() {}
    }

    public struct Options: Sendable {
        /// nil: kube-scheduler's adaptive share (50% less 1% per 125 nodes, at least 5%, at least 100 nodes).
        public var percentageOfNodesToScore: Int?
        public var weights = Weights()
        public init() {}
    }

    // Kubernetes scores a pod without requests as if it asked for this much (scoring only, not fit).
    static let nonZeroCPU: Int64 = 100
    static let nonZeroMemory: Int64 = 200 * 1024 * 1024
    static let maxScore: Int64 = 100

    public private(set) var nodes: [NodeSpec]
    let options: Options
    // Columns per node, for a tight filter loop.
    private var allocCPU: [Int64], allocMemory: [Int64], allocEphemeral: [Int64], allocPods: [Int64]
    private var reqCPU: [Int64], reqMemory: [Int64], reqEphemeral: [Int64], reqPods: [Int64]
    private var scoreCPU: [Int64], scoreMemory: [Int64]
    private var reqExtended: [[String: Int64]]
    private var portsUsed: [Set<Int>]
    private var ownerCounts: [String: [Int32]] = [:]
    private var equivalence: [String: StaticFit] = [:]
    private var nextStart = 0
    private var index: [String: Int] = [:]

    /// What a template's constraints allow, node by node: 0 passes; otherwise an index into `reasons`.
    struct StaticFit {
        var failure: [UInt16]
        var reasons: [String]
        var preferNoScheduleUntolerated: [UInt8]
    }

    public init(nodes: [NodeSpec], options: Options = Options()) {
        self.nodes = nodes
        self.options = options
        allocCPU = nodes.map(\.allocatable.cpuMilli)
        allocMemory = nodes.map(\.allocatable.memory)
        allocEphemeral = nodes.map(\.allocatable.ephemeralStorage)
        allocPods = nodes.map(\.allocatable.pods)
        let zeros = [Int64](repeating: 0, count: nodes.count)
        reqCPU = zeros; reqMemory = zeros; reqEphemeral = zeros; reqPods = zeros
        scoreCPU = zeros; scoreMemory = zeros
        reqExtended = Array(repeating: [:], count: nodes.count)
        portsUsed = Array(repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() { index[n.name] = i }
    }

    /// How many feasible nodes to find before scoring, as kube-scheduler computes it.
    func feasibleNodesToFind() -> Int {
        let n = nodes.count
        if n < 100 { return n }
        var pct = options.percentageOfNodesToScore ?? max(5, 50 - n / 125)
        if pct >= 100 { return n }
        pct = max(pct, 1)
        return max(100, n * pct / 100)
    }

    /// Chooses a node for the pod and records the pod there.
    public func schedule(_ pod: PodRequest) -> Decision {
        let decision = place(pod)
        if case .bind(let name) = decision, let i = index[name] { assume(pod, on: i) }
        return decision
    }

    /// Records a pod on a node (bound by someone else, or re-adopted after a restart).
    public func assume(_ pod: PodRequest, onNode name: String) {
        if let i = index[name] { assume(pod, on: i) }
    }

    /// Forgets a pod that left a node.
    public func forget(_ pod: PodRequest, onNode name: String) {
        guard let i = index[name] else { return }
        let r = pod.requests
        reqCPU[i] -= r.cpuMilli; reqMemory[i] -= r.memory; reqEphemeral[i] -= r.ephemeralStorage; reqPods[i] -= 1
        scoreCPU[i] -= r.cpuMilli == 0 ? Scheduler.nonZeroCPU : r.cpuMilli
        scoreMemory[i] -= r.memory == 0 ? Scheduler.nonZeroMemory : r.memory
        for (k, v) in r.extended { reqExtended[i][k, default: 0] -= v }
        for p in pod.hostPorts { portsUsed[i].remove(p) }
        ownerCounts[pod.owner]?[i] -= 1
    }

    private func assume(_ pod: PodRequest, on i: Int) {
        let r = pod.requests
        reqCPU[i] += r.cpuMilli; reqMemory[i] += r.memory; reqEphemeral[i] += r.ephemeralStorage; reqPods[i] += 1
        scoreCPU[i] += r.cpuMilli == 0 ? Scheduler.nonZeroCPU : r.cpuMilli
        scoreMemory[i] += r.memory == 0 ? Scheduler.nonZeroMemory : r.memory
        for (k, v) in r.extended { reqExtended[i][k, default: 0] += v }
        for p in pod.hostPorts { portsUsed[i].insert(p) }
        if ownerCounts[pod.owner] == nil { ownerCounts[pod.owner] = [Int32](repeating: 0, count: nodes.count) }
        ownerCounts[pod.owner]![i] += 1
    }

    // MARK: filtering

    private func staticFit(_ pod: PodRequest) -> StaticFit {
        if let cached = equivalence[pod.equivalenceKey] { return cached }
        var fit = StaticFit(failure: [UInt16](repeating: 0, count: nodes.count), reasons: [""],
                            preferNoScheduleUntolerated: [UInt8](repeating: 0, count: nodes.count))
        var reasonIndex: [String: UInt16] = [:]
        func fail(_ i: Int, _ reason: String) {
            if let r = reasonIndex[reason] {
                fit.failure[i] = r
            } else {
                let r = UInt16(fit.reasons.count)
                fit.reasons.append(reason)
                reasonIndex[reason] = r
                fit.failure[i] = r
            }
        }
        for (i, n) in nodes.enumerated() {
            if !n.ready { fail(i, "node(s) were not ready"); continue }
            if n.unschedulable { fail(i, "node(s) were unschedulable"); continue }
            if !pod.nodeSelector.allSatisfy({ n.labels[$0.key] == $0.value })
                || (!pod.nodeAffinity.isEmpty && !pod.nodeAffinity.contains { Scheduler.matches($0, n.labels) }) {
                fail(i, "node(s) didn't match Pod's node affinity/selector")
                continue
            }
            if let t = n.taints.first(where: { ($0.effect == .noSchedule || $0.effect == .noExecute) && !$0.tolerated(by: pod.tolerations) }) {
                fail(i, "node(s) had untolerated taint {\(t.key): \(t.value)}")
                continue
            }
            let prefer = n.taints.filter { $0.effect == .preferNoSchedule && !$0.tolerated(by: pod.tolerations) }.count
            fit.preferNoScheduleUntolerated[i] = UInt8(min(prefer, 255))
        }
        equivalence[pod.equivalenceKey] = fit
        return fit
    }

    public static func matches(_ term: NodeSelectorTerm, _ labels: [String: String]) -> Bool {
        term.matchExpressions.allSatisfy { r in
            let v = labels[r.key]
            switch r.op {
            case .in: return v.map(r.values.contains) ?? false
            case .notIn: return v.map { !r.values.contains($0) } ?? true
            case .exists: return v != nil
            case .doesNotExist: return v == nil
            case .gt, .lt:
                guard let v, let n = Int64(v), let bound = r.values.first.flatMap({ Int64($0) }) else { return false }
                return r.op == .gt ? n > bound : n < bound
            }
        }
    }

    /// Dynamic filter results: 0 fits; otherwise the reason at that index of `dynamicReasons`
    /// (extended resources add their own reasons after the fixed ones).
    private var dynamicReasons = ["", "Too many pods", "Insufficient cpu", "Insufficient memory",
                                  "Insufficient ephemeral-storage", "node(s) didn't have free ports for the requested pod ports"]

    @inline(__always)
    private func dynamicFailure(_ pod: PodRequest, _ cpu: Int64, _ memory: Int64, _ ephemeral: Int64, _ i: Int) -> Int {
        if reqPods[i] >= allocPods[i] { return 1 }
        if cpu > 0 && reqCPU[i] + cpu > allocCPU[i] { return 2 }
        if memory > 0 && reqMemory[i] + memory > allocMemory[i] { return 3 }
        if ephemeral > 0 && reqEphemeral[i] + ephemeral > allocEphemeral[i] { return 4 }
        if !pod.hostPorts.isEmpty && pod.hostPorts.contains(where: portsUsed[i].contains) { return 5 }
        if !pod.requests.extended.isEmpty {
            for (k, v) in pod.requests.extended.sorted(by: { $0.key < $1.key }) where v > 0
                && (reqExtended[i][k] ?? 0) + v > (nodes[i].allocatable.extended[k] ?? 0) {
                let reason = "Insufficient \(k)"
                if let r = dynamicReasons.firstIndex(of: reason) { return r }
                dynamicReasons.append(reason)
                return dynamicReasons.count - 1
            }
        }
        return 0
    }

    private var feasibleBuffer: [Int] = []

    // MARK: placing

    private func place(_ pod: PodRequest) -> Decision {
        let n = nodes.count
        guard n > 0 else { return .unschedulable(reason: "0/0 nodes are available: no nodes.") }
        let fit = staticFit(pod)
        let want = feasibleNodesToFind()
        var feasible = feasibleBuffer
        feasible.removeAll(keepingCapacity: true)
        defer { feasibleBuffer = feasible }
        var staticFailures = [Int](repeating: 0, count: fit.reasons.count)
        var dynamicFailures = [Int](repeating: 0, count: dynamicReasons.count + 8)
        let cpu = pod.requests.cpuMilli, memory = pod.requests.memory, ephemeral = pod.requests.ephemeralStorage
        var processed = 0
        var i = nextStart
        while processed < n && feasible.count < want {
            let f = fit.failure[i]
            if f != 0 {
                staticFailures[Int(f)] += 1
            } else {
                let d = dynamicFailure(pod, cpu, memory, ephemeral, i)
                if d == 0 {
                    feasible.append(i)
                } else {
                    if d >= dynamicFailures.count { dynamicFailures += [Int](repeating: 0, count: d + 1 - dynamicFailures.count) }
                    dynamicFailures[d] += 1
                }
            }
            processed += 1
            i += 1
            if i == n { i = 0 }
        }
        nextStart = (nextStart + processed) % n
        guard !feasible.isEmpty else {
            var counts: [String: Int] = [:]
            for (r, c) in staticFailures.enumerated() where c > 0 { counts[fit.reasons[r], default: 0] += c }
            for (r, c) in dynamicFailures.enumerated() where c > 0 { counts[dynamicReasons[r], default: 0] += c }
            let parts = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
            return .unschedulable(reason: "0/\(n) nodes are available: \(parts.joined(separator: ", ")).")
        }
        if feasible.count == 1 { return .bind(node: nodes[feasible[0]].name) }
        return .bind(node: nodes[best(pod, feasible, fit)].name)
    }

    /// Scores the feasible nodes and returns the best; ties go to the first found.
    private func best(_ pod: PodRequest, _ feasible: [Int], _ fit: StaticFit) -> Int {
        let w = options.weights
        let podCPU = pod.requests.cpuMilli == 0 ? Scheduler.nonZeroCPU : pod.requests.cpuMilli
        let podMemory = pod.requests.memory == 0 ? Scheduler.nonZeroMemory : pod.requests.memory
        let owners = ownerCounts[pod.owner]
        var maxOwner: Int32 = 0
        var maxTaints: UInt8 = 0
        for i in feasible {
            if let c = owners?[i], c > maxOwner { maxOwner = c }
            maxTaints = max(maxTaints, fit.preferNoScheduleUntolerated[i])
        }
        var bestNode = feasible[0]
        var bestScore = Int64.min
        for i in feasible {
            let cpu = scoreCPU[i] + podCPU, memory = scoreMemory[i] + podMemory
            let least = (Scheduler.leastAllocated(cpu, allocCPU[i]) + Scheduler.leastAllocated(memory, allocMemory[i])) / 2
            let balanced = Scheduler.balanced(cpu, allocCPU[i], memory, allocMemory[i])
            let spread = maxOwner == 0 ? Scheduler.maxScore
                : Scheduler.maxScore * Int64(maxOwner - (owners?[i] ?? 0)) / Int64(maxOwner)
            let taints = maxTaints == 0 ? Scheduler.maxScore
                : Scheduler.maxScore - Scheduler.maxScore * Int64(fit.preferNoScheduleUntolerated[i]) / Int64(maxTaints)
            // Preferred node affinity is not implemented (a warning at validation): it scores 0 everywhere.
            let score = w.leastAllocated * least + w.balancedAllocation * balanced + w.spread * spread
                + w.taintToleration * taints + w.nodeAffinity * 0
            if score > bestScore {
                bestScore = score
                bestNode = i
            }
        }
        return bestNode
    }

    /// NodeResourcesFit with the LeastAllocated strategy, for one resource.
    static func leastAllocated(_ requested: Int64, _ capacity: Int64) -> Int64 {
        if capacity == 0 || requested > capacity { return 0 }
        return (capacity - requested) * maxScore / capacity
    }

    /// NodeResourcesBalancedAllocation for cpu and memory: 100 × (1 − standard deviation of the fractions).
    static func balanced(_ cpu: Int64, _ cpuCapacity: Int64, _ memory: Int64, _ memoryCapacity: Int64) -> Int64 {
        guard cpuCapacity > 0, memoryCapacity > 0 else { return 0 }
        let f1 = min(1, Double(cpu) / Double(cpuCapacity))
        let f2 = min(1, Double(memory) / Double(memoryCapacity))
        let std = abs(f1 - f2) / 2
        return Int64((1 - std) * Double(maxScore))
    }
}
