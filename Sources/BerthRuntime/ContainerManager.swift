import BerthLinux
import BerthModel
import CBerthLinux
#if canImport(Glibc)
import Glibc
#endif

/// The OCI state of a container, as `berth runtime state` prints it.
public struct ContainerState: Sendable, Equatable {
    public enum Status: String, Sendable { case creating, created, running, paused, stopped }
    public var id: String
    public var status: Status
    public var pid: Int32
    public var bundle: String
    public var exitCode: Int32?
    public var oomKilled = false

    public var json: String {
        var fields: [String: Any] = ["ociVersion": "1.0.2", "id": id, "status": status.rawValue,
                                     "pid": status == .stopped ? 0 : pid, "bundle": bundle]
        if let exitCode {
            fields["annotations"] = ["berth.exitCode": String(exitCode), "berth.oomKilled": String(oomKilled)]
        }
        return jsonText(fields)
    }
}

/// Containers under a state root (`/run/berth/runtime` by default), one directory each: created by a
/// detached berth-shim that outlives the berth process that asked for it.
public struct ContainerManager: Sendable {
    public let root: String
    public let shim: String
    /// Rotation of a detached container's log: the size that starts a new file, and how many files in all.
    public var logMaxBytes = 10 << 20
    public var logFiles = 5

    public init(root: String, shim: String) {
        self.root = root
        self.shim = shim
    }

    func dir(_ id: String) -> String { root + "/" + id }

    static func validate(_ id: String) throws {
        guard !id.isEmpty, id.count <= 128, id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !id.hasPrefix(".") else {
            throw RuntimeError("invalid container id \"\(id)\": letters, digits, '-', '_' and '.' only")
        }
    }

    /// Where a container's root comes from: the bundle's rootfs, an image of the store (through an overlay
    /// with the container's own upper directory, so no write reaches the store), or the host's root, read-only.
    public enum RootSource: Sendable {
        case bundle
        case image(String)
        case host
    }

    /// cgroupsPath in systemd's form, "slice:prefix:name" (runc's --systemd-cgroup), placed where systemd
    /// would put the unit: berth writes the cgroup itself, with or without systemd running.
    public var systemdCgroup = false

    /// "system.slice:docker:abc" → "system.slice/docker-abc.scope"; a nested slice "a-b.slice" lies in
    /// "a.slice/a-b.slice"; an empty slice is system.slice.
    static func systemdPath(_ path: String) throws -> String {
        let parts = path.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[2].isEmpty, !parts.contains(where: { $0.contains("/") || $0 == ".." }) else {
            throw RuntimeError("linux.cgroupsPath \"\(path)\": with --systemd-cgroup it is slice:prefix:name")
        }
        let slice = parts[0].isEmpty ? "system.slice" : parts[0]
        guard slice.hasSuffix(".slice") else { throw RuntimeError("linux.cgroupsPath \"\(path)\": \(slice) is not a .slice") }
        let words = slice.dropLast(6).split(separator: "-")
        let nested = words.indices.map { words[...$0].joined(separator: "-") + ".slice" }
        let unit = parts[2].hasSuffix(".slice") ? parts[2] : (parts[1].isEmpty ? "" : parts[1] + "-") + parts[2] + ".scope"
        return (nested + [unit]).joined(separator: "/")
    }

    /// The image store `create` takes images from (`<state>/images`).
    public var images: String?

    /// Host paths an `image: host` container must not see, besides `hostSecrets` and the runtime's own root
    /// (the node agent adds its state and run directories).
    public var hostHidden: [String] = []

    /// What the host keeps from its users: home directories, password hashes, SSH host keys (listed once).
    static let hostSecrets: [String] = {
        let keys = Files.list("/etc/ssh").filter { $0.hasPrefix("ssh_host_") && !$0.hasSuffix(".pub") }.map { "/etc/ssh/" + $0 }
        return ["/root", "/home", "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-"] + keys.sorted()
    }()

