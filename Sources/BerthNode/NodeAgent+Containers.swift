import BerthCluster
import BerthImage
import BerthLinux
import BerthModel
import BerthRuntime
import BerthYAML
import Foundation

extension NodeAgent {
    func isRunning(_ r: PodState.Run) -> Bool {
        if case .running = r.state { return r.runtimeID != nil }
        return false
    }

    func exited(_ id: String) -> Bool { Files.exists(runtime.root + "/" + id + "/exit") || !Files.exists(runtime.root + "/" + id) }

    /// Moves a pod forward: sandbox, then init containers in order, then the containers; restarts what
    /// stopped when the policy says so, after the backoff.
    func advance(_ p: inout PodState, _ now: Double, refreshVolumes: Bool) {
        if let id = p.sandboxID, exited(id) {
            // The sandbox died: its namespaces are gone, so every container starts again in a new one.
            for i in p.runs.indices where isRunning(p.runs[i]) {
                if let cid = p.runs[i].runtimeID { try? runtime.kill(id: cid, signal: SIGKILL) }
            }
            tearDownSandbox(p)
            p.sandboxID = nil
            p.sandboxPid = nil
        }
        if p.sandboxID == nil {
            guard now >= p.retryAt else { return }
            do {
                try createSandbox(&p)
                p.reason = nil
                p.message = nil
            } catch {
                p.reason = "FailedCreatePodSandBox"
                p.message = "\(error)"
                p.retryAt = now + 2
                return
            }
        }
        if refreshVolumes { volumes(p).refresh(p.pod, view: view) }
        for i in p.runs.indices {
            if isRunning(p.runs[i]) {
                if let id = p.runs[i].runtimeID, exited(id) {
                    finish(&p, i, now)
                } else {
                    probe(&p, i, now)
                }
            }
            if !p.runs[i].due(now), case .waiting("ErrImagePull", let message) = p.runs[i].state {
                // Shown once, then the back-off, as the kubelet does.
                p.runs[i].state = .waiting(reason: "ImagePullBackOff", message: "back-off pulling image" + (message ?? "").dropFirst("failed to pull image".count))
            }
            let r = p.runs[i]
            if r.isInit {
                if r.done { continue }
                if !isRunning(r) && r.due(now) { start(&p, i, now) }
                // Init containers one at a time, in order.
                return
            }
            if !r.done && !isRunning(r) && r.due(now) { start(&p, i, now) }
        }
    }

    /// A run ended: record how, and decide when (or whether) the next one starts.
    func finish(_ p: inout PodState, _ i: Int, _ now: Double) {
        guard let id = p.runs[i].runtimeID else { return }
        let st = try? runtime.state(id: id)
        let code = st?.exitCode ?? 137
        let reason = st?.oomKilled == true ? "OOMKilled" : code == 0 ? "Completed" : "Error"
        let started = p.runs[i].startedAt ?? now
        let terminated = ContainerStatus.State.terminated(exitCode: code, reason: reason, startedAt: started, finishedAt: now)
        var r = p.runs[i]
        r.ready = false
        r.killAt = nil
        r.probes = [:]
        let restart = p.terminatingSince == nil && (r.isInit ? code != 0 && p.policy != .never
                                                     : p.policy == .always || (p.policy == .onFailure && code != 0))
        if restart {
            let delay = r.backoff.next(ranFor: now - started, initial: config.backoffInitial, cap: config.backoffCap, reset: config.backoffReset)
            r.restartAt = now + delay
            r.lastState = terminated
            r.state = .waiting(reason: "CrashLoopBackOff", message: "back-off \(Self.seconds(delay)) restarting failed container=\(r.name) pod=\(p.pod.metadata.name)")
        } else {
            r.state = terminated
            r.restartAt = nil
            r.done = !r.isInit || code == 0
        }
        p.runs[i] = r
    }

    static func seconds(_ d: Double) -> String { d >= 60 ? "\(Int(d) / 60)m\(Int(d) % 60)s" : "\(Int(d))s" }

