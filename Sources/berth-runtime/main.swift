// berth-runtime: the OCI runtime (runc-compatible subset), as `berth runtime` runs it and as a drop-in
// `--runtime` for tools that drive runc. No Foundation and no argument-parsing library: a container
// start is a few milliseconds, and the Swift process's own start-up is most of what berth adds.
import BerthLinux
import BerthModel
import BerthRuntime
import CBerthLinux
#if canImport(Glibc)
import Glibc
#endif

let usage = """
    usage: berth runtime [OPTIONS] COMMAND [ARGS]
    The OCI runtime (runc-compatible subset): containers from bundles (config.json + rootfs).

    commands:
      run [--bundle DIR] ID      create, start, wait, remove; exits with the container's code (128+N for a signal)
      create [--bundle DIR] ID   set a container up; its process waits for `start`. It keeps the stdin,
                                 stdout and stderr of `create` (as runc's do), or with --container-log
                                 writes to STATE/ID/container.log; with process.terminal, a pty is its
                                 stdio and the pty's master goes over --console-socket
      exec [OPTIONS] ID [COMMAND [ARG...]]
                                 run a process in a running container, as its own process runs (user,
                                 capabilities, seccomp filter...): COMMAND, or --process FILE (a runtime
                                 spec process object); waits and exits with its code, or with --detach
                                 returns once it runs. -e K=V (added to the container's environment),
                                 --cwd DIR, -u UID[:GID], -t (a terminal, over --console-socket)
      start ID                   let a created container run its process
      state ID                   print a container's state as OCI state JSON
      kill [--all] ID [SIGNAL]   send a signal (default TERM); --all: to every process of the container
      delete [--force] ID        remove a stopped container (--force: kill it first)
      list                       list containers
      pause ID | resume ID       freeze or thaw every process of the container (cgroup freezer)
      ps [--format table|json] ID [-- PS-ARGS]
                                 the container's processes: ps(1)'s lines (default -ef) for them, or
                                 their pids as a JSON list
      features                   what this runtime supports, as runc's `features` JSON
      update [OPTIONS] ID        change a container's cgroup limits: --resources FILE (a linux.resources
                                 object; - for stdin), --memory, --memory-reservation, --memory-swap
                                 (bytes, or with k/m/g), --cpu-shares, --cpu-quota, --cpu-period,
                                 --cpuset-cpus, --cpuset-mems, --pids-limit, --blkio-weight
      events [--stats] ID        the container's cgroup usage as JSON lines: with --stats once; otherwise
                                 every --interval (default 5s) and an "oom" event at each OOM kill,
                                 until the container stops
      spec [--bundle DIR] [--init]
                                 write config.json with berth's defaults; --init runs the process under
                                 berth-init (PID 1 that forwards signals and reaps orphans)

    options (before or after the command):
      --root DIR                 directory for runtime state (default /run/berth/runtime)
      --systemd-cgroup           linux.cgroupsPath is systemd's slice:prefix:name (the cgroup is made
                                 where systemd would make the unit's); --no-new-keyring and --no-pivot
                                 are accepted (berth makes no keyring; it always pivots)
      --log FILE                 errors are appended to FILE rather than written to stderr
      --log-format text|json     the form of --log lines (json: runc's {"level","msg","time"})
      -b, --bundle DIR           bundle directory (default .)
      --pid-file FILE            create, run, exec: write the (exec'd) process's pid to FILE
      --console-socket PATH      create, exec: the unix socket a terminal's master is sent over
      --image NAME|host          root from an image of the store (an overlay per container), or `host`
                                 for a read-only view of this machine's root
      --state-dir DIR            state directory of the image store (default /var/lib/berth)
      --container-log            create: the container's output goes to a log in its state directory
      --log-max-bytes N          that log rotates past N bytes (default 10485760; implies --container-log)
      --log-files N              log files kept, the current one included (default 5; implies --container-log)
      -f, --force                delete: kill the container first
      --interval DURATION        events: time between stats (5s, 500ms; default 5s)

    """

