import BerthCluster
import BerthModel

/// A Job a CronJob started, as the CronJob controller tracks it.
public struct ScheduledJob: Codable, Sendable, Hashable {
    public var name: String
    public var scheduledTime: Double
    /// nil while running; true completed, false failed.
    public var succeeded: Bool?
}

public struct CronJobPlan: Sendable {
    /// A Job to start: its name and the time it stands for.
    public var start: ScheduledJob?
    public var deleteJobs: [String] = []
    public var lastScheduleTime: Double?
}

/// Kubernetes' CronJob: at each scheduled time start a Job (the latest missed time only), unless
/// suspended or later than startingDeadlineSeconds; Forbid skips while a Job runs, Replace stops it;
/// finished Jobs beyond the history limits are deleted, oldest first.
public enum CronJobSync {
    public static func sync(_ cj: CronJob, jobs: [ScheduledJob], lastScheduleTime: Double?, createdAt: Double, now: Double) -> CronJobPlan {
        var plan = CronJobPlan()
        plan.lastScheduleTime = lastScheduleTime
        let finished = jobs.filter { $0.succeeded != nil }.sorted { $0.scheduledTime < $1.scheduledTime }
        let ok = finished.filter { $0.succeeded == true }, failed = finished.filter { $0.succeeded == false }
        plan.deleteJobs += ok.dropLast(cj.successfulJobsHistoryLimit).map(\.name)
        plan.deleteJobs += failed.dropLast(cj.failedJobsHistoryLimit).map(\.name)
        guard !cj.suspend, let schedule = try? CronSchedule(parsing: cj.schedule) else { return plan }
        // The latest scheduled time that has come, looking at no more than 100 missed ones.
        var due: Double?
        var t = lastScheduleTime ?? createdAt
        for _ in 0..<100 {
            guard let next = schedule.next(after: t), next <= now else { break }
            due = next
            t = next
        }
        guard let due else { return plan }
        if let deadline = cj.startingDeadlineSeconds, now - due > Double(deadline) {
            plan.lastScheduleTime = due
            return plan
        }
        let running = jobs.filter { $0.succeeded == nil }
        switch cj.concurrencyPolicy {
        case .forbid where !running.isEmpty:
            return plan
        case .replace:
            plan.deleteJobs += running.map(\.name)
        default:
            break
        }
        let name = "\(cj.metadata.name)-\(Int64(due) / 60)"
        guard !jobs.contains(where: { $0.name == name }) else { return plan }
        plan.start = ScheduledJob(name: name, scheduledTime: due, succeeded: nil)
        plan.lastScheduleTime = due
        return plan
    }
}
