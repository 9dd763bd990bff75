import BerthModel
import Prometheus

/// The daemon's metrics in a Prometheus registry of its own (no global bootstrap, so a process can hold
/// more than one daemon), each with its HELP text.
final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let reconcileDuration: DurationHistogram
    let fetchDuration: DurationHistogram
    let fetchErrors: Counter
    let syncs: [ClusterSyncResult: Counter]
    let schedulingLatency: DurationHistogram
    let statusCommits: Counter
    let pushRetries: Counter
    let restarts: Gauge
    let phases: [PodPhase: Gauge]
    let leader: Gauge

    enum ClusterSyncResult: String, CaseIterable { case applied, rejected, unchanged, failed }

    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
                                      .seconds(5), .seconds(10), .seconds(30)]

    init() {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "berth", metricName: metric, unitName: unit, helpText: help)
        }
        let r = registry
        reconcileDuration = r.makeDurationHistogram(descriptor: name("reconcile_duration", "seconds",
            "How long one pass of the daemon's loop took (node reports, controllers, scheduling, status)."), buckets: Self.buckets)
        fetchDuration = r.makeDurationHistogram(descriptor: name("fetch_duration", "seconds",
            "How long asking the repository for news took (ls-remote, and the fetch when the ref moved)."), buckets: Self.buckets)
        fetchErrors = r.makeCounter(descriptor: name("fetch_errors", "total", "Polls of the repository that failed."))
        syncs = Dictionary(uniqueKeysWithValues: ClusterSyncResult.allCases.map {
            ($0, r.makeCounter(descriptor: name("syncs", "total", "Polls of the repository, by what came of them."), labels: [("result", $0.rawValue)]))
        })
        schedulingLatency = r.makeDurationHistogram(descriptor: name("scheduling_latency", "seconds",
            "From a pod's creation to its binding to a node."), buckets: Self.buckets)
        statusCommits = r.makeCounter(descriptor: name("status_commits", "total", "Commits pushed to the status branch."))
        pushRetries = r.makeCounter(descriptor: name("status_push_retries", "total",
            "Status pushes refused (the branch moved) and made again on its new tip."))
        restarts = r.makeGauge(descriptor: name("container_restarts", "", "Container restarts of the pods that exist, summed."))
        phases = Dictionary(uniqueKeysWithValues: [PodPhase.pending, .running, .succeeded, .failed].map {
            ($0, r.makeGauge(descriptor: name("pods", "", "Pods by phase."), labels: [("phase", $0.rawValue)]))
        })
        leader = r.makeGauge(descriptor: name("leader", "",
            "1 while this instance runs the source, controllers and status writer; 0 while another leads."))
    }

    /// `berth_applied_commit_info{commit="<sha>"} 1`, one series: the previous commit's goes.
    func appliedCommit(_ sha: String, replacing old: Gauge?) -> Gauge {
        if let old { registry.unregisterGauge(old) }
        let g = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "applied_commit", unitName: "info",
                                                                    helpText: "The source commit whose objects are in force."),
                                   labels: [("commit", sha)])
        g.set(1.0 as Double)
        return g
    }

    func text() -> String { registry.emitToString() }
}