/// Where errors go: stderr, or the file of --log (runc's clients, containerd's shim among them, read the
/// reason of a failure there), as text or as runc's JSON lines.
nonisolated(unsafe) var errorLog: (path: String, json: Bool)?

func fail(_ message: String, status: Int32 = 1) -> Never {
    let text = "berth runtime: \(message)\n"
    if let log = errorLog {
        let line = log.json ? jsonText(["level": "error", "msg": message, "time": utcNow()], indent: nil) + "\n" : text
        let fd = open(log.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 {
            _ = line.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            exit(status)
        }
    }
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(status)
}

func say(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(1, $0, strlen($0)) }
}

struct Arguments {
    var root = "/run/berth/runtime"
    var bundle = "."
    var image: String?
    var stateDir = "/var/lib/berth"
    var logMaxBytes = 10 << 20
    var logFiles = 5
    var containerLog = false
    var systemdCgroup = false
    var pidFile: String?
    var log: String?
    var logFormat = "text"
    var force = false
    var all = false
    var format = "table"
    var withInit = false
    var statsOnce = false
    var intervalMs: Int32 = 5000
    var consoleSocket: String?
    var processFile: String?
    var detach = false
    var tty = false
    var env: [String] = []
    var cwd: String?
    var user: String?
    var resources: String?
    var limits = CgroupLimits()
    var positional: [String] = []

