#if canImport(Glibc)
import Glibc
#endif

/// The `data` of runc's `events` stats, in runc 1.1's shape: what runc's clients and scripts parse. A field
/// runc leaves out when zero (its `omitempty`) is left out here too; a controller the container has no
/// directory in gives its empty object.
extension Cgroup {
    public var runcStats: [String: Any] {
        version == .v2 ? runcStatsV2 : runcStatsV1
    }

    private var runcStatsV1: [String: Any] {
        var cpu: [String: Any] = ["usage": [String: Any](), "throttling": [String: Any]()]
        if let acct = v1("cpuacct") ?? v1("cpu") {
            // cpuacct.stat counts clock ticks, as runc reads it.
            let ticks = Cgroup.keyed(acct + "/cpuacct.stat")
            let tick = UInt64(1_000_000_000) / UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
            var usage: [String: Any] = ["kernel": (ticks["system"] ?? 0) * tick, "user": (ticks["user"] ?? 0) * tick]
            usage.omittingZero("total", Cgroup.number(acct + "/cpuacct.usage"))
            usage.omittingEmpty("percpu", Cgroup.numbers(acct + "/cpuacct.usage_percpu"))
            usage.omittingEmpty("percpu_kernel", Cgroup.numbers(acct + "/cpuacct.usage_percpu_sys"))
            usage.omittingEmpty("percpu_user", Cgroup.numbers(acct + "/cpuacct.usage_percpu_user"))
            cpu["usage"] = usage
        }
        if let dir = v1("cpu") {
            let s = Cgroup.keyed(dir + "/cpu.stat")
            cpu["throttling"] = Cgroup.throttling(periods: s["nr_periods"], throttled: s["nr_throttled"], nanos: s["throttled_time"])
        }
        var cpuset: [String: Any] = [:]
        if let dir = v1("cpuset") {
            cpuset.omittingEmpty("cpus", Cgroup.cpuList(Files.readText(dir + "/cpuset.cpus", limit: 65536) ?? ""))
            cpuset.omittingEmpty("mems", Cgroup.cpuList(Files.readText(dir + "/cpuset.mems", limit: 65536) ?? ""))
            for key in ["cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                        "memory_spread_slab", "memory_pressure", "sched_load_balance"] {
                cpuset[key] = Cgroup.number(dir + "/cpuset." + key) ?? 0
            }
            cpuset["sched_relax_domain_level"] = Files.readText(dir + "/cpuset.sched_relax_domain_level", limit: 64)
                .flatMap { Int64($0.split(separator: "\n").first ?? "") } ?? Int64(0)
        }
        var memory: [String: Any] = [:]
        if let dir = v1("memory") {
            let raw = Cgroup.keyed(dir + "/memory.stat")
            memory.omittingZero("cache", raw["cache"])
            memory["usage"] = Cgroup.memoryEntry(dir, "memory.")
            memory["swap"] = Cgroup.memoryEntry(dir, "memory.memsw.")
            memory["kernel"] = Cgroup.memoryEntry(dir, "memory.kmem.")
            memory["kernelTCP"] = Cgroup.memoryEntry(dir, "memory.kmem.tcp.")
            if !raw.isEmpty { memory["raw"] = raw as [String: Any] }
        }
        var pids: [String: Any] = [:]
        if let dir = v1("pids") {
            pids.omittingZero("current", Cgroup.number(dir + "/pids.current"))
            pids.omittingZero("limit", Cgroup.number(dir + "/pids.max"))
        }
        var blkio: [String: Any] = [:]
        if let dir = v1("blkio") {
            // The CFQ scheduler's files where the kernel has them, else the throttling layer's (as runc).
            let cfq = Files.exists(dir + "/blkio.io_service_bytes_recursive")
            let prefix = dir + (cfq ? "/blkio." : "/blkio.throttle.")
            blkio.omittingEmpty("ioServiceBytesRecursive", Cgroup.blkioEntries(prefix + "io_service_bytes_recursive"))
            blkio.omittingEmpty("ioServicedRecursive", Cgroup.blkioEntries(prefix + "io_serviced_recursive"))
            if cfq {
                for (key, file) in [("ioQueueRecursive", "io_queued_recursive"), ("ioServiceTimeRecursive", "io_service_time_recursive"),
                                    ("ioWaitTimeRecursive", "io_wait_time_recursive"), ("ioMergedRecursive", "io_merged_recursive"),
                                    ("ioTimeRecursive", "time_recursive"), ("sectorsRecursive", "sectors_recursive")] {
                    blkio.omittingEmpty(key, Cgroup.blkioEntries(dir + "/blkio." + file))
                }
            }
        }
        var hugetlb: [String: Any] = [:]
        if let dir = v1("hugetlb") {
            for size in Cgroup.hugepageSizes {
                var entry: [String: Any] = ["failcnt": Cgroup.number(dir + "/hugetlb.\(size).failcnt") ?? 0]
                entry.omittingZero("usage", Cgroup.number(dir + "/hugetlb.\(size).usage_in_bytes"))
                entry.omittingZero("max", Cgroup.number(dir + "/hugetlb.\(size).max_usage_in_bytes"))
                hugetlb[size] = entry
            }
        }
        return ["cpu": cpu, "cpuset": cpuset, "memory": memory, "pids": pids, "blkio": blkio, "hugetlb": hugetlb,
                "intel_rdt": [String: Any](), "network_interfaces": JSONNull()]
    }