    /// Starts the next run of container `i`.
    func start(_ p: inout PodState, _ i: Int, _ now: Double) {
        guard var c = p.container(p.runs[i]), let sandboxPid = p.sandboxPid, let ip = p.ip else { return }
        // The pod's runAsUser, runAsGroup and runAsNonRoot where the container sets none.
        c.securityContext = p.pod.spec.securityContext(for: c)
        var r = p.runs[i]
        func wait(_ reason: String, _ message: String) {
            r.state = .waiting(reason: reason, message: message)
            r.restartAt = now + 1
            p.runs[i] = r
        }
        let hostImage = c.image == "host"
        var defaults = ImageDefaults()
        var imageName = c.image
        var imageRoot: String?
        if !hostImage {
            guard let store = config.imageStore, let puller else { return wait("ErrImageNeverPull", "this node has no image store") }
            let ref: ImageReference
            do { ref = try ImageReference(parsing: c.image) } catch { return wait("InvalidImageName", error.message) }
            imageName = ref.description
            let present = ImageRefs.rootfs(root: store, name: imageName) != nil
            let policy = c.imagePullPolicy ?? ref.defaultPullPolicy
            if policy == .never && !present {
                return wait("ErrImageNeverPull", "container image \"\(c.image)\" is not present with pull policy of Never")
            }
            // As the kubelet: Always pulls for every start (one manifest request when nothing moved).
            if (policy == .always && r.pulledFor != r.attempt + 1) || (policy == .ifNotPresent && !present) {
                let since = r.pullSince ?? now
                r.pullSince = since
                switch puller.request(ref, credentials: pullCredentials(p.pod), since: since) {
                case .pulling(let started, let progress):
                    // Progress every 5 s of a long pull: each change of the message is an event.
                    let elapsed = Int(now - started) / 5 * 5
                    var message = "pulling image \"\(c.image)\""
                    if let progress, elapsed >= 5 { message += ": \(progress.description) after \(elapsed) s" }
                    if case .waiting("ContainerCreating", let shown?) = r.state, shown.hasPrefix(message.prefix { $0 != ":" }),
                       elapsed < 5 || shown.hasSuffix(" after \(elapsed) s") {
                        message = shown
                    }
                    r.state = .waiting(reason: "ContainerCreating", message: message)
                    p.runs[i] = r
                    return
                case .failed(let why):
                    var backoff = r.pullBackoff ?? Backoff()
                    let delay = backoff.next(ranFor: 0, initial: config.backoffInitial, cap: config.backoffCap, reset: .infinity)
                    r.pullBackoff = backoff
                    r.pullSince = nil
                    r.state = .waiting(reason: "ErrImagePull", message: "failed to pull image \"\(c.image)\": \(why)")
                    r.restartAt = now + delay
                    p.runs[i] = r
                    return
                case .ready(let record):
                    r.pulledFor = r.attempt + 1
                    r.pullSince = nil
                    r.pullBackoff = nil
                    r.imageID = record.imageID
                }
            } else {
                r.imageID = ImageRefs.record(root: store, name: imageName)?.imageID
                puller.store.touch(imageName)
            }
            imageRoot = ImageRefs.rootfs(root: store, name: imageName)
            guard imageRoot != nil, let d = ImageRefs.defaults(root: store, name: imageName) else {
                return wait("ErrImageNeverPull", "image \(c.image) is not in the node's image store")
            }
            defaults = d
        }
        // Numeric only, for runAsNonRoot as the kubelet checks it; names are resolved in the image below.
        let imageUser = defaults.user.flatMap { try? ImageRefs.user($0, rootfs: nil) }
        if !config.allowPrivileged, let cap = c.securityContext?.capabilities.add.map(Capabilities.bare).first(where: { !Capabilities.baseline.contains($0) }) {
            return wait("CreateContainerConfigError", "capability \(cap) is beyond Pod Security's baseline and this node does not allow privileged pods (berth run --allow-privileged)")
        }
        // As the kubelet: runAsNonRoot is checked against the user the container would run as.
        if c.securityContext?.runAsNonRoot == true {
            let subject = "(pod: \"\(p.pod.metadata.name)\", container: \(c.name))"
            if let uid = c.securityContext?.runAsUser ?? imageUser?.uid {
                if uid == 0 { return wait("CreateContainerConfigError", "container has runAsNonRoot and image will run as root \(subject)") }
            } else if let name = defaults.user?.split(separator: ":").first.map(String.init), name != "root" {
                return wait("CreateContainerConfigError", "container has runAsNonRoot and image has non-numeric user (\(name)), cannot verify user is non-root \(subject)")
            } else {
                return wait("CreateContainerConfigError", "container has runAsNonRoot and image will run as root \(subject)")
            }
        }
        let env = PodEnvironment(pod: p.pod, podIP: ip, nodeName: config.nodeName, view: view)
        let id = "\(p.uid)-\(c.name)-\(r.attempt + 1)"
        do {
            let variables = try env.variables(for: c, image: ImageEnv(env: defaults.env))
            var values: [String: String] = [:]
            for (k, v) in variables { values[k] = v }
            let command = c.command.isEmpty ? defaults.entrypoint : c.command
            let args = c.command.isEmpty && c.args.isEmpty ? defaults.cmd : c.args
            let argv = (command + args).map { PodEnvironment.expand($0, values) }
            guard !argv.isEmpty else { throw NodeError("container \(c.name) has no command, and \(hostImage ? "image: host has no default" : "its image names none")") }
            let paths = try volumes(p).prepare(p.pod, view: view)
            var mounts: [(String, String, Bool)] = []
            for (index, m) in c.volumeMounts.enumerated() {
                guard let volume = paths[m.name] else { throw NodeError("volumeMount \(m.mountPath): no volume named \(m.name)") }
                var readOnly = m.readOnly
                switch p.pod.spec.volumes.first(where: { $0.name == m.name })?.source {
                case .persistentVolumeClaim(_, let ro)?: readOnly = readOnly || ro
                // The kubelet's projected volumes are read-only whatever the mount says.
                case .configMap?, .secret?, .downwardAPI?: readOnly = true
                default: break
                }
                let bindAt = podsDir + "/" + p.uid + "/subpaths/" + c.name + "-" + String(index)
                mounts.append((m.mountPath, try PodVolumes.source(volume: volume, subPath: m.subPath, mount: m.mountPath, bindAt: bindAt), readOnly))
            }
            let etc = podsDir + "/" + p.uid + "/etc"
            for f in ["hosts", "resolv.conf", "hostname"] where !c.volumeMounts.contains(where: { $0.mountPath == "/etc/" + f }) {
                mounts.append(("/etc/" + f, etc + "/" + f, f != "hosts"))
            }
            let bundle = podsDir + "/" + p.uid + "/" + c.name
            let runAs = try defaults.user.flatMap { try ImageRefs.user($0, rootfs: imageRoot) }
            let spec = try bundles.container(c, .init(args: argv, env: variables, workingDir: c.workingDir ?? defaults.workingDir, mounts: mounts,
                                                      sandboxPid: sandboxPid, cgroupsPath: "berth/pod-\(p.uid)/\(c.name)-\(r.attempt + 1)", hostImage: hostImage,
                                                      imageUser: runAs))
            do {
                try Files.makeDirectories(bundle + "/rootfs")
                try Files.write(jsonText(spec), to: bundle + "/config.json", mode: 0o600)
            } catch { throw NodeError("cannot write the bundle of \(c.name): \(error)") }
            if let old = r.runtimeID { removeContainer(old, p, c.name) }
            r.runtimeID = nil
            do {
                try runtime.create(id: id, bundle: bundle, root: hostImage ? .host : .image(imageName))
                r.runtimeID = id
                try runtime.start(id: id)
            } catch {
                if r.runtimeID != nil { try? runtime.delete(id: id, force: true) }
                r.runtimeID = nil
                throw NodeError("\(error)")
            }
        } catch {
            return wait("CreateContainerConfigError", "\(error)")
        }
        if r.attempt > 0 { r.restartCount += 1 }
        r.attempt += 1
        r.startedAt = now
        r.restartAt = nil
        r.state = .running(startedAt: now)
        r.started = c.startupProbe == nil
        r.ready = c.readinessProbe == nil && r.started && !r.isInit
        r.probes = [:]
        for (kind, probe) in [("startup", c.startupProbe), ("liveness", c.livenessProbe), ("readiness", c.readinessProbe)] {
            if let probe { r.probes[kind] = PodState.Probing(nextAt: now + Double(probe.initialDelaySeconds)) }
        }
        p.runs[i] = r
    }