    init(_ args: ArraySlice<String>) {
        var it = args.makeIterator()
        func value(_ name: String) -> String {
            guard let v = it.next() else { fail("\(name) needs a value", status: 2) }
            return v
        }
        func number(_ name: String) -> Int {
            guard let n = Int(value(name)), n > 0 else { fail("\(name) needs a positive number", status: 2) }
            return n
        }
        while let a = it.next() {
            // exec ID COMMAND...: the command's own arguments are not berth's options.
            if positional.first == "exec" && positional.count >= 2 {
                positional.append(a)
                continue
            }
            var arg = a
            var inline: String?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                arg = String(a[..<eq])
                inline = String(a[a.index(after: eq)...])
            }
            func take(_ name: String) -> String { inline ?? value(name) }
            switch arg {
            case "--root": root = take(arg)
            case "-b", "--bundle": bundle = take(arg)
            case "--image": image = take(arg)
            case "--state-dir": stateDir = take(arg)
            case "--log-max-bytes": logMaxBytes = inline.flatMap { Int($0) } ?? number(arg); containerLog = true
            case "--log-files": logFiles = inline.flatMap { Int($0) } ?? number(arg); containerLog = true
            case "--container-log": containerLog = true
            case "--systemd-cgroup": systemdCgroup = true
            // runc's: berth makes no session keyring and always pivots (the safer of the two), so these ask
            // for what it does anyway.
            case "--no-new-keyring", "--no-pivot": break
            case "--pid-file": pidFile = take(arg)
            case "--console-socket": consoleSocket = take(arg)
            case "-p", "--process": processFile = take(arg)
            case "-d", "--detach": detach = true
            case "-t", "--tty": tty = true
            case "-e", "--env": env.append(take(arg))
            case "--cwd": cwd = take(arg)
            case "-r", "--resources": resources = take(arg)
            case "--memory": limits.memoryBytes = bytes(arg, take(arg))
            case "--memory-reservation": limits.memoryReservation = bytes(arg, take(arg))
            case "--memory-swap": limits.memorySwap = bytes(arg, take(arg))
            case "--cpu-shares": limits.cpuShares = UInt64(bytes(arg, take(arg)))
            case "--cpu-quota": limits.cpuQuota = bytes(arg, take(arg))
            case "--cpu-period": limits.cpuPeriod = UInt64(bytes(arg, take(arg)))
            case "--pids-limit": limits.pidsMax = bytes(arg, take(arg))
            case "--cpuset-cpus": limits.cpusetCpus = take(arg)
            case "--cpuset-mems": limits.cpusetMems = take(arg)
            case "--blkio-weight":
                guard let w = UInt16(take(arg)), (10...1000).contains(w) else { fail("--blkio-weight is between 10 and 1000", status: 2) }
                limits.blkioWeight = w
            case "-u", "--user": user = take(arg)
            case "--preserve-fds":
                // Descriptors beyond stdio are not passed into containers.
                guard take(arg) == "0" else { fail("--preserve-fds: berth passes no descriptors beyond stdio", status: 2) }
            case "--log": log = take(arg)
            case "--log-format":
                logFormat = take(arg)
                guard logFormat == "text" || logFormat == "json" else { fail("--log-format is text or json", status: 2) }
            case "-f" where positional.first == "ps", "--format":
                format = take(arg)
                guard format == "table" || format == "json" else { fail("--format is table or json", status: 2) }
            case "-f", "--force": force = true
            case "--":
                // ps: what follows goes to ps(1) as it is.
                while let rest = it.next() { positional.append(rest) }
            case "-a", "--all": all = true
            case "--init": withInit = true
            case "--stats": statsOnce = true
            case "--interval":
                let text = take(arg)
                let (digits, scale) = text.hasSuffix("ms") ? (text.dropLast(2), 1) : text.hasSuffix("s") ? (text.dropLast(), 1000) : (Substring(text), 1000)
                guard let n = Int32(digits), n > 0, n <= 86_400_000 / Int32(scale) else { fail("--interval needs a duration such as 5s or 500ms", status: 2) }
                intervalMs = n * Int32(scale)
            case "-h", "--help", "help":
                _ = usage.withCString { write(1, $0, strlen($0)) }
                exit(0)
            default:
                if arg.hasPrefix("-") && arg.count > 1 && Int(arg) == nil { fail("unknown option \(arg)", status: 2) }
                positional.append(a)
            }
        }
    }

    var source: ContainerManager.RootSource {
        switch image {
        case nil: return .bundle
        case "host"?: return .host
        case let name?: return .image(name)
        }
    }

    /// berth-shim and berth-init are installed next to this binary.
    func sibling(_ name: String) -> String {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/self/exe", &buf, 4096)
        let exe = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        return Files.parentPath(exe) + "/" + name
    }

    var manager: ContainerManager {
        var m = ContainerManager(root: root, shim: sibling("berth-shim"))
        m.logMaxBytes = logMaxBytes
        m.logFiles = logFiles
        m.images = stateDir + "/images"
        m.systemdCgroup = systemdCgroup
        return m
    }

    /// The one positional argument a command takes after its name.
    func id(_ command: String) -> String {
        guard positional.count == 2 else { fail("\(command) needs a container id", status: 2) }
        return positional[1]
    }
}

/// A number of bytes: digits, optionally with k, m or g (binary, as runc's update takes them); -1 for
/// "unlimited" where the field allows it.
func bytes(_ option: String, _ text: String) -> Int64 {
    let scales: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
    var digits = Substring(text.lowercased())
    if digits.hasSuffix("b") { digits = digits.dropLast() }
    let scale = digits.last.flatMap { scales[$0] } ?? 1
    if scale > 1 { digits = digits.dropLast() }
    guard let n = Int64(digits), n >= -1, n.multipliedReportingOverflow(by: scale).overflow == false else {
        fail("\(option) needs a number (k, m or g allowed), not \(text)", status: 2)
    }
    return n * (n < 0 ? 1 : scale)
}

/// A function, not a dictionary: a global of main.swift is made at every start, whatever the command.
func signalNumber(_ name: String) -> Int32? {
    switch name {
    case "TERM": SIGTERM
    case "KILL": SIGKILL
    case "INT": SIGINT
    case "HUP": SIGHUP
    case "QUIT": SIGQUIT
    case "USR1": SIGUSR1
    case "USR2": SIGUSR2
    case "STOP": SIGSTOP
    case "CONT": SIGCONT
    case "ALRM": SIGALRM
    case "WINCH": SIGWINCH
    default: nil
    }
}