    private var runcStatsV2: [String: Any] {
        let dir = paths[0]
        let s = Cgroup.keyed(dir + "/cpu.stat")
        var usage: [String: Any] = ["kernel": (s["system_usec"] ?? 0) * 1000, "user": (s["user_usec"] ?? 0) * 1000]
        usage.omittingZero("total", s["usage_usec"].map { $0 * 1000 })
        let cpu: [String: Any] = ["usage": usage,
                                  "throttling": Cgroup.throttling(periods: s["nr_periods"], throttled: s["nr_throttled"], nanos: s["throttled_usec"].map { $0 * 1000 })]
        var cpuset: [String: Any] = [:]
        cpuset.omittingEmpty("cpus", Cgroup.cpuList(Files.readText(dir + "/cpuset.cpus.effective", limit: 65536) ?? ""))
        cpuset.omittingEmpty("mems", Cgroup.cpuList(Files.readText(dir + "/cpuset.mems.effective", limit: 65536) ?? ""))
        // "max" is no limit: runc says so with the largest number.
        func limit(_ file: String) -> UInt64 { Cgroup.number(dir + "/" + file) ?? UInt64.max }
        let raw = Cgroup.keyed(dir + "/memory.stat")
        var memory: [String: Any] = [:]
        memory.omittingZero("cache", raw["file"])
        var used: [String: Any] = ["limit": limit("memory.max"), "failcnt": Cgroup.keyed(dir + "/memory.events")["max"] ?? 0]
        used.omittingZero("usage", Cgroup.number(dir + "/memory.current"))
        used.omittingZero("max", Cgroup.number(dir + "/memory.peak"))
        memory["usage"] = used
        var swap: [String: Any] = ["limit": limit("memory.swap.max"), "failcnt": Cgroup.keyed(dir + "/memory.swap.events")["max"] ?? 0]
        swap.omittingZero("usage", Cgroup.number(dir + "/memory.swap.current"))
        memory["swap"] = swap
        memory["kernel"] = ["limit": 0, "failcnt": 0] as [String: Any]
        memory["kernelTCP"] = ["limit": 0, "failcnt": 0] as [String: Any]
        if !raw.isEmpty { memory["raw"] = raw as [String: Any] }
        var pids: [String: Any] = [:]
        pids.omittingZero("current", Cgroup.number(dir + "/pids.current"))
        pids.omittingZero("limit", Cgroup.number(dir + "/pids.max"))
        // io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. ..." per device, as runc maps it.
        var bytes: [[String: Any]] = [], ios: [[String: Any]] = []
        for line in (Files.readText(dir + "/io.stat", limit: 1 << 20) ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let device = fields.first, case let numbers = device.split(separator: ":"), numbers.count == 2,
                  let major = UInt64(numbers[0]), let minor = UInt64(numbers[1]) else { continue }
            var values: [String: UInt64] = [:]
            for field in fields.dropFirst() {
                let kv = field.split(separator: "=")
                if kv.count == 2, let v = UInt64(kv[1]) { values[String(kv[0])] = v }
            }
            for (op, key) in [("Read", "rbytes"), ("Write", "wbytes")] { bytes.append(Cgroup.blkioEntry(major, minor, op, values[key] ?? 0)) }
            for (op, key) in [("Read", "rios"), ("Write", "wios")] { ios.append(Cgroup.blkioEntry(major, minor, op, values[key] ?? 0)) }
        }
        var blkio: [String: Any] = [:]
        blkio.omittingEmpty("ioServiceBytesRecursive", bytes)
        blkio.omittingEmpty("ioServicedRecursive", ios)
        var hugetlb: [String: Any] = [:]
        for size in Cgroup.hugepageSizes where Files.exists(dir + "/hugetlb.\(size).current") {
            var entry: [String: Any] = ["failcnt": Cgroup.keyed(dir + "/hugetlb.\(size).events")["max"] ?? 0]
            entry.omittingZero("usage", Cgroup.number(dir + "/hugetlb.\(size).current"))
            hugetlb[size] = entry
        }
        return ["cpu": cpu, "cpuset": cpuset, "memory": memory, "pids": pids, "blkio": blkio, "hugetlb": hugetlb,
                "intel_rdt": [String: Any](), "network_interfaces": JSONNull()]
    }

