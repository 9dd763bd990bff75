import BerthLinux
import BerthModel
import BerthRuntime
import Foundation

/// Runs one probe against a container: exec inside it, or TCP/HTTP from inside the pod's network
/// namespace (so that the agent reaches the pod wherever the node's network lives).
struct ProbeRunner: Sendable {
    struct Target: Sendable {
        var runtime: ContainerManager
        var containerID: String
        var sandboxPid: Int32
        var podIP: String
        var env: [String]
        var ports: [String: Int]
    }

    static func run(_ probe: Probe, _ t: Target) -> Bool {
        let timeout = Double(max(probe.timeoutSeconds, 1))
        switch probe.handler {
        case .exec(let command):
            // As the container's process: its capabilities, seccomp filter, user and cgroups.
            guard let r = try? t.runtime.exec(id: t.containerID, command, env: t.env, timeout: timeout) else { return false }
            return r.status == 0 && !r.timedOut
        case .tcpSocket(let port, let host):
            guard let p = resolve(port, t.ports), let fd = connect(host ?? t.podIP, p, t.sandboxPid, timeout: timeout) else { return false }
            close(fd)
            return true
        case .httpGet(let action):
            guard let p = resolve(action.port, t.ports), let fd = connect(action.host ?? t.podIP, p, t.sandboxPid, timeout: timeout) else { return false }
            defer { close(fd) }
            guard action.scheme.uppercased() == "HTTP" else { return false }
            var request = "GET \(action.path.isEmpty ? "/" : action.path) HTTP/1.1\r\nHost: \(action.host ?? t.podIP):\(p)\r\nUser-Agent: berth-probe\r\nAccept: */*\r\nConnection: close\r\n"
            for h in action.httpHeaders { request += "\(h.name): \(h.value)\r\n" }
            request += "\r\n"
            let bytes = Array(request.utf8)
            guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return false }
            // The status line is enough: 200–399 is a success.
            var buffer = [UInt8](repeating: 0, count: 512)
            var got = 0
            let deadline = monotonicSeconds() + timeout
            while got < 12 {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let left = deadline - monotonicSeconds()
                guard left > 0, poll(&pfd, 1, Int32(left * 1000) + 1) > 0 else { return false }
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, $0.count - got, 0) }
                if n <= 0 { break }
                got += n
            }
            let line = String(decoding: buffer[0..<got], as: UTF8.self)
            guard line.hasPrefix("HTTP/"), let code = Int(line.split(separator: " ").dropFirst().first ?? "") else { return false }
            return (200..<400).contains(code)
        }
    }

    static func resolve(_ port: IntOrString, _ named: [String: Int]) -> Int? {
        switch port {
        case .int(let p): return (1...65535).contains(p) ? p : nil
        case .string(let s): return named[s] ?? Int(s)
        }
    }

    /// A TCP connection made from the pod's network namespace, within the timeout.
    static func connect(_ host: String, _ port: Int, _ sandboxPid: Int32, timeout: Double) -> Int32? {
        guard let ip = IPv4(host), let fd = try? Subprocess.socket(inNetworkNamespace: "/proc/\(sandboxPid)/ns/net") else { return nil }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = ip.value.bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 {
            guard errno == EINPROGRESS else { close(fd); return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&pfd, 1, Int32(timeout * 1000)) == 1 else { close(fd); return nil }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            guard err == 0 else { close(fd); return nil }
        }
        _ = fcntl(fd, F_SETFL, flags)
        return fd
    }
}

/// CrashLoopBackOff: the delay before the next restart, doubling from `initial` to `cap`; a run that
/// lasted `reset` or longer starts the count again.
struct Backoff: Codable, Sendable, Equatable {
    var streak = 0

    mutating func next(ranFor: Double, initial: Double, cap: Double, reset: Double) -> Double {
        if ranFor >= reset { streak = 0 }
        let delay = min(initial * pow(2, Double(streak)), cap)
        streak += 1
        return delay
    }
}
