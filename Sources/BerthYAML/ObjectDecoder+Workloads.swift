import BerthModel

extension ObjectDecoder {
    /// Workload selectors must select the pods of their own template.
    static func checkSelector(_ selector: LabelSelector, template: PodTemplateSpec, _ r: MapReader) {
        if selector.isEmpty {
            r.error("selector", "selector must not be empty")
        } else if !selector.matches(template.labels) {
            r.error("selector", "selector does not match the template's labels (template.metadata.labels)")
        }
    }

    static func checkRestartPolicy(_ template: PodTemplateSpec, allowed: [RestartPolicy], _ r: MapReader, kind: String) {
        let policy = template.spec.restartPolicy ?? .always
        if !allowed.contains(policy) {
            let path = r.path.field("template").field("spec").field("restartPolicy")
            let names = allowed.map(\.rawValue).joined(separator: " or ")
            let said = template.spec.restartPolicy == nil ? "is unset (Always)" : "is \(policy.rawValue)"
            r.ctx.error("restartPolicy \(said); \(kind) pods need \(names)", field: path)
        }
    }

    static func percentOrCount(_ r: MapReader, _ key: String) -> IntOrString? {
        guard let v = r.intOrString(key) else { return nil }
        switch v {
        case .int(let i) where i < 0:
            r.error(key, "must not be negative")
        case .string(let s) where v.scaled(total: 100, roundUp: false) == nil:
            r.error(key, "\"\(s)\" must be an integer or a percentage such as 25%")
        default:
            return v
        }
        return nil
    }

    static func rollingUpdate(_ u: MapReader, surge: inout IntOrString, unavailable: inout IntOrString) {
        surge = percentOrCount(u, "maxSurge") ?? surge
        unavailable = percentOrCount(u, "maxUnavailable") ?? unavailable
        if surge.scaled(total: 100, roundUp: true) == 0 && unavailable.scaled(total: 100, roundUp: false) == 0 {
            u.error("maxUnavailable", "maxSurge and maxUnavailable may not both be 0")
        }
    }

    static func deployment(_ r: MapReader) -> Deployment {
        var d = Deployment()
        d.replicas = r.int("replicas", min: 0) ?? 1
        d.selector = r.object("selector", required: true) { selector($0) } ?? LabelSelector()
        d.template = r.object("template", required: true) { podTemplate($0) } ?? PodTemplateSpec()
        if r.has("selector") && r.has("template") { checkSelector(d.selector, template: d.template, r) }
        checkRestartPolicy(d.template, allowed: [.always], r, kind: "Deployment")
        r.object("strategy") { s in
            d.strategy = s.enumeration("type", Deployment.StrategyType.self) ?? .rollingUpdate
            s.object("rollingUpdate") { rollingUpdate($0, surge: &d.maxSurge, unavailable: &d.maxUnavailable) }
            if d.strategy == .recreate && s.has("rollingUpdate") {
                s.error("rollingUpdate", "rollingUpdate may not be set when the strategy type is Recreate")
            }
        }
        d.minReadySeconds = r.int("minReadySeconds", min: 0) ?? 0
        d.revisionHistoryLimit = r.int("revisionHistoryLimit", min: 0) ?? 10
        d.progressDeadlineSeconds = r.int("progressDeadlineSeconds", min: 1) ?? 600
        if d.progressDeadlineSeconds <= d.minReadySeconds && r.has("progressDeadlineSeconds") {
            r.error("progressDeadlineSeconds", "must be greater than minReadySeconds")
        }
        d.paused = r.bool("paused") ?? false
        return d
    }

    static func daemonSet(_ r: MapReader) -> DaemonSet {
        var d = DaemonSet()
        d.selector = r.object("selector", required: true) { selector($0) } ?? LabelSelector()
        d.template = r.object("template", required: true) { podTemplate($0) } ?? PodTemplateSpec()
        if r.has("selector") && r.has("template") { checkSelector(d.selector, template: d.template, r) }
        checkRestartPolicy(d.template, allowed: [.always], r, kind: "DaemonSet")
        r.object("updateStrategy") { s in
            d.updateStrategy = s.enumeration("type", DaemonSet.StrategyType.self) ?? .rollingUpdate
            s.object("rollingUpdate") { rollingUpdate($0, surge: &d.maxSurge, unavailable: &d.maxUnavailable) }
            if d.updateStrategy == .onDelete && s.has("rollingUpdate") {
                s.error("rollingUpdate", "rollingUpdate may not be set when the strategy type is OnDelete")
            }
        }
        d.minReadySeconds = r.int("minReadySeconds", min: 0) ?? 0
        d.revisionHistoryLimit = r.int("revisionHistoryLimit", min: 0) ?? 10
        return d
    }

    static func jobSpec(_ r: MapReader) -> JobSpec {
        var j = JobSpec()
        r.ignore("ttlSecondsAfterFinished", "completionMode", "suspend", "podFailurePolicy", "backoffLimitPerIndex",
                 "maxFailedIndexes", "podReplacementPolicy", "successPolicy", "managedBy")
        j.template = r.object("template", required: true) { podTemplate($0) } ?? PodTemplateSpec()
        let manual = r.bool("manualSelector") ?? false
        if r.has("selector") {
            j.selector = r.object("selector") { selector($0) }
            if !manual {
                r.error("selector", "a Job's selector is generated; set manualSelector: true to give one")
            } else if let s = j.selector, r.has("template") {
                checkSelector(s, template: j.template, r)
            }
        }
        j.completions = r.int("completions", min: 0)
        j.parallelism = r.int("parallelism", min: 0)
        j.backoffLimit = r.int("backoffLimit", min: 0) ?? 6
        j.activeDeadlineSeconds = r.int("activeDeadlineSeconds", min: 1)
        if r.has("template") { checkRestartPolicy(j.template, allowed: [.onFailure, .never], r, kind: "Job") }
        return j
    }

    static func cronJob(_ r: MapReader) -> CronJob {
        var c = CronJob()
        r.ignore("timeZone")
        if let schedule = r.string("schedule", required: true) {
            c.schedule = schedule
            do { _ = try CronSchedule(parsing: schedule) } catch { r.error("schedule", error.message) }
        }
        c.concurrencyPolicy = r.enumeration("concurrencyPolicy", CronJob.ConcurrencyPolicy.self) ?? .allow
        c.suspend = r.bool("suspend") ?? false
        c.startingDeadlineSeconds = r.int("startingDeadlineSeconds", min: 0)
        c.successfulJobsHistoryLimit = r.int("successfulJobsHistoryLimit", min: 0) ?? 3
        c.failedJobsHistoryLimit = r.int("failedJobsHistoryLimit", min: 0) ?? 1
        r.object("jobTemplate", required: true) { t in
            t.object("metadata") { m in
                m.ignore("name", "namespace", "generateName", "creationTimestamp")
                c.jobLabels = labels(m, "labels")
                c.jobAnnotations = annotations(m)
            }
            c.jobSpec = t.object("spec", required: true) { jobSpec($0) } ?? JobSpec()
        }
        return c
    }
}
