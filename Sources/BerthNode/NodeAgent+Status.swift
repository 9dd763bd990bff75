import BerthLinux
import BerthModel
import Foundation

/// CPU (thousandths of a core, averaged since the previous sample) and memory (working set) in use.
public struct ResourceUsage: Sendable, Hashable, Codable {
    public var cpuMilli: Int64?
    public var memoryBytes: Int64?
}

public struct PodUsage: Sendable, Hashable, Codable {
    public var pod: ResourceUsage
    public var containers: [String: ResourceUsage]
}

/// What a node reports about itself: capacity, allocatable after the reserve, conditions, and the labels,
/// taints and extended resources of its configuration.
public struct NodeStatus: Sendable, Hashable, Codable {
    public struct Resources: Sendable, Hashable, Codable {
        public var cpuMilli: Int64
        public var memory: Int64
        public var pods: Int64
        public var extended: [String: Int64]
    }
    public var name: String
    public var labels: [String: String]
    public var taints: [Taint]
    public var capacity: Resources
    public var allocatable: Resources
    /// Ready, MemoryPressure, DiskPressure, PIDPressure.
    public var conditions: [PodCondition]
}

extension NodeAgent {
    /// Usage of every running pod by "namespace/name". CPU needs two samples: the first call gives memory only.
    public func usage() -> [String: PodUsage] {
        let now = monotonicSeconds()
        var out: [String: PodUsage] = [:]
        for (key, p) in pods where p.terminatingSince == nil {
            var containers: [String: ResourceUsage] = [:]
            var cpuTotal: Int64?, memTotal: Int64?
            for r in p.runs where isRunning(r) {
                guard let id = r.runtimeID, let s = try? runtime.stats(id: id) else { continue }
                var u = ResourceUsage(memoryBytes: s.workingSetBytes.map(Int64.init))
                if let ns = s.cpuUsageNanos {
                    if let last = cpuSamples[id], now > last.at, ns >= last.usage {
                        u.cpuMilli = Int64(Double(ns - last.usage) / 1e6 / (now - last.at))
                    }
                    cpuSamples[id] = (ns, now)
                }
                if let c = u.cpuMilli { cpuTotal = (cpuTotal ?? 0) + c }
                if let m = u.memoryBytes { memTotal = (memTotal ?? 0) + m }
                containers[r.name] = u
            }
            out[key] = PodUsage(pod: ResourceUsage(cpuMilli: cpuTotal, memoryBytes: memTotal), containers: containers)
        }
        // Samples of containers that are gone.
        let live = Set(pods.values.flatMap { $0.runs.compactMap(\.runtimeID) })
        cpuSamples = cpuSamples.filter { live.contains($0.key) }
        return out
    }

    public func nodeStatus() -> NodeStatus {
        let meminfo = Files.readText("/proc/meminfo", limit: 65536) ?? ""
        func kib(_ field: String) -> Int64 {
            let line = meminfo.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            return (Int64(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        let cpus = Int64(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let capacity = NodeStatus.Resources(cpuMilli: cpus * 1000, memory: kib("MemTotal"), pods: config.maxPods, extended: config.extendedResources)
        var allocatable = capacity
        allocatable.cpuMilli = max(capacity.cpuMilli - config.reservedCPUMilli, 0)
        allocatable.memory = max(capacity.memory - config.reservedMemory, 0)
        // The kubelet's default eviction thresholds: memory.available < 100Mi, nodefs.available < 10%,
        // and (for pids) more than 90% of pid_max in use.
        let memoryPressure = kib("MemAvailable") < 100 << 20
        var fs = statvfs()
        let diskPressure = statvfs(config.stateDir, &fs) == 0 && fs.f_blocks > 0 && Double(fs.f_bavail) / Double(fs.f_blocks) < 0.1
        let pidMax = Double((Files.readText("/proc/sys/kernel/pid_max", limit: 64) ?? "").split(separator: "\n").first.flatMap { Double($0) } ?? 4_194_304)
        let tasks = Double((Files.readText("/proc/loadavg", limit: 256) ?? "").split(separator: " ").dropFirst(3).first?.split(separator: "/").last.flatMap { Double($0) } ?? 0)
        let pidPressure = tasks > pidMax * 0.9
        return NodeStatus(name: config.nodeName, labels: config.labels.merging(["kubernetes.io/hostname": config.nodeName]) { a, _ in a },
                          taints: config.taints, capacity: capacity, allocatable: allocatable,
                          conditions: [PodCondition(type: "Ready", status: networkReady,
                                                    reason: networkReady ? "KubeletReady" : podCIDR == nil ? "NoPodCIDR" : "NetworkNotReady"),
                                       PodCondition(type: "MemoryPressure", status: memoryPressure),
                                       PodCondition(type: "DiskPressure", status: diskPressure),
                                       PodCondition(type: "PIDPressure", status: pidPressure),
                                       // Services do not reach their pods from this node.
                                       PodCondition(type: "NetworkUnavailable", status: podCIDR == nil || servicesError != nil,
                                                    reason: servicesError ?? podCIDRProblem)])
    }
}