    /// Registry credentials from the pod's `imagePullSecrets` (first secret first), by registry host.
    func pullCredentials(_ pod: Pod) -> [String: RegistryCredential] {
        var out: [String: RegistryCredential] = [:]
        for name in pod.spec.imagePullSecrets ?? [] {
            guard let s = view.secrets[pod.metadata.effectiveNamespace + "/" + name], s.type == "kubernetes.io/dockerconfigjson",
                  let bytes = s.data[".dockerconfigjson"], let auths = try? DockerConfigJSON.parse(bytes) else { continue }
            for (host, credential) in auths where out[host] == nil { out[host] = credential }
        }
        return out
    }

    /// Image garbage collection, once a minute: unused images go when the store's disk is too full.
    func collectImages(_ now: Double) {
        guard let puller, now >= imageGCAt else { return }
        imageGCAt = now + 60
        var used = Set<String>()
        for pod in Array(desired.values) + pods.values.map(\.pod) {
            for c in pod.spec.allContainers where c.image != "host" { used.insert(ImageRefs.normalized(c.image)) }
        }
        for r in puller.store.collectGarbage(keeping: used, high: config.imageGCHigh, low: config.imageGCLow) {
            config.log?("image garbage collection removed \(r.name) (\(r.size) bytes), unused since \(Date(timeIntervalSince1970: r.usedAt))")
        }
    }

