import BerthModel
import CoreMetrics
import Prometheus

/// The daemon's metrics, through swift-metrics into a Prometheus registry of its own (no global
/// bootstrap, so a process can hold more than one daemon).
final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let reconcileDuration: CoreMetrics.Timer
    let fetchDuration: CoreMetrics.Timer
    let fetchErrors: CoreMetrics.Counter
    let syncs: [ClusterSyncResult: CoreMetrics.Counter]
    let schedulingLatency: CoreMetrics.Timer
    let statusCommits: CoreMetrics.Counter
    let pushRetries: CoreMetrics.Counter
    let restarts: CoreMetrics.Gauge
    let phases: [PodPhase: CoreMetrics.Gauge]
    let leader: CoreMetrics.Gauge

    enum ClusterSyncResult: String, CaseIterable { case applied, rejected, unchanged, failed }

    init() {
        let f = PrometheusMetricsFactory(registry: registry)
        reconcileDuration = CoreMetrics.Timer(label: "berth_reconcile_duration_seconds", factory: f)
        fetchDuration = CoreMetrics.Timer(label: "berth_fetch_duration_seconds", factory: f)
        fetchErrors = CoreMetrics.Counter(label: "berth_fetch_errors_total", factory: f)
        syncs = Dictionary(uniqueKeysWithValues: ClusterSyncResult.allCases.map {
            ($0, CoreMetrics.Counter(label: "berth_syncs_total", dimensions: [("result", $0.rawValue)], factory: f))
        })
        schedulingLatency = CoreMetrics.Timer(label: "berth_scheduling_latency_seconds", factory: f)
        statusCommits = CoreMetrics.Counter(label: "berth_status_commits_total", factory: f)
        pushRetries = CoreMetrics.Counter(label: "berth_status_push_retries_total", factory: f)
        restarts = CoreMetrics.Gauge(label: "berth_container_restarts", factory: f)
        leader = CoreMetrics.Gauge(label: "berth_leader", factory: f)
        phases = Dictionary(uniqueKeysWithValues: [PodPhase.pending, .running, .succeeded, .failed].map {
            ($0, CoreMetrics.Gauge(label: "berth_pods", dimensions: [("phase", $0.rawValue)], factory: f))
        })
    }

    /// `berth_applied_commit_info{commit="<sha>"} 1`, one series: the previous commit's goes.
    func appliedCommit(_ sha: String, replacing old: Prometheus.Gauge?) -> Prometheus.Gauge {
        if let old { registry.unregisterGauge(old) }
        let g = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "applied_commit", unitName: "info",
                                                                    helpText: "The source commit whose objects are in force."),
                                   labels: [("commit", sha)])
        g.set(1.0 as Double)
        return g
    }

    func text() -> String { registry.emitToString() }
}