    /// usage, max usage, failure count and limit of one v1 memory counter (memory., memory.memsw., ...); a
    /// counter the kernel lacks (no swap accounting, no kmem) is runc's zero entry.
    static func memoryEntry(_ dir: String, _ prefix: String) -> [String: Any] {
        var entry: [String: Any] = ["limit": number(dir + "/" + prefix + "limit_in_bytes") ?? 0,
                                    "failcnt": number(dir + "/" + prefix + "failcnt") ?? 0]
        entry.omittingZero("usage", number(dir + "/" + prefix + "usage_in_bytes"))
        entry.omittingZero("max", number(dir + "/" + prefix + "max_usage_in_bytes"))
        return entry
    }

    static func throttling(periods: UInt64?, throttled: UInt64?, nanos: UInt64?) -> [String: Any] {
        var t: [String: Any] = [:]
        t.omittingZero("periods", periods)
        t.omittingZero("throttledPeriods", throttled)
        t.omittingZero("throttledTime", nanos)
        return t
    }

    /// A file of numbers separated by spaces (cpuacct.usage_percpu).
    static func numbers(_ path: String) -> [UInt64] {
        (Files.readText(path, limit: 1 << 20) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
    }

    /// "0-3,8" as [0, 1, 2, 3, 8].
    static func cpuList(_ text: String) -> [Int] {
        var out: [Int] = []
        for part in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let ends = part.split(separator: "-").compactMap { UInt16($0) }
            if ends.count == 1 { out.append(Int(ends[0])) }
            if ends.count == 2, ends[0] <= ends[1] { out.append(contentsOf: Int(ends[0])...Int(ends[1])) }
        }
        return out
    }

    /// blkio's "MAJ:MIN Op value" lines (the "Total" summary line has no device and is left out).
    static func blkioEntries(_ path: String) -> [[String: Any]] {
        (Files.readText(path, limit: 1 << 20) ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 3 || fields.count == 2 else { return nil }
            let numbers = fields[0].split(separator: ":")
            guard numbers.count == 2, let major = UInt64(numbers[0]), let minor = UInt64(numbers[1]),
                  let value = UInt64(fields[fields.count - 1]) else { return nil }
            return blkioEntry(major, minor, fields.count == 3 ? String(fields[1]) : "", value)
        }
    }

    static func blkioEntry(_ major: UInt64, _ minor: UInt64, _ op: String, _ value: UInt64) -> [String: Any] {
        var e: [String: Any] = [:]
        e.omittingZero("major", major)
        e.omittingZero("minor", minor)
        if !op.isEmpty { e["op"] = op }
        e.omittingZero("value", value)
        return e
    }

    /// The machine's huge page sizes as runc names them ("2MB", "1GB").
    static var hugepageSizes: [String] {
        Files.list("/sys/kernel/mm/hugepages").compactMap { name -> String? in
            guard name.hasPrefix("hugepages-"), name.hasSuffix("kB"), let kb = UInt64(name.dropFirst(10).dropLast(2)) else { return nil }
            return kb >= 1 << 20 && kb % (1 << 20) == 0 ? "\(kb >> 20)GB" : kb >= 1024 && kb % 1024 == 0 ? "\(kb >> 10)MB" : "\(kb)KB"
        }.sorted()
    }
}

/// JSON's null (jsonText writes it for any value it does not know).
private struct JSONNull {}

private extension Dictionary where Key == String, Value == Any {
    mutating func omittingZero(_ key: String, _ value: UInt64?) {
        if let value, value != 0 { self[key] = value }
    }

    mutating func omittingEmpty<T>(_ key: String, _ values: [T]) {
        if !values.isEmpty { self[key] = values }
    }
}
