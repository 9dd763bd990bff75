import BerthCluster
import BerthModel

public struct JobPlan: Sendable {
    public var creates: [PodRecord] = []
    public var deletes: [String] = []
    public var status = JobStatus()
    /// When the Job must be looked at again (its backoff ends, or its deadline).
    public var wakeAt: Double?
}

/// Kubernetes' Job semantics: run pods until `completions` succeed, at most `parallelism` at a time;
/// failures (failed pods, and container restarts under OnFailure) count against `backoffLimit`, each new
/// pod after a failure waiting 10 s doubling up to 6 min; `activeDeadlineSeconds` ends the Job.
public enum JobSync {
    public static let backoffBase = 10.0
    public static let backoffCap = 360.0

    public static func backoff(failures: Int) -> Double {
        guard failures > 0 else { return 0 }
        return min(backoffCap, backoffBase * Double(1 << min(failures - 1, 20)))
    }

    public static func sync(namespace: String, name: String, spec: JobSpec, ownerKind: String = "Job", pods: [PodRecord],
                            previous: JobStatus?, now: Double, nameSuffix: () -> String) -> JobPlan {
        var plan = JobPlan()
        var s = previous ?? JobStatus()
        if s.startTime == nil { s.startTime = now }
        let live = pods.filter { !$0.terminating }
        let succeeded = live.filter { $0.phase == .succeeded }.count
        let failedPods = live.filter { $0.phase == .failed }
        let active = live.filter { $0.isActive }
        let restarts = spec.template.spec.restartPolicy == .onFailure ? live.map(\.restarts).reduce(0, +) : 0
        let failures = failedPods.count + restarts
        if failures > s.failed, failures > 0 { s.lastFailure = now }
        s.succeeded = succeeded
        s.failed = failures
        s.active = active.count
        if s.isFinished {
            plan.status = s
            return plan
        }
        let completions = spec.completions ?? (spec.parallelism == nil ? 1 : nil)
        func finish(_ type: String, _ reason: String, _ message: String) {
            plan.deletes += active.map(\.name)
            s.active = 0
            s.conditions = [Condition(type: type, status: true, reason: reason, message: message)]
            if type == "Complete" { s.completionTime = now }
        }
        if failures > spec.backoffLimit {
            finish("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        } else if let deadline = spec.activeDeadlineSeconds, now - (s.startTime ?? now) >= Double(deadline) {
            finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        } else if let completions, succeeded >= completions {
            finish("Complete", "Completed", "\(succeeded) of \(completions) completions succeeded")
        } else if completions == nil && succeeded > 0 && active.isEmpty {
            finish("Complete", "Completed", "a pod succeeded and no other runs")
        } else {
            let parallelism = spec.parallelism ?? 1
            let remaining = completions.map { $0 - succeeded } ?? (succeeded > 0 ? 0 : parallelism)
            let wanted = max(0, min(parallelism, remaining) - active.count)
            let readyAt = (s.lastFailure ?? 0) + backoff(failures: failures)
            if wanted > 0 && now >= readyAt {
                for _ in 0..<wanted {
                    var labels = spec.template.labels
                    labels["job-name"] = name
                    plan.creates.append(PodRecord(namespace: namespace, name: "\(name)-\(nameSuffix())", ownerKind: ownerKind,
                                                  ownerName: name, revisionHash: "", labels: labels, spec: spec.template.spec, createdAt: now))
                }
                s.active += wanted
            } else if wanted > 0 {
                plan.wakeAt = readyAt
            }
            if let deadline = spec.activeDeadlineSeconds {
                let end = (s.startTime ?? now) + Double(deadline)
                plan.wakeAt = min(plan.wakeAt ?? end, end)
            }
        }
        plan.status = s
        return plan
    }
}
