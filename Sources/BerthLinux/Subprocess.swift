import CBerthLinux
#if canImport(Glibc)
import Glibc
#endif

/// How a helper program ended: its exit status (128+N for signal N), what it printed (stdout and stderr
/// together, up to 1 MiB), and whether it ran out of time (and was killed).
public struct ProcessResult: Sendable {
    public var status: Int32
    public var output: String
    public var timedOut: Bool
}

/// Helper programs (`ip`, `nft`) and commands inside containers (exec probes), with a deadline.
public enum Subprocess {
    /// Runs `argv` (argv[0] an absolute path, unless `executable` is given), `stdin` fed from an in-memory
    /// file so that any size fits; with `env`, that environment rather than this process's.
    public static func run(_ argv: [String], executable: String? = nil, env: [String]? = nil, stdin: String? = nil,
                           timeout: Double = 30) throws(LinuxError) -> ProcessResult {
        var fds: [Int32] = [0, 0]
        guard berth_pipe_cloexec(&fds) == 0 else { throw LinuxError(stage: "subprocess", syscall: "pipe2", errno: errno) }
        var input: Int32 = -1
        if let stdin {
            input = berth_memfd("stdin")
            let bytes = Array(stdin.utf8)
            guard input >= 0, bytes.withUnsafeBytes({ Glibc.write(input, $0.baseAddress, $0.count) }) == bytes.count else {
                close(fds[0]); close(fds[1])
                throw LinuxError(stage: "subprocess", syscall: "memfd", errno: errno)
            }
            lseek(input, 0, SEEK_SET)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input >= 0 { posix_spawn_file_actions_adddup2(&actions, input, 0) } else { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so that a timeout kills what it started too.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cargv.forEach { free($0) } }
        var pid: pid_t = 0
        let path = executable ?? argv[0]
        let rc: Int32
        if let env {
            let cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
            defer { cenv.forEach { free($0) } }
            rc = posix_spawn(&pid, path, &actions, &attributes, cargv, cenv)
        } else {
            rc = posix_spawn(&pid, path, &actions, &attributes, cargv, environ)
        }
        close(fds[1])
        if input >= 0 { close(input) }
        guard rc == 0 else {
            close(fds[0])
            throw LinuxError(stage: "subprocess", syscall: "posix_spawn", path: path, errno: rc)
        }
        return collect(pid: pid, from: fds[0], timeout: timeout, group: true)
    }

    /// Runs `argv` inside the namespaces and cgroups of a running container whose process is `pid`, as
    /// the container's process runs: `identity` is its spec as encoded for the shim (SpecEncoding), whose
    /// user, groups, capabilities, rlimits, no_new_privs, seccomp filter and working directory apply.
    public static func exec(inContainer pid: Int32, _ argv: [String], env: [String], cgroups: [String],
                            identity: [UInt8], timeout: Double) throws(LinuxError) -> ProcessResult {
        var fds: [Int32] = [0, 0]
        guard berth_pipe_cloexec(&fds) == 0 else { throw LinuxError(stage: "exec", syscall: "pipe2", errno: errno) }
        let helper: pid_t
        do {
            helper = try enter(container: pid, argv, env: env, cgroups: cgroups, identity: identity,
                               io: berth_exec_io(out_fd: fds[1], console_fd: -1, pid_fd: -1, detach: 0))
        } catch {
            close(fds[0]); close(fds[1])
            throw error
        }
        close(fds[1])
        return collect(pid: helper, from: fds[0], timeout: timeout, group: false)
    }

    /// Starts `argv` in a running container as `exec(inContainer:)` does, its stdio as `io` says (its
    /// descriptors are the helper's to close); returns the helper, which exits with the program's status.
    /// `process` (SpecEncoding.encodeProcess) replaces the container's process fields.
    public static func enter(container pid: Int32, _ argv: [String], env: [String], cgroups: [String],
                             identity: [UInt8], process: [UInt8] = [], io: berth_exec_io) throws(LinuxError) -> pid_t {
        guard !argv.isEmpty else { throw LinuxError(stage: "exec", syscall: "execve", errno: EINVAL) }
        let a = CStrings(argv), e = CStrings(env), c = CStrings(cgroups)
        var io = io
        // The decoded spec's strings point into `identity` and `process`: decoded and used within one
        // borrow of each.
        let helper = identity.withUnsafeBufferPointer { base in
            process.withUnsafeBufferPointer { over -> pid_t in
                var spec = berth_spec()
                defer { berth_spec_free(&spec) }
                guard berth_decode_spec(base.baseAddress, base.count, &spec) == 0,
                      berth_decode_spec_over(over.baseAddress, over.count, &spec) == 0 else { errno = EINVAL; return -2 }
                return berth_exec_in(pid, a.pointers, e.pointers, c.pointers, cgroups.count, &spec, &io)
            }
        }
        guard helper > 0 else { throw LinuxError(stage: "exec", syscall: helper == -2 ? "decode spec" : "fork", errno: errno) }
        return helper
    }

    private static func collect(pid: pid_t, from fd: Int32, timeout: Double, group: Bool) -> ProcessResult {
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16384)
        let deadline = monotonicSeconds() + timeout
        var timedOut = false
        while true {
            let left = deadline - monotonicSeconds()
            if left <= 0 { timedOut = true; break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(min(left * 1000, 60_000)) + 1)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if output.count < 1 << 20 { output += buffer[0..<min(n, (1 << 20) - output.count)] }
        }
        close(fd)
        if timedOut { _ = Glibc.kill(group ? -pid : pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ProcessResult(status: code, output: String(decoding: output, as: UTF8.self), timedOut: timedOut)
    }

    /// A TCP or UDP socket in the network namespace at `netns` (e.g. `/proc/PID/ns/net`).
    public static func socket(inNetworkNamespace netns: String, udp: Bool = false) throws(LinuxError) -> Int32 {
        let fd = berth_netns_socket(netns, AF_INET, Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue))
        guard fd >= 0 else { throw LinuxError(stage: "socket", syscall: "setns", path: netns, errno: errno) }
        return fd
    }
}

public func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// A NULL-terminated array of C strings that lives as long as the value.
final class CStrings {
    let pointers: UnsafeMutablePointer<UnsafePointer<CChar>?>
    let count: Int
    init(_ strings: [String]) {
        count = strings.count
        pointers = .allocate(capacity: count + 1)
        for (i, s) in strings.enumerated() { pointers[i] = UnsafePointer(strdup(s)) }
        pointers[count] = nil
    }
    deinit {
        for i in 0..<count { free(UnsafeMutablePointer(mutating: pointers[i])) }
        pointers.deallocate()
    }
}
