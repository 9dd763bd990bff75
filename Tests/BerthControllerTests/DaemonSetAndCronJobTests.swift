import BerthCluster
@testable import BerthController
import BerthModel
import BerthScheduler
import Testing

func daemonSet(image: String = "v1", selector: [String: String] = [:]) -> DaemonSet {
    var d = DaemonSet()
    d.metadata.name = "agent"
    d.selector = LabelSelector(matchLabels: ["app": "agent"])
    d.template.labels = ["app": "agent"]
    var c = Container()
    c.name = "agent"
    c.image = image
    d.template.spec.containers = [c]
    d.template.spec.nodeSelector = selector
    return d
}

@Suite struct DaemonSetTests {
    func nodes() -> [NodeRecord] {
        [NodeRecord(name: "a", labels: ["role": "edge"], allocatable: .init(cpuMilli: 1000, memory: 1 << 30, pods: 10)),
         NodeRecord(name: "b", allocatable: .init(cpuMilli: 1000, memory: 1 << 30, pods: 10)),
         NodeRecord(name: "c", taints: [Taint(key: "dedicated", value: "db", effect: .noSchedule)],
                    allocatable: .init(cpuMilli: 1000, memory: 1 << 30, pods: 10))]
    }

    @Test func onePodPerFittingNodeAndRollingReplacement() {
        var n = 0
        let next = { () -> String in n += 1; return String(n) }
        var pods: [PodRecord] = []
        var plan = DaemonSetSync.sync(daemonSet(), nodes: nodes(), pods: pods, now: 0, nameSuffix: next)
        // c is tainted and not tolerated.
        #expect(plan.creates.map { $0.nodeName! }.sorted() == ["a", "b"])
        #expect(plan.status.desiredNumberScheduled == 2)
        pods = plan.creates.map { p in var p = p; p.phase = .running; p.ready = true; p.readySince = 0; return p }
        plan = DaemonSetSync.sync(daemonSet(), nodes: nodes(), pods: pods, now: 1, nameSuffix: next)
        #expect(plan.creates.isEmpty && plan.deletes.isEmpty && plan.status.numberAvailable == 2)
        // A new template: one node at a time (maxUnavailable 1).
        plan = DaemonSetSync.sync(daemonSet(image: "v2"), nodes: nodes(), pods: pods, now: 2, nameSuffix: next)
        #expect(plan.deletes.count == 1 && plan.creates.isEmpty)
        // Only the edge nodes: b no longer fits, so its pod goes; the selector is part of the template, so
        // a's pod is a revision behind and is replaced too (within maxUnavailable).
        plan = DaemonSetSync.sync(daemonSet(selector: ["role": "edge"]), nodes: nodes(), pods: pods, now: 3, nameSuffix: next)
        #expect(plan.deletes.first == pods.first { $0.nodeName == "b" }?.name)
        #expect(Set(plan.deletes) == Set(pods.map(\.name)))
    }
}

@Suite struct CronJobTests {
    let midnight = 1_795_219_200.0 // 2026-11-21T00:00:00Z

    func cron(_ schedule: String, policy: CronJob.ConcurrencyPolicy = .allow) -> CronJob {
        var c = CronJob()
        c.metadata.name = "report"
        c.schedule = schedule
        c.concurrencyPolicy = policy
        c.successfulJobsHistoryLimit = 2
        c.failedJobsHistoryLimit = 1
        return c
    }

    @Test func startsTheLatestDueRunOnce() {
        let c = cron("*/10 * * * *")
        let none = CronJobSync.sync(c, jobs: [], lastScheduleTime: nil, createdAt: midnight, now: midnight + 300)
        #expect(none.start == nil)
        // Two runs were missed; only the latest starts.
        let plan = CronJobSync.sync(c, jobs: [], lastScheduleTime: nil, createdAt: midnight, now: midnight + 1500)
        #expect(plan.start?.scheduledTime == midnight + 1200)
        #expect(plan.start?.name == "report-\(Int64(midnight + 1200) / 60)")
        let again = CronJobSync.sync(c, jobs: [plan.start!], lastScheduleTime: plan.lastScheduleTime, createdAt: midnight, now: midnight + 1510)
        #expect(again.start == nil)
    }

    @Test func concurrencyPoliciesDeadlineAndHistory() {
        let running = ScheduledJob(name: "report-1", scheduledTime: midnight, succeeded: nil)
        let forbid = CronJobSync.sync(cron("*/10 * * * *", policy: .forbid), jobs: [running], lastScheduleTime: midnight,
                                      createdAt: midnight, now: midnight + 600)
        #expect(forbid.start == nil)
        let replace = CronJobSync.sync(cron("*/10 * * * *", policy: .replace), jobs: [running], lastScheduleTime: midnight,
                                       createdAt: midnight, now: midnight + 600)
        #expect(replace.start != nil && replace.deleteJobs == ["report-1"])
        var late = cron("*/10 * * * *")
        late.startingDeadlineSeconds = 30
        #expect(CronJobSync.sync(late, jobs: [], lastScheduleTime: midnight, createdAt: midnight, now: midnight + 660).start == nil)
        let history = (0..<5).map { ScheduledJob(name: "ok-\($0)", scheduledTime: Double($0), succeeded: true) }
            + (0..<3).map { ScheduledJob(name: "bad-\($0)", scheduledTime: Double($0), succeeded: false) }
        let cleanup = CronJobSync.sync(cron("0 0 1 1 *"), jobs: history, lastScheduleTime: midnight, createdAt: midnight, now: midnight + 60)
        #expect(cleanup.deleteJobs.sorted() == ["bad-0", "bad-1", "ok-0", "ok-1", "ok-2"])
    }
}