/// The container `run` forwards signals to; read by the signal handler, so a plain global.
nonisolated(unsafe) var forwardTo: pid_t = 0

/// runc's `events` stats line: {"type": "stats", "id": ..., "data": {"cpu": ..., "memory": ..., ...}}.
func statsEvent(_ id: String, _ cgroup: Cgroup) -> String {
    jsonText(["type": "stats", "id": id, "data": cgroup.runcStats], indent: nil)
}

/// RFC 3339 in UTC, as runc's JSON log lines carry.
func utcNow() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    var buf = [CChar](repeating: 0, count: 32)
    let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
    return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func attempt<T>(_ body: () throws -> T) -> T {
    do { return try body() } catch { fail("\(error)") }
}

let args = Arguments(CommandLine.arguments.dropFirst())
if let log = args.log { errorLog = (log, args.logFormat == "json") }
guard let command = args.positional.first else {
    _ = usage.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

switch command {
case "create":
    let m = args.manager
    let pid = attempt {
        try m.create(id: args.id(command), bundle: args.bundle, passStdio: !args.containerLog, root: args.source, consoleSocket: args.consoleSocket)
    }
    // Written whole (Files.write renames a temporary file), as clients poll for it.
    if let path = args.pidFile { attempt { try Files.write("\(pid)", to: path) } }
case "exec":
    guard args.positional.count >= 2 else { fail("exec needs a container id", status: 2) }
    let id = args.positional[1]
    let m = args.manager
    let process: ContainerSpec = attempt {
        if let file = args.processFile {
            guard args.positional.count == 2 else { throw RuntimeError("exec: give the command in --process or as arguments, not both") }
            return try OCIConfig.process(file: file)
        }
        guard args.positional.count > 2 else { throw RuntimeError("exec needs a command (or --process FILE)") }
        // As runc: the container's own process, with the command and what the options change.
        var p = try OCIConfig(bundle: m.state(id: id).bundle).spec
        p.args = Array(args.positional[2...])
        p.env += args.env
        if let cwd = args.cwd { p.cwd = cwd }
        p.terminal = args.tty
        if let user = args.user {
            let ids = user.split(separator: ":", omittingEmptySubsequences: false)
            guard ids.count <= 2, let uid = UInt32(ids[0]), ids.count == 1 || UInt32(ids[1]) != nil else {
                throw RuntimeError("--user \(user): must be UID or UID:GID (numbers)")
            }
            p.uid = uid
            p.gid = ids.count == 2 ? UInt32(ids[1])! : 0
            p.additionalGids = []
        }
        return p
    }
    let (pid, helper) = attempt { try m.exec(id: id, process: process, consoleSocket: args.consoleSocket, detach: args.detach) }
    if let path = args.pidFile {
        do { try Files.write("\(pid)", to: path) } catch { _ = kill(pid, SIGKILL); fail("\(error)") }
    }
    if !args.detach {
        forwardTo = pid
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH] {
            signal(sig) { s in _ = kill(forwardTo, s) }
        }
    }
    var status: Int32 = 0
    while waitpid(helper, &status, 0) < 0 && errno == EINTR {}
    exit(args.detach ? 0 : status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
case "start":
    attempt { try args.manager.start(id: args.id(command)) }
case "state":
    say(attempt { try args.manager.state(id: args.id(command)).json })
case "kill":
    guard args.positional.count == 2 || args.positional.count == 3 else { fail("kill needs a container id and an optional signal", status: 2) }
    let name = args.positional.count == 3 ? args.positional[2] : "TERM"
    let upper = name.uppercased()
    let bare = upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper
    guard let sig = signalNumber(bare) ?? Int32(name), sig > 0, sig < 65 else { fail("unknown signal \(name)", status: 2) }
    attempt { try args.manager.kill(id: args.positional[1], signal: sig, all: args.all) }
case "delete":
    attempt { try args.manager.delete(id: args.id(command), force: args.force) }
case "ps":
    guard args.positional.count >= 2 else { fail("ps needs a container id", status: 2) }
    let id = args.positional[1]
    let m = args.manager
    _ = attempt { try m.state(id: id) }
    let pids = m.cgroup(of: id)?.processes ?? []
    if args.format == "json" {
        say("[" + pids.map(String.init).joined(separator: ",") + "]")
        exit(0)
    }
    let psArgs = args.positional.count > 2 ? Array(args.positional[2...]) : ["-ef"]
    let listing = attempt { try Subprocess.run(["/usr/bin/env", "ps"] + psArgs) }
    guard listing.status == 0 else { fail("ps \(psArgs.joined(separator: " ")): \(listing.output)") }
    let lines = listing.output.split(separator: "\n", omittingEmptySubsequences: false)
    guard let header = lines.first, let column = header.split(separator: " ").firstIndex(of: "PID") else {
        fail("ps \(psArgs.joined(separator: " ")) printed no PID column")
    }
    let wanted = Set(pids)
    say(String(header))
    for line in lines.dropFirst() {
        let fields = line.split(separator: " ")
        if fields.count > column, let pid = Int32(fields[column]), wanted.contains(pid) { say(String(line)) }
    }
case "update":
    let id = args.id(command)
    let m = args.manager
    // The file's settings, then the options over them.
    if let file = args.resources { attempt { try m.update(id: id, limits: OCIConfig.resources(file: file)) } }
    attempt { try m.update(id: id, limits: args.limits) }
case "pause", "resume":
    attempt { try args.manager.pause(id: args.id(command), command == "pause") }
case "features":
    say(jsonText(RuntimeFeatures.json))
case "list":
    say("ID\tPID\tSTATUS\tBUNDLE")
    for s in args.manager.list() { say("\(s.id)\t\(s.status == .stopped ? 0 : s.pid)\t\(s.status.rawValue)\t\(s.bundle)") }
case "events":
    let id = args.id(command)
    let m = args.manager
    let cgroup = attempt { try m.liveCgroup(id: id) }
    if args.statsOnce {
        say(statsEvent(id, cgroup))
        exit(0)
    }
    let pid = attempt { try m.state(id: id) }.pid
    // Wakes for an OOM kill, the container's exit, or the next interval.
    var fds = [pollfd(fd: cgroup.oomNotifier(), events: Int16(POLLIN), revents: 0),
               pollfd(fd: berth_pidfd(pid), events: Int16(POLLIN), revents: 0)]
    var ooms = cgroup.oomKills
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = poll(&fds, 2, args.intervalMs)
        if n < 0 && errno == EINTR { continue }
        if fds[0].revents != 0 { _ = read(fds[0].fd, &buf, buf.count) }
        let stopped = fds[1].revents != 0 || (try? m.state(id: id).status) ?? .stopped == .stopped
        let kills = cgroup.oomKills
        if kills > ooms {
            say(jsonText(["type": "oom", "id": id], indent: nil))
            ooms = kills
        }
        if stopped { exit(0) }
        if n == 0 { say(statsEvent(id, cgroup)) }
    }
case "spec":
    let path = args.bundle + "/config.json"
    if Files.exists(path) { fail("\(path) exists already") }
    let initPath = args.withInit ? args.sibling("berth-init") : nil
    if let initPath, !Files.exists(initPath) { fail("\(initPath) is missing; build it with scripts/setup") }
    attempt { try Files.write(jsonText(DefaultSpec.config(initBinary: initPath)) + "\n", to: path) }
case "run":
    let id = args.id(command)
    let m = args.manager
    let code = attempt {
        try m.run(id: id, bundle: args.bundle, root: args.source) { pid in
            if let path = args.pidFile {
                do { try Files.write("\(pid)", to: path) } catch { _ = kill(pid, SIGKILL); fail("\(error)") }
            }
            // Signals for berth go to the container's process, as runc forwards them.
            forwardTo = pid
            for sig in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] {
                signal(sig) { s in _ = kill(forwardTo, s) }
            }
        }
    }
    exit(code)
default:
    fail("unknown command \(command); see --help", status: 2)
}