    /// Deletes a finished run's container, keeping its log as the container's previous log.
    func removeContainer(_ id: String, _ p: PodState, _ name: String) {
        let logs = podsDir + "/" + p.uid + "/logs"
        try? Files.makeDirectories(logs, mode: 0o700)
        rename(runtime.root + "/" + id + "/container.log", logs + "/" + name + ".previous.log")
        try? runtime.delete(id: id, force: true)
    }

    // MARK: sandbox and network

    func createSandbox(_ p: inout PodState) throws {
        guard networkReady, let podCIDR, let ip = try addresses?.assign(p.key) else {
            throw NodeError(podCIDR == nil ? "this node has no pod CIDR yet" + (podCIDRProblem.map { ": " + $0 } ?? " (the control plane gives one)")
                                           : "the pod network is not set up")
        }
        p.ip = ip.description
        let dir = podsDir + "/" + p.uid
        let id = "\(p.uid)-sandbox"
        try Files.makeDirectories(dir + "/sandbox/rootfs")
        try Files.makeDirectories(dir + "/etc")
        try writeEtc(p)
        try Files.write(jsonText(bundles.sandbox(hostname: p.pod.metadata.name, cgroupsPath: "berth/pod-\(p.uid)/sandbox")), to: dir + "/sandbox/config.json", mode: 0o600)
        if Files.exists(runtime.root + "/" + id) { try? runtime.delete(id: id, force: true) }
        let pid = try runtime.create(id: id, bundle: dir + "/sandbox", root: .host)
        do {
            try runtime.start(id: id)
            try network.attachPod(hostSide: vethName(p), bridge: config.bridge, pid: pid, address: "\(ip)/\(podCIDR.prefix)", gateway: podCIDR.first.description,
                                  mtu: podMTU)
        } catch {
            try? runtime.delete(id: id, force: true)
            throw error
        }
        p.sandboxID = id
        p.sandboxPid = pid
    }

    func tearDownSandbox(_ p: PodState) {
        if let id = p.sandboxID { try? runtime.delete(id: id, force: true) }
        network.removeLink(vethName(p))
        if p.terminatingSince != nil { addresses?.release(p.key) }
    }

    func vethName(_ p: PodState) -> String { "vb" + String(p.uid.prefix(10)) }

    /// /etc/hosts (the pod and the namespace's Services), resolv.conf and hostname of a pod.
    func writeEtc(_ p: PodState) throws {
        let etc = podsDir + "/" + p.uid + "/etc"
        let ns = p.pod.metadata.effectiveNamespace
        var hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if let ip = p.ip { hosts += "\(ip)\t\(p.pod.metadata.name)\n" }
        for r in view.services.sorted(by: { $0.name < $1.name }) where r.namespace == ns {
            guard let ip = r.clusterIP else { continue }
            let n = r.name
            hosts += "\(ip)\t\(n) \(n).\(ns) \(n).\(ns).svc \(n).\(ns).svc.\(config.clusterDomain)\n"
        }
        // Written in place: containers bind the file itself, and a rename would leave them the old one.
        try Self.overwrite(etc + "/hosts", hosts)
        let d = config.clusterDomain
        var resolv = "search \(ns).svc.\(d) svc.\(d) \(d)\n"
        for line in (Files.readText("/etc/resolv.conf", limit: 65536) ?? "").split(separator: "\n") where line.hasPrefix("nameserver ") {
            if !line.contains("127.") && !line.contains("::1") { resolv += line + "\n" }
        }
        resolv += "options ndots:5\n"
        try Self.overwrite(etc + "/resolv.conf", resolv)
        try Self.overwrite(etc + "/hostname", p.pod.metadata.name + "\n")
    }

    static func overwrite(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw NodeError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw NodeError("cannot write \(path)") }
    }
}