    /// Sets the container up and leaves it waiting before exec; returns its pid.
    /// With `passStdio`, as runc's `create`: the container has the caller's stdin, stdout and stderr (the
    /// caller reads its output until it ends) and no supervisor stays: it is reparented to the caller's
    /// subreaper (containerd's shim, conmon), which reaps it and has its exit code. Otherwise berth-shim
    /// supervises it, copies its output to `<state>/container.log` and records its exit code.
    /// With `consoleSocket` (for a process.terminal), a pty of the container is its stdio and the pty's
    /// master is sent over that unix socket, as runc's --console-socket.
    @discardableResult
    public func create(id: String, bundle: String, passStdio: Bool = false, root source: RootSource = .bundle,
                       consoleSocket: String? = nil) throws -> Int32 {
        try setUp(id: id, bundle: bundle, passStdio: passStdio, root: source, consoleSocket: consoleSocket).container
    }

    /// runc's rules: a terminal needs a console socket to send its master over, and a socket a terminal.
    static func console(terminal: Bool, socket: String?) throws -> Int32 {
        guard terminal == (socket != nil) else {
            throw RuntimeError(terminal ? "process.terminal is true: a terminal needs --console-socket"
                                        : "--console-socket needs process.terminal true")
        }
        guard let socket else { return -1 }
        let fd = berth_unix_connect(socket)
        guard fd >= 0 else { throw RuntimeError("console socket \(socket): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// create, start, wait and delete in one, for `run`. The supervisor is a fork of this process rather
    /// than berth-shim (no exec, no spec file, no exec FIFO: the container runs as soon as it is set up),
    /// and still outlives it. `started` gets the container's pid (to forward signals).
    public func run(id: String, bundle: String, root source: RootSource = .bundle, started: (Int32) -> Void = { _ in }) throws -> Int32 {
        var reply: Int32 = -1
        var made: Cgroup?
        let (pid, supervisor) = try prepare(id: id, bundle: bundle, root: source, fifo: false) { d, config, cgroup, record in
            made = cgroup
            // Hooks wait on a process that waits for `start`: they need create and start.
            guard config.hooks.isEmpty else { throw RuntimeError("\(bundle)/config.json: hooks need create and start rather than run") }
            var message = [CChar](repeating: 0, count: 512)
            func failure() -> RuntimeError {
                RuntimeError("container \(id): " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            // v1 directories are made while the container's namespaces are (the container waits for them,
            // then joins by path). v2 is joined at clone (CLONE_INTO_CGROUP), and a child in a user
            // namespace waits for its id maps: their directories are made first.
            let overlap = cgroup.version == .v1 && !config.spec.namespaces.contains(.user)
            var ready: [Int32] = [-1, -1]
            if overlap {
                guard berth_pipe_cloexec(&ready) == 0 else { throw RuntimeError("pipe: \(String(cString: strerror(errno)))") }
            } else {
                try record()
                try cgroup.make(config.limits)
            }
            let spec = SpecEncoding.encode(config.spec, cgroups: cgroup.paths)
            let sup = berth_fork_supervisor(spec, spec.count, d, ready[0], &reply, &message, 512)
            if ready[0] >= 0 { close(ready[0]) }
            guard sup > 0 else {
                if ready[1] >= 0 { close(ready[1]) }
                throw failure()
            }
            var container: pid_t = 0
            if overlap {
                do {
                    // The state files too are written while the namespaces are made.
                    try record()
                    try cgroup.make(config.limits)
                } catch {
                    // Without its byte the container gives up; its supervisor then exits.
                    close(ready[1])
                    _ = berth_await_supervisor(sup, reply, &container, &message, 512)
                    throw error
                }
                // A supervisor that failed before its container read the byte says why below: no SIGPIPE.
                let previous = signal(SIGPIPE, SIG_IGN)
                _ = write(ready[1], "1", 1)
                signal(SIGPIPE, previous)
                close(ready[1])
            }
            guard berth_await_supervisor(sup, reply, &container, &message, 512) == 0 else { throw failure() }
            return (container, sup)
        }
        started(pid)
        // Held here, the container's mount namespace outlives its last process: its mounts are taken down
        // when this process lets go below, while the supervisor removes the cgroups, rather than before the
        // supervisor hears of the exit.
        let mounts = open("/proc/\(pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        // The supervisor sends the code, then removes the container's cgroups while this process removes
        // its state.
        let code = berth_await_exit(reply)
        if mounts >= 0 { close(mounts) }
        if code >= 0 {
            defer {
                while waitpid(supervisor, nil, 0) < 0 && errno == EINTR {}
                made?.remove() // what the supervisor could not remove, and the parents made for the container
            }
            undoHostMounts(id)
            try Files.removeTree(dir(id))
            return code
        }
        var status: Int32 = 0
        while waitpid(supervisor, &status, 0) < 0 && errno == EINTR {}
        // Without a word, the supervisor's status has the container's code (128+N for a signal), unless
        // it was killed.
        guard status & 0x7f == 0 else {
            try? delete(id: id, force: true) // the error below is the one to report; `delete --force` takes what stays
            throw RuntimeError("container \(id): its supervisor was killed by signal \(status & 0x7f); its exit code is unknown")
        }
        try remove(id)
        return (status >> 8) & 0xff
    }

    func setUp(id: String, bundle: String, passStdio: Bool, root source: RootSource, consoleSocket: String? = nil) throws -> (container: Int32, shim: Int32) {
        try prepare(id: id, bundle: bundle, root: source, fifo: true) { d, config, cgroup, record in
            try record()
            try cgroup.make(config.limits)
            if config.spec.terminal && !passStdio { throw RuntimeError("process.terminal is true: a container with a terminal has no log") }
            let console = try ContainerManager.console(terminal: config.spec.terminal, socket: consoleSocket)
            defer { if console >= 0 { close(console) } }
            var config = config
            if !config.hooks.isEmpty {
                try Files.write(ContainerManager.hooksJSON(config.hooks), to: d + "/hooks.json", mode: 0o600)
                config.spec.hookState = d + "/hook-state.json"
                try Files.write("", to: d + "/hook-state.json", mode: 0o600)
            }
            let spec = SpecEncoding.encode(config.spec, execFifo: d + "/exec.fifo", errorFile: d + "/exec.error", cgroups: cgroup.paths)
            try Files.write(spec, to: d + "/spec.bin", mode: 0o600)
            if passStdio { try Files.write("", to: d + "/unsupervised", mode: 0o600) }
            let started = try startShim(d, passStdio: passStdio, console: console)
            guard !config.hooks.isEmpty else { return started }
            var state = ContainerState(id: id, status: .created, pid: started.container, bundle: Files.absolute(bundle), exitCode: nil)
            do {
                // In place: the container holds this file open for its startContainer hooks.
                let fd = open(d + "/hook-state.json", O_WRONLY | O_TRUNC | O_CLOEXEC)
                let text = state.json
                guard fd >= 0, text.withCString({ write(fd, $0, strlen($0)) }) == text.utf8.count else {
                    if fd >= 0 { close(fd) }
                    throw RuntimeError("cannot write \(d)/hook-state.json: \(String(cString: strerror(errno)))")
                }
                close(fd)
                state.status = .creating
                for kind in ["prestart", "createRuntime", "createContainer"] {
                    try ContainerManager.runHooks(config.hooks[kind] ?? [], kind, state: state)
                }
            } catch {
                _ = Glibc.kill(started.container, SIGKILL)
                awaitExit(d, pid: started.container)
                throw error
            }
            return started
        }
    }

    /// Hooks as `hooks` in a config, for the state directory (`OCIConfig.readHooks(file:)` reads them back).
    static func hooksJSON(_ hooks: [String: [Hook]]) -> String {
        jsonText(hooks.mapValues { list in
            list.map { h -> [String: Any] in
                var o: [String: Any] = ["path": h.path, "args": h.args, "env": h.env]
                if let t = h.timeout { o["timeout"] = t }
                return o
            }
        })
    }

    /// Runs hooks in order with the state on stdin; the first that fails or outlives its timeout stops it.
    static func runHooks(_ hooks: [Hook], _ kind: String, state: ContainerState) throws {
        for h in hooks {
            let r = try Subprocess.run(h.args.isEmpty ? [h.path] : h.args, executable: h.path, env: h.env, stdin: state.json,
                                       timeout: h.timeout.map(Double.init) ?? .infinity)
            let output = r.output.trimmed()
            if r.timedOut { throw RuntimeError("\(kind) hook \(h.path) timed out after \(h.timeout ?? 0) s") }
            guard r.status == 0 else {
                throw RuntimeError("\(kind) hook \(h.path) failed with status \(r.status)" + (output.isEmpty ? "" : ": " + output))
            }
        }
    }

    /// poststart and poststop hooks: a failure is a warning (the runtime spec's rule), on stderr.
    func runAfter(_ kind: String, hooks: [String: [Hook]], state: ContainerState) {
        do { try ContainerManager.runHooks(hooks[kind] ?? [], kind, state: state) } catch {
            let line = "berth runtime: warning: \(error)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }

    /// The state directory, the root and the cgroup's plan of a new container; `start` makes the cgroup and starts its
    /// supervisor.
    /// With `fifo`, the container waits before exec until `start` opens the exec FIFO.
    /// `start` calls `record` (which writes the bundle's and the cgroups' state files) before it makes the
    /// cgroup: clean-up, here or by `delete`, finds the cgroup by that file.
    func prepare<T>(id: String, bundle: String, root source: RootSource, fifo: Bool,
                    start: (String, OCIConfig, Cgroup, _ record: () throws -> Void) throws -> T) throws -> T {
        try ContainerManager.validate(id)
        var config = try OCIConfig(bundle: bundle)
        let d = dir(id)
        try Files.makeDirectories(root, mode: 0o700)
        guard mkdir(d, 0o700) == 0 else {
            throw RuntimeError(errno == EEXIST ? "container \(id) already exists" : "cannot create \(d): \(String(cString: strerror(errno)))")
        }
        do {
            // Writable by all: the container reopens it as its own user (root of a user namespace, or a
            // uid without CAP_DAC_OVERRIDE); the 0700 state directory keeps everyone else from its path.
            if fifo {
                guard mkfifo(d + "/exec.fifo", 0o600) == 0, chmod(d + "/exec.fifo", 0o622) == 0 else {
                    throw RuntimeError("cannot create the exec FIFO: \(String(cString: strerror(errno)))")
                }
            }
            let ownMounts = config.spec.namespaces.contains(.mount)
            if case .bundle = source {} else if !ownMounts {
                throw RuntimeError("\(bundle)/config.json: linux.namespaces: an image or host root needs a new mount namespace")
            }
            switch source {
            case .bundle:
                // In the host's mount namespace, what the container mounts under its root is undone when it
                // is removed: the mounts there before it are noted (a joined namespace keeps its mounts).
                if !ownMounts && !config.spec.joinNamespaces.contains(where: { $0.type == .mount }) {
                    let root = MountTable.canonical(config.spec.rootfs)
                    let before = MountTable.mounts(under: root).map { String($0.id) }
                    try Files.write(([root] + before).joined(separator: "\n") + "\n", to: d + "/host-mounts", mode: 0o600)
                }
            case .image(let name):
                guard let lower = images.flatMap({ ImageRefs.rootfs(root: $0, name: name) }) else { throw RuntimeError("no image named \(name)") }
                for sub in ["rootfs", "upper", "work"] { try Files.makeDirectories(d + "/" + sub) }
                config.spec.rootfs = d + "/rootfs"
                config.spec.rootfsOverlay = "lowerdir=\(lower),upperdir=\(d)/upper,workdir=\(d)/work"
            case .host:
                // The host's root alone (no submounts), read-only, without berth's state and the host's
                // secrets; /tmp, /run, /dev and /proc of its own, the tmpfs ones bounded.
                try Files.makeDirectories(d + "/rootfs")
                config.spec.rootfs = d + "/rootfs"
                config.spec.rootfsSource = "/"
                config.spec.readonlyRoot = true
                let own = ["/tmp", "/run"].filter { t in !config.spec.mounts.contains { $0.target == t } }
                    .map { MountSpec(source: "tmpfs", target: $0, type: "tmpfs", flags: 2 | 4, data: "mode=1777,size=64m") }
                // First, so that the config's mounts below them (a volume at /var/run/x) land on top.
                config.spec.mounts.insert(contentsOf: own, at: 0)
                if let m = config.cgroupMount { config.cgroupMount = (m.index + own.count, m.destination, m.readonly) }
                let mounted = Set(config.spec.mounts.map(\.target))
                for path in ContainerManager.hostSecrets + hostHidden + [root] where !mounted.contains(path) {
                    config.spec.maskedPaths.append(path)
                }
            }
            let relative = try config.cgroupsPath.map { systemdCgroup ? try ContainerManager.systemdPath($0) : String($0.drop { $0 == "/" }) } ?? "berth/\(id)"
            // Made by `start` below (`run` makes it while the container's namespaces are made).
            let cgroup = try Cgroup.plan(relative: relative, limits: config.limits)
            if let m = config.cgroupMount {
                config.spec.mounts.insert(contentsOf: cgroup.mounts(at: m.destination, readonly: m.readonly), at: m.index)
            }
            let absolute = Files.absolute(bundle)
            return try start(d, config, cgroup) {
                try Files.write(absolute, to: d + "/bundle", mode: 0o600)
                try Files.write(cgroup.paths.joined(separator: "\n") + "\n", to: d + "/cgroups", mode: 0o600)
            }
        } catch {
            cgroup(of: id)?.remove()
            undoHostMounts(id)
            try? Files.removeTree(d)
            throw error
        }
    }

    func undoHostMounts(_ id: String) {
        guard let text = Files.readText(dir(id) + "/host-mounts", limit: 1 << 20) else { return }
        let lines = text.split(separator: "\n").map(String.init)
        guard let root = lines.first else { return }
        MountTable.detach(under: root, keeping: Set(lines.dropFirst().compactMap { Int($0) }))
    }

    public func cgroup(of id: String) -> Cgroup? {
        guard let text = Files.readText(dir(id) + "/cgroups", limit: 65536) else { return nil }
        let paths = text.split(separator: "\n").map(String.init)
        guard !paths.isEmpty else { return nil }
        // v2 has one directory; v1 one per controller, memory, cpu, pids and devices at least.
        return Cgroup(version: paths.count > 1 ? .v1 : .v2, paths: paths)
    }

    /// The shim gets the notify pipe as fd 3 and the console socket as fd 4: both are copied above 9 first,
    /// so that neither dup2 lands on the other's source.
    private func startShim(_ d: String, passStdio: Bool, console: Int32 = -1) throws -> (container: Int32, shim: Int32) {
        var fds: [Int32] = [0, 0]
        guard berth_pipe_cloexec(&fds) == 0 else { throw RuntimeError("pipe: \(String(cString: strerror(errno)))") }
        let notify = fcntl(fds[1], F_DUPFD_CLOEXEC, 10)
        close(fds[1])
        fds[1] = notify
        let high = console >= 0 ? fcntl(console, F_DUPFD_CLOEXEC, 10) : -1
        defer { if high >= 0 { close(high) } }
        guard notify >= 0, console < 0 || high >= 0 else {
            close(fds[0])
            if notify >= 0 { close(notify) }
            throw RuntimeError("fcntl: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, notify, 3)
        if high >= 0 { posix_spawn_file_actions_adddup2(&actions, high, 4) }
        if !passStdio {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let args: [String] = passStdio ? [shim, d, "3", "detach"] + (high >= 0 ? ["console"] : [])
            : [shim, d, "3", "log", String(logMaxBytes), String(logFiles)]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, shim, &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw RuntimeError("cannot start \(shim): \(String(cString: strerror(rc)))")
        }
        // One line: the container (waiting before exec) still holds the pipe, so there is no EOF to wait for.
        var reply = [UInt8]()
        var byte: UInt8 = 0
        while reply.count < 4096 {
            let n = read(fds[0], &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == 10 { break }
            reply.append(byte)
        }
        close(fds[0])
        let text = String(decoding: reply, as: UTF8.self).trimmed()
        if text.hasPrefix("ok "), let containerPid = Int32(text.dropFirst(3)) {
            if passStdio {
                // It exits at once; the container is then the caller's subreaper's (or init's) to reap.
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return (containerPid, pid)
            }
            // The shim lives as long as the container; whoever keeps running reaps it then.
            Reaper.watch(pid)
            return (containerPid, pid)
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let id = String(d.split(separator: "/").last ?? "")
        throw RuntimeError("container \(id): " + (text.hasPrefix("error ") ? String(text.dropFirst(6)) : "berth-shim failed"))
    }

    /// Lets a created container exec its process.
    public func start(id: String) throws {
        var st = try state(id: id)
        guard st.status == .created else { throw RuntimeError("container \(id) is \(st.status.rawValue), not created") }
        let hooks = try OCIConfig.readHooks(file: dir(id) + "/hooks.json")
        try release(id)
        st.status = .running
        runAfter("poststart", hooks: hooks, state: st)
    }

    /// Opens the exec FIFO: the container's process goes on to execve.
    func release(_ id: String) throws {
        let d = dir(id)
        let fd = open(d + "/exec.fifo", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RuntimeError("cannot open the exec FIFO of \(id): \(String(cString: strerror(errno)))") }
        var byte: UInt8 = 0
        while read(fd, &byte, 1) > 0 {}
        close(fd)
        unlink(d + "/exec.fifo")
        if let data = Files.read(d + "/exec.error", limit: 4096), data.count >= MemoryLayout<berth_error>.size {
            let e = data.withUnsafeBytes { $0.loadUnaligned(as: berth_error.self) }
            throw RuntimeError("container \(id): \(LinuxError(e))")
        }
    }

    public func state(id: String) throws -> ContainerState {
        try ContainerManager.validate(id)
        let d = dir(id)
        guard let bundle = Files.readText(d + "/bundle", limit: 65536) else {
            throw RuntimeError("container \(id) does not exist")
        }
        let pidLine = Files.readText(d + "/pid", limit: 4096) ?? "0 0"
        let parts = pidLine.split(whereSeparator: { $0 == " " || $0 == "\n" })
        let pid = Int32(parts.first ?? "0") ?? 0
        let start = UInt64(parts.count > 1 ? parts[1] : "0") ?? 0
        var s = ContainerState(id: id, status: .stopped, pid: pid, bundle: bundle, exitCode: nil)
        func recorded() -> Bool {
            guard let exit = Files.readText(d + "/exit", limit: 4096) else { return false }
            s.exitCode = Int32(exit.trimmed())
            // OOMKilled only when it died of SIGKILL and the cgroup saw an OOM kill.
            s.oomKilled = s.exitCode == 128 + SIGKILL && (cgroup(of: id)?.oomKills ?? 0) > 0
            return true
        }
        if recorded() { return s }
        guard pid > 0, ContainerManager.startTime(pid) == start else {
            // Just exited: its supervisor records the exit code right after reaping it (an unsupervised
            // one's exit code is its reaper's to know).
            let supervised = !Files.exists(d + "/unsupervised")
            for _ in 0..<200 where supervised && !Files.exists(d + "/exit") && Files.exists(d + "/bundle") { usleep(1000) }
            _ = recorded()
            return s
        }
        // `paused` is noted by pause (the node agent asks every container's state each tick: one stat, not
        // the cgroup's files).
        s.status = Files.exists(d + "/exec.fifo") ? .created : Files.exists(d + "/paused") ? .paused : .running
        return s
    }

    static func startTime(_ pid: Int32) -> UInt64? {
        guard let stat = Files.readText("/proc/\(pid)/stat", limit: 4096),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Field 22 (starttime) is the 20th after the command name; a zombie has exited already.
        guard fields.count > 19, fields[0] != "Z" else { return nil }
        return UInt64(fields[19])
    }

    /// Freezes a running container's processes (`paused`), or thaws a paused one.
    public func pause(id: String, _ on: Bool) throws {
        let s = try state(id: id)
        guard s.status == (on ? .running : .paused) else { throw RuntimeError("container \(id) is \(s.status.rawValue), not \(on ? "running" : "paused")") }
        guard let cgroup = cgroup(of: id) else { throw RuntimeError("container \(id) has no cgroup") }
        do {
            try cgroup.freeze(on)
            if on { try Files.write("", to: dir(id) + "/paused", mode: 0o600) } else { unlink(dir(id) + "/paused") }
        } catch { throw RuntimeError("container \(id): \(error)") }
    }

    /// Changes the cgroup limits of a container that has not stopped (runc's `update`); fields left nil
    /// stay as they are.
    public func update(id: String, limits: CgroupLimits) throws {
        let s = try state(id: id)
        guard s.status != .stopped, let cgroup = cgroup(of: id) else { throw RuntimeError("container \(id) is not running") }
        guard limits.devices.isEmpty else { throw RuntimeError("update: linux.resources.devices are set when the container is created") }
        do { try cgroup.apply(limits) } catch { throw RuntimeError("container \(id): \(error)") }
    }

    /// With `all`, every process in the container's cgroup gets the signal (runc's `kill --all`).
    public func kill(id: String, signal: Int32, all: Bool = false) throws {
        let s = try state(id: id)
        if all, let cgroup = cgroup(of: id) {
            for pid in cgroup.processes { _ = Glibc.kill(pid, signal) }
            return
        }
        guard s.status != .stopped else { throw RuntimeError("container \(id) is not running") }
        guard Glibc.kill(s.pid, signal) == 0 else { throw RuntimeError("kill \(id): \(String(cString: strerror(errno)))") }
    }

    public func delete(id: String, force: Bool) throws {
        let s = try state(id: id)
        if s.status != .stopped {
            guard force else { throw RuntimeError("container \(id) is \(s.status.rawValue); stop it first or use --force") }
            _ = Glibc.kill(s.pid, SIGKILL)
            // A frozen process dies only once thawed.
            if s.status == .paused { try? cgroup(of: id)?.freeze(false) }
            awaitExit(dir(id), pid: s.pid)
        }
        let hooks = (try? OCIConfig.readHooks(file: dir(id) + "/hooks.json")) ?? [:]
        try remove(id)
        var stopped = s
        stopped.status = .stopped
        runAfter("poststop", hooks: hooks, state: stopped)
    }

    /// Waits for a killed container's process to go and, when a shim supervises it, for the shim to record
    /// its exit: removing the state directory under the shim would race.
    func awaitExit(_ d: String, pid: Int32) {
        _ = berth_wait_pid_exit(pid, 5000)
        let supervised = !Files.exists(d + "/unsupervised")
        for _ in 0..<5000 where supervised && !Files.exists(d + "/exit") { usleep(1000) }
    }

    /// The cgroup, the mounts made in the host's namespace and the state directory of a stopped container.
    func remove(_ id: String) throws {
        cgroup(of: id)?.remove()
        undoHostMounts(id)
        try Files.removeTree(dir(id))
    }

    /// Runs a command in a running container with the container's whole security context: its namespaces
    /// and cgroups, user and groups, capabilities, rlimits, no_new_privs and seccomp filter (exec probes).
    /// Only containers made by `create` (which keeps their encoded spec) can be entered.
    public func exec(id: String, _ argv: [String], env: [String], timeout: Double) throws -> ProcessResult {
        let (pid, cgroups, identity) = try entry(id)
        return try Subprocess.exec(inContainer: pid, argv, env: env, cgroups: cgroups, identity: identity, timeout: timeout)
    }

    /// runc's `exec`: starts `process` (its args, env, cwd, user, capabilities, rlimits, no_new_privs and
    /// terminal; the rest is the container's, its seccomp filter included) in a running container, with
    /// the caller's stdio, or a pty whose master goes over `consoleSocket`. Returns once the process has
    /// exec'd (or failed to: thrown): its pid, and the helper that exits with its status, at once when
    /// `detach` (the process is then the caller's subreaper's to reap).
    public func exec(id: String, process: ContainerSpec, consoleSocket: String?, detach: Bool) throws -> (pid: Int32, helper: pid_t) {
        let (target, cgroups, identity) = try entry(id)
        let console = try ContainerManager.console(terminal: process.terminal, socket: consoleSocket)
        var fds: [Int32] = [0, 0]
        guard berth_pipe_cloexec(&fds) == 0 else {
            if console >= 0 { close(console) }
            throw RuntimeError("pipe: \(String(cString: strerror(errno)))")
        }
        let helper: pid_t
        do {
            helper = try Subprocess.enter(container: target, process.args, env: process.env, cgroups: cgroups, identity: identity,
                                          process: SpecEncoding.encodeProcess(process),
                                          io: berth_exec_io(out_fd: -1, console_fd: console, pid_fd: fds[1], detach: detach ? 1 : 0))
        } catch {
            close(fds[0]); close(fds[1])
            if console >= 0 { close(console) }
            throw RuntimeError("container \(id): \(error)")
        }
        close(fds[1])
        if console >= 0 { close(console) }
        // The pid, then EOF once the process has exec'd; a line starting "error " if it could not.
        let reply = Files.read(fd: fds[0], limit: 65536) ?? []
        close(fds[0])
        let lines = String(decoding: reply, as: UTF8.self).split(separator: "\n")
        if let failure = lines.first(where: { $0.hasPrefix("error ") }) ?? (lines.contains { Int32($0) != nil } ? nil : "error the helper failed") {
            var status: Int32 = 0
            while waitpid(helper, &status, 0) < 0 && errno == EINTR {}
            throw RuntimeError("container \(id): exec: \(failure.dropFirst(6))")
        }
        let pid = lines.lazy.compactMap { Int32($0) }.first!
        return (pid, helper)
    }

    /// What entering a running container takes: its process, cgroups and encoded spec.
    func entry(_ id: String) throws -> (pid: Int32, cgroups: [String], identity: [UInt8]) {
        let s = try state(id: id)
        guard s.status == .running, let cgroup = cgroup(of: id) else { throw RuntimeError("container \(id) is not running") }
        guard let identity = Files.read(dir(id) + "/spec.bin", limit: 16 << 20) else {
            throw RuntimeError("container \(id) has no recorded spec to enter it with")
        }
        return (s.pid, cgroup.paths, identity)
    }

    /// The cgroup of a created or running container.
    public func liveCgroup(id: String) throws -> Cgroup {
        let s = try state(id: id)
        guard s.status != .stopped, let cgroup = cgroup(of: id) else { throw RuntimeError("container \(id) is not running") }
        return cgroup
    }

    /// The usage of a created or running container's cgroup.
    public func stats(id: String) throws -> CgroupStats {
        try liveCgroup(id: id).stats
    }

    public func list() -> [ContainerState] {
        Files.list(root).sorted().compactMap { try? state(id: $0) }
    }
}
