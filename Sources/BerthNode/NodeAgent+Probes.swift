import BerthLinux
import BerthModel
import BerthRuntime
import Foundation

extension NodeAgent {
    /// Starts the probes of container `i` that are due; each runs off the actor and reports back.
    func probe(_ p: inout PodState, _ i: Int, _ now: Double) {
        let r = p.runs[i]
        guard let c = p.container(r), let id = r.runtimeID, let sandboxPid = p.sandboxPid, let ip = p.ip else { return }
        if let killAt = r.killAt {
            if now >= killAt { try? runtime.kill(id: id, signal: SIGKILL) }
            return
        }
        for (kind, probing) in r.probes where now >= probing.nextAt {
            // Startup first; liveness and readiness once it passed.
            if kind != "startup" && !r.started { continue }
            let flight = "\(p.key)|\(r.name)|\(kind)"
            guard !probesInFlight.contains(flight), let probe = self.probeSpec(c, kind) else { continue }
            guard (try? runtime.state(id: id))?.status == .running else { continue }
            probesInFlight.insert(flight)
            p.runs[i].probes[kind]?.nextAt = now + Double(max(probe.periodSeconds, 1))
            var ports: [String: Int] = [:]
            for port in c.ports { if let n = port.name { ports[n] = port.containerPort } }
            let env = (try? PodEnvironment(pod: p.pod, podIP: ip, nodeName: config.nodeName, view: view)
                .variables(for: c, image: ImageEnv()))?.map { "\($0.0)=\($0.1)" } ?? []
            let target = ProbeRunner.Target(runtime: runtime, containerID: id, sandboxPid: sandboxPid, podIP: ip, env: env, ports: ports)
            let key = p.key, name = r.name
            DispatchQueue.global().async {
                let ok = ProbeRunner.run(probe, target)
                Task { await self.probeFinished(pod: key, run: name, kind: kind, ok: ok) }
            }
        }
    }

    func probeSpec(_ c: Container, _ kind: String) -> Probe? {
        switch kind {
        case "startup": c.startupProbe
        case "liveness": c.livenessProbe
        default: c.readinessProbe
        }
    }

    func probeFinished(pod: String, run: String, kind: String, ok: Bool) {
        probesInFlight.remove("\(pod)|\(run)|\(kind)")
        probeResults.append((pod, run, kind, ok))
        // Readiness moves endpoints: act now rather than at the next tick.
        if kind == "readiness" { tick() }
    }

    /// Applies finished probes: thresholds, readiness, and the kill of a container that failed liveness.
    func applyProbeResults(_ now: Double) {
        let results = probeResults
        probeResults = []
        for (key, run, kind, ok) in results {
            guard var p = pods[key], p.terminatingSince == nil, let i = p.runs.firstIndex(where: { $0.name == run }),
                  isRunning(p.runs[i]), var probing = p.runs[i].probes[kind], let c = p.container(p.runs[i]),
                  let probe = probeSpec(c, kind) else { continue }
            if ok { probing.successes += 1; probing.failures = 0 } else { probing.failures += 1; probing.successes = 0 }
            p.runs[i].probes[kind] = probing
            let passed = probing.successes >= max(probe.successThreshold, 1)
            let failed = probing.failures >= max(probe.failureThreshold, 1)
            switch kind {
            case "startup":
                if passed {
                    p.runs[i].started = true
                    p.runs[i].probes["startup"] = nil
                    if c.readinessProbe == nil { p.runs[i].ready = true }
                    // Liveness and readiness count from here.
                    for k in ["liveness", "readiness"] where p.runs[i].probes[k] != nil { p.runs[i].probes[k]!.nextAt = now }
                } else if failed {
                    killForRestart(&p, i, now)
                }
            case "liveness":
                if failed { killForRestart(&p, i, now) }
            default:
                if passed { p.runs[i].ready = true }
                if failed { p.runs[i].ready = false }
            }
            pods[key] = p
        }
    }

    /// SIGTERM now, SIGKILL after the grace period; the exit then restarts it by the policy.
    func killForRestart(_ p: inout PodState, _ i: Int, _ now: Double) {
        guard let id = p.runs[i].runtimeID else { return }
        p.runs[i].ready = false
        p.runs[i].killAt = now + Double(p.pod.spec.terminationGracePeriodSeconds ?? 30)
        try? runtime.kill(id: id, signal: SIGTERM)
    }
}

extension NodeAgent {
    /// The log file of a container's current (or last) run, or of the run before it (`previous`).
    public func logFile(namespace: String, name: String, container: String, previous: Bool = false) -> String? {
        guard let p = pods[namespace + "/" + name], let r = p.runs.first(where: { $0.name == container }) else { return nil }
        if previous {
            let path = podsDir + "/" + p.uid + "/logs/" + container + ".previous.log"
            return Files.exists(path) ? path : nil
        }
        return r.runtimeID.map { runtime.root + "/" + $0 + "/container.log" }
    }

    /// Runs a command inside a running container (as `kubectl exec` without a terminal).
    public func exec(namespace: String, name: String, container: String, _ argv: [String], timeout: Double = 30) throws -> ProcessResult {
        guard let p = pods[namespace + "/" + name], let r = p.runs.first(where: { $0.name == container }),
              let id = r.runtimeID, (try? runtime.state(id: id))?.status == .running else {
            throw NodeError("container \(container) of pod \(namespace)/\(name) is not running")
        }
        return try runtime.exec(id: id, argv, env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], timeout: timeout)
    }

    /// The pid of a running container's process (for tests and `describe`).
    public func containerPid(namespace: String, name: String, container: String) -> Int32? {
        guard let id = pods[namespace + "/" + name]?.runs.first(where: { $0.name == container })?.runtimeID,
              let st = try? runtime.state(id: id), st.status == .running else { return nil }
        return st.pid
    }
}
