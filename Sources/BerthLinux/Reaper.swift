import CBerthLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Children that outlive the call that started them (container supervisors): nobody waits on them, so
/// their exit leaves a zombie until `reap` collects it. Only pids registered here are waited for, so the
/// waits of `Subprocess` on its own children are never taken from them.
public enum Reaper {
    private static let watched = Mutex<Set<pid_t>>([])

    public static func watch(_ pid: pid_t) {
        watched.withLock { _ = $0.insert(pid) }
    }

    /// Collects every watched child that has exited; returns how many. Cheap when nothing exited (one
    /// waitid that collects nothing), so the node agent calls it every tick.
    @discardableResult
    public static func reap() -> Int {
        guard berth_has_exited_child() != 0 else { return 0 }
        return watched.withLock { set in
            var done: [pid_t] = []
            for pid in set {
                var status: Int32 = 0
                let r = waitpid(pid, &status, WNOHANG)
                // ECHILD: not (or no longer) our child; nothing to wait for.
                if r == pid || (r < 0 && errno == ECHILD) { done.append(pid) }
            }
            for pid in done { set.remove(pid) }
            return done.count
        }
    }

    public static var count: Int { watched.withLock { $0.count } }
}
