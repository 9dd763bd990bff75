import BerthCluster
@testable import BerthController
import BerthModel
import Testing

func jobSpec(completions: Int? = nil, parallelism: Int? = nil, backoffLimit: Int = 6, deadline: Int? = nil) -> JobSpec {
    var s = JobSpec()
    s.completions = completions
    s.parallelism = parallelism
    s.backoffLimit = backoffLimit
    s.activeDeadlineSeconds = deadline
    var c = Container()
    c.name = "run"
    c.image = "host"
    s.template.spec.containers = [c]
    s.template.spec.restartPolicy = .never
    return s
}

struct JobSim {
    var pods: [PodRecord] = []
    var status: JobStatus?
    var now = 0.0
    var n = 0

    mutating func sync(_ spec: JobSpec) -> JobPlan {
        var n = self.n
        let plan = JobSync.sync(namespace: "default", name: "migrate", spec: spec, pods: pods, previous: status, now: now) {
            n += 1
            return String(n)
        }
        self.n = n
        pods.removeAll { plan.deletes.contains($0.name) }
        pods += plan.creates
        status = plan.status
        return plan
    }

    mutating func finish(_ count: Int, as phase: PodRecord.Phase) {
        var done = 0
        for i in pods.indices where pods[i].isActive && done < count {
            pods[i].phase = phase
            done += 1
        }
    }
}

@Suite struct JobTests {
    @Test func completionsWithParallelism() {
        var sim = JobSim()
        let spec = jobSpec(completions: 3, parallelism: 2)
        #expect(sim.sync(spec).creates.count == 2)
        sim.finish(2, as: .succeeded)
        #expect(sim.sync(spec).creates.count == 1)
        sim.finish(1, as: .succeeded)
        _ = sim.sync(spec)
        #expect(sim.status?.condition("Complete")?.status == true)
        #expect(sim.status?.succeeded == 3 && sim.status?.active == 0)
        #expect(sim.sync(spec).creates.isEmpty)
    }

    @Test func backoffDoublesFromTenSecondsToSixMinutes() {
        #expect((1...8).map { JobSync.backoff(failures: $0) } == [10, 20, 40, 80, 160, 320, 360, 360])
        var sim = JobSim()
        let spec = jobSpec(backoffLimit: 6)
        _ = sim.sync(spec)
        sim.finish(1, as: .failed)
        let waiting = sim.sync(spec)
        #expect(waiting.creates.isEmpty && waiting.wakeAt == 10)
        sim.now = 9.9
        #expect(sim.sync(spec).creates.isEmpty)
        sim.now = 10
        #expect(sim.sync(spec).creates.count == 1)
        sim.finish(1, as: .failed)
        sim.now = 11
        #expect(sim.sync(spec).wakeAt == 31)
    }

    @Test func backoffLimitAndDeadlineEndTheJob() {
        var sim = JobSim()
        let spec = jobSpec(backoffLimit: 1)
        _ = sim.sync(spec)
        sim.finish(1, as: .failed)
        _ = sim.sync(spec)
        sim.now = 10
        #expect(sim.sync(spec).creates.count == 1)
        sim.finish(1, as: .failed)
        _ = sim.sync(spec)
        #expect(sim.status?.condition("Failed")?.reason == "BackoffLimitExceeded")

        var timed = JobSim()
        let slow = jobSpec(deadline: 60)
        _ = timed.sync(slow)
        timed.now = 59
        #expect(timed.sync(slow).deletes.isEmpty)
        timed.now = 60
        let end = timed.sync(slow)
        #expect(end.deletes.count == 1)
        #expect(timed.status?.condition("Failed")?.reason == "DeadlineExceeded")
    }
}

@Suite struct AutoscalerTests {
    func hpa(min: Int = 1, max: Int = 10, target: Int = 50) -> HorizontalPodAutoscaler {
        var h = HorizontalPodAutoscaler()
        h.minReplicas = min
        h.maxReplicas = max
        h.targetCPUUtilization = target
        return h
    }

    @Test func desiredIsCeilOfCurrentTimesRatioWithinTolerance() {
        // 3 pods requesting 100m each use 270m: 90% against a 50% target → ceil(3 × 1.8) = 6.
        let s = HPASync.sync(hpa(), currentReplicas: 3, usage: 270, requests: 300, previous: nil, now: 0)
        #expect(s.desiredReplicas == 6 && s.currentCPUUtilizationPercentage == 90)
        // 54% is within 10% of 50%: no change.
        #expect(HPASync.sync(hpa(), currentReplicas: 3, usage: 162, requests: 300, previous: nil, now: 0).desiredReplicas == 3)
        // Clamped to the bounds.
        #expect(HPASync.sync(hpa(max: 4), currentReplicas: 3, usage: 300, requests: 300, previous: nil, now: 0).desiredReplicas == 4)
        // Idle: down to minReplicas (no earlier recommendation holds it up).
        #expect(HPASync.sync(hpa(min: 2), currentReplicas: 3, usage: 0, requests: 300, previous: nil, now: 0).desiredReplicas == 2)
    }

    @Test func scaleDownWaitsOutTheStabilizationWindow() {
        var s = HPASync.sync(hpa(), currentReplicas: 6, usage: 300, requests: 600, previous: nil, now: 0)
        #expect(s.desiredReplicas == 6)
        s = HPASync.sync(hpa(), currentReplicas: 6, usage: 60, requests: 600, previous: s, now: 60)
        #expect(s.desiredReplicas == 6)
        s = HPASync.sync(hpa(), currentReplicas: 6, usage: 60, requests: 600, previous: s, now: 299)
        #expect(s.desiredReplicas == 6)
        s = HPASync.sync(hpa(), currentReplicas: 6, usage: 60, requests: 600, previous: s, now: 301)
        #expect(s.desiredReplicas == 2)
    }

    @Test func scaleUpIsRateLimited() {
        // From 1 replica at 1000%: the recommendation is 10, but one period allows max(1 + 4, 1 × 2) = 5.
        var s = HPASync.sync(hpa(), currentReplicas: 1, usage: 1000, requests: 100, previous: nil, now: 0)
        #expect(s.desiredReplicas == 5)
        // Within the same 15 s period the limit still counts from 1.
        s = HPASync.sync(hpa(), currentReplicas: 5, usage: 5000, requests: 500, previous: s, now: 10)
        #expect(s.desiredReplicas == 5)
        s = HPASync.sync(hpa(), currentReplicas: 5, usage: 5000, requests: 500, previous: s, now: 16)
        #expect(s.desiredReplicas == 10)
    }
}
