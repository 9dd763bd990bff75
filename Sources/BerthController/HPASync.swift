import BerthCluster
import BerthModel
import Foundation

/// Kubernetes' HorizontalPodAutoscaler (autoscaling/v2) on CPU utilization:
/// desired = ceil(current × utilization / target), no change within a 10% tolerance, clamped to
/// [min, max]; scale-down takes the highest recommendation of the last 300 s (stabilization), and both
/// directions obey the behavior's rate policies (defaults: up by max(4 pods, 100%) per 15 s, down by 100% per 15 s).
public enum HPASync {
    public static let tolerance = 0.1

    /// `usage` and `requests` in millicores, over the target's ready pods.
    public static func sync(_ h: HorizontalPodAutoscaler, currentReplicas: Int, usage: Int64, requests: Int64,
                            previous: AutoscalerStatus?, now: Double) -> AutoscalerStatus {
        var s = previous ?? AutoscalerStatus()
        s.currentReplicas = currentReplicas
        var recommendation = currentReplicas
        if requests > 0 && currentReplicas > 0 {
            let utilization = Double(usage) * 100 / Double(requests)
            s.currentCPUUtilizationPercentage = Int(utilization.rounded())
            let ratio = utilization / Double(h.targetCPUUtilization)
            if abs(ratio - 1) > tolerance {
                recommendation = Int((Double(currentReplicas) * ratio).rounded(.up))
            }
        }
        recommendation = min(max(recommendation, h.minReplicas), h.maxReplicas)
        let upRules = h.scaleUp ?? defaultScaleUp
        let downRules = h.scaleDown ?? defaultScaleDown
        let upWindow = Double(upRules.stabilizationWindowSeconds ?? 0)
        let downWindow = Double(downRules.stabilizationWindowSeconds ?? 300)
        s.recommendations.append(Recommendation(time: now, replicas: recommendation))
        s.recommendations.removeAll { now - $0.time > max(upWindow, downWindow) }
        // Stabilization: scale down only to the highest recent recommendation, up only to the lowest.
        // A window of 0 means the recommendation of this moment alone.
        let downCandidates = downWindow == 0 ? [recommendation] : s.recommendations.filter { now - $0.time <= downWindow }.map(\.replicas)
        let upCandidates = upWindow == 0 ? [recommendation] : s.recommendations.filter { now - $0.time <= upWindow }.map(\.replicas)
        var desired = currentReplicas
        if recommendation < currentReplicas {
            desired = min(currentReplicas, downCandidates.max() ?? recommendation)
            desired = max(desired, limit(downRules, current: currentReplicas, events: s.events, now: now, up: false))
        } else if recommendation > currentReplicas {
            desired = max(currentReplicas, upCandidates.min() ?? recommendation)
            desired = min(desired, limit(upRules, current: currentReplicas, events: s.events, now: now, up: true))
        }
        desired = min(max(desired, h.minReplicas), h.maxReplicas)
        if desired != currentReplicas {
            s.events.append(.init(time: now, from: currentReplicas, to: desired))
            s.lastScaleTime = now
        }
        let longest = Double(((upRules.policies + downRules.policies).map(\.periodSeconds).max()) ?? 15)
        s.events.removeAll { now - $0.time > longest }
        s.desiredReplicas = desired
        return s
    }

    static var defaultScaleUp: HorizontalPodAutoscaler.ScalingRules {
        var r = HorizontalPodAutoscaler.ScalingRules()
        r.stabilizationWindowSeconds = 0
        r.selectPolicy = .max
        var percent = HorizontalPodAutoscaler.ScalingPolicy()
        percent.type = .percent; percent.value = 100; percent.periodSeconds = 15
        var pods = HorizontalPodAutoscaler.ScalingPolicy()
        pods.type = .pods; pods.value = 4; pods.periodSeconds = 15
        r.policies = [percent, pods]
        return r
    }

    static var defaultScaleDown: HorizontalPodAutoscaler.ScalingRules {
        var r = HorizontalPodAutoscaler.ScalingRules()
        r.stabilizationWindowSeconds = 300
        r.selectPolicy = .max
        var percent = HorizontalPodAutoscaler.ScalingPolicy()
        percent.type = .percent; percent.value = 100; percent.periodSeconds = 15
        r.policies = [percent]
        return r
    }

    /// The furthest the policies let replicas move now, counted from where they were a period ago.
    static func limit(_ rules: HorizontalPodAutoscaler.ScalingRules, current: Int, events: [AutoscalerStatus.ScaleEvent],
                      now: Double, up: Bool) -> Int {
        if rules.selectPolicy == .disabled { return current }
        if rules.policies.isEmpty { return up ? Int.max : 0 }
        var limits: [Int] = []
        for p in rules.policies {
            // Replicas at the start of the period: undo the changes made within it.
            let within = events.filter { now - $0.time <= Double(p.periodSeconds) }
            let base = within.first?.from ?? current
            switch (p.type, up) {
            case (.pods, true): limits.append(base + p.value)
            case (.pods, false): limits.append(base - p.value)
            case (.percent, true): limits.append(Int((Double(base) * (1 + Double(p.value) / 100)).rounded(.up)))
            case (.percent, false): limits.append(Int((Double(base) * (1 - Double(p.value) / 100)).rounded(.down)))
            }
        }
        let pickMost = rules.selectPolicy == .max
        return up ? (pickMost ? limits.max()! : limits.min()!) : (pickMost ? limits.min()! : limits.max()!)
    }
}
