#define _GNU_SOURCE
#include "berth_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#include <poll.h>
#include <sys/xattr.h>
#include <sys/statvfs.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

/* The child runs only this file's code between clone and execve: no allocation, no locks, no Swift. */

struct child_args {
    const struct berth_spec *spec;
    int error_fd;
    /* Open `tasks` (v1) or `cgroup.procs` files the child writes "0" to, to move itself. */
    const int *cgroup_fds;
    /* Open namespace files to setns into, by index of spec->joins (-1: entered already). */
    const int *join_fds;
    /* User namespace: the child reads a byte from sync_fd once its id maps are written. */
    int sync_fd, sync_other;
};

static void fail(int fd, const char *stage, const char *call, const char *path) {
    struct berth_error e;
    memset(&e, 0, sizeof e);
    e.err = errno;
    strncpy(e.stage, stage, sizeof e.stage - 1);
    strncpy(e.syscall, call, sizeof e.syscall - 1);
    if (path) strncpy(e.path, path, sizeof e.path - 1);
    ssize_t unused = write(fd, &e, sizeof e);
    (void)unused;
    _exit(127);
}

static void make_dev(int efd, int rootfd, int userns) {
    char host[64], fdp[64];
    int dev = berth_resolve_in_root(rootfd, "/dev", BERTH_RESOLVE_DIR);
    if (dev < 0) fail(efd, "dev", "resolve", "/dev");
    static const struct { const char *name; mode_t mode; int major, minor; } devices[] = {
        {"null", S_IFCHR | 0666, 1, 3}, {"zero", S_IFCHR | 0666, 1, 5}, {"full", S_IFCHR | 0666, 1, 7},
        {"random", S_IFCHR | 0666, 1, 8}, {"urandom", S_IFCHR | 0666, 1, 9}, {"tty", S_IFCHR | 0666, 5, 0},
    };
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
        const char *name = devices[i].name;
        if (userns) {
            unlinkat(dev, name, 0);
            /* mknod is refused inside a user namespace: bind the host's node, as runc does. */
            snprintf(host, sizeof host, "/dev/%s", name);
            int fd = openat(dev, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
            if (fd < 0) fail(efd, "dev", "open", host);
            close(fd);
            int t = openat(dev, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (t < 0) fail(efd, "dev", "open", host);
            berth_fd_path(t, fdp, sizeof fdp);
            if (mount(host, fdp, NULL, MS_BIND, NULL) != 0) fail(efd, "dev", "mount", host);
            close(t);
            continue;
        }
        /* /dev is usually a new tmpfs: unlink only what is in the way. */
        int made = mknodat(dev, name, devices[i].mode, makedev(devices[i].major, devices[i].minor));
        if (made != 0 && errno == EEXIST && unlinkat(dev, name, 0) == 0)
            made = mknodat(dev, name, devices[i].mode, makedev(devices[i].major, devices[i].minor));
        if (made != 0) fail(efd, "dev", "mknod", name);
        fchmodat(dev, name, devices[i].mode & 07777, 0);
    }
    static const struct { const char *link; const char *target; } links[] = {
        {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        int made = symlinkat(links[i].target, dev, links[i].link);
        /* What cannot be replaced (a directory there) stays, as before. */
        if (made != 0 && errno == EEXIST) made = unlinkat(dev, links[i].link, 0) == 0 ? symlinkat(links[i].target, dev, links[i].link) : 0;
        if (made != 0) fail(efd, "dev", "symlink", links[i].link);
    }
    close(dev);
}

/* runc refuses a rootfs whose /proc or /dev is a link: mounts there would land wherever it points. */
static void refuse_link(int efd, int rootfd, const char *name, const char *shown) {
    struct stat st;
    if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        errno = ELOOP;
        fail(efd, "rootfs", "check (a symbolic link)", shown);
    }
}

/*
 * The flags a bind remount must keep: in a user namespace the kernel locks nosuid, nodev, noexec, rdonly
 * and the atime mode of mounts that came from the host, and a remount that would clear one is EPERM.
 */
static unsigned long kept_of(const struct statvfs *st) {
    unsigned long f = 0;
    if (st->f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (st->f_flag & ST_NODEV) f |= MS_NODEV;
    if (st->f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (st->f_flag & ST_RDONLY) f |= MS_RDONLY;
    if (st->f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (st->f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (st->f_flag & ST_RELATIME) f |= MS_RELATIME;
    if (!(st->f_flag & (ST_NOATIME | ST_RELATIME))) f |= MS_STRICTATIME;
    return f;
}

static unsigned long kept_flags(const char *path) {
    struct statvfs st;
    return statvfs(path, &st) == 0 ? kept_of(&st) : 0;
}

static unsigned long kept_flags_fd(int fd) {
    struct statvfs st;
    return fstatvfs(fd, &st) == 0 ? kept_of(&st) : 0;
}

static int capset_all(uint64_t eff, uint64_t perm, uint64_t inh) {
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    d[0].effective = (uint32_t)eff; d[1].effective = (uint32_t)(eff >> 32);
    d[0].permitted = (uint32_t)perm; d[1].permitted = (uint32_t)(perm >> 32);
    d[0].inheritable = (uint32_t)inh; d[1].inheritable = (uint32_t)(inh >> 32);
    return (int)syscall(SYS_capset, &h, d);
}

static const char *find_env(const char *const *envp, const char *name) {
    size_t n = strlen(name);
    for (; envp && *envp; envp++) if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=') return *envp + n + 1;
    return NULL;
}

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

int berth_setup_console(int sock, uid_t uid, gid_t gid, const char **call) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) { *call = "open /dev/ptmx"; return -1; }
    int unlock = 0, n = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) != 0 || ioctl(master, TIOCGPTN, &n) != 0) { *call = "ioctl ptmx"; close(master); return -1; }
    /* The peer by descriptor, not by a path under /dev/pts that the container's root could redirect. */
    int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (peer < 0) { *call = "TIOCGPTPEER"; close(master); return -1; }
    /* The process's own, so that it may reopen /dev/tty after dropping root. */
    if (fchown(peer, uid, gid) != 0) { /* a read-only devpts: the terminal still works */ }
    char name[32];
    int len = snprintf(name, sizeof name, "/dev/pts/%d", n);
    struct iovec iov = { name, (size_t)len };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &master, sizeof(int));
    ssize_t sent;
    do { sent = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    int saved = errno;
    close(master);
    close(sock);
    if (sent < 0) { errno = saved; *call = "sendmsg console socket"; close(peer); return -1; }
    if (ioctl(peer, TIOCSCTTY, 0) != 0) { *call = "TIOCSCTTY"; close(peer); return -1; }
    for (int fd = 0; fd < 3; fd++) if (dup2(peer, fd) < 0) { *call = "dup2 pty"; return -1; }
    if (peer > 2) close(peer);
    return 0;
}

int berth_load_seccomp(const struct berth_spec *s) {
    if (!s->seccomp_filter) return 0;
    struct sock_fprog prog = { (unsigned short)s->seccomp_len, (struct sock_filter *)s->seccomp_filter };
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

int berth_apply_identity(const struct berth_spec *s, const char **stage, const char **call) {
#define FAIL(st, c) do { *stage = st; *call = c; return -1; } while (0)
    for (size_t i = 0; i < s->nrlimits; i++) {
        struct rlimit r = { (rlim_t)s->rlimits[i].soft, (rlim_t)s->rlimits[i].hard };
        if (setrlimit(s->rlimits[i].resource, &r) != 0) FAIL("rlimits", "setrlimit");
    }
    /* Without no_new_privs the filter goes on now, while CAP_SYS_ADMIN is held (as runc does). */
    if (!s->no_new_privs && berth_load_seccomp(s) != 0) FAIL("seccomp", "prctl");
    /* Bounding set first, while CAP_SETPCAP is still held. */
    for (int cap = 0; cap <= 63; cap++) {
        if (s->cap_bounding & (1ULL << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
        /* Past the kernel's last capability: none beyond it either. */
        if (errno == EINVAL) break;
        FAIL("capabilities", "PR_CAPBSET_DROP");
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) FAIL("user", "PR_SET_KEEPCAPS");
    if (setgroups(s->ngroups, s->groups) != 0) FAIL("user", "setgroups");
    if (setresgid(s->gid, s->gid, s->gid) != 0) FAIL("user", "setresgid");
    if (setresuid(s->uid, s->uid, s->uid) != 0) FAIL("user", "setresuid");
    if (capset_all(s->cap_effective, s->cap_permitted, s->cap_inheritable) != 0) FAIL("capabilities", "capset");
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    /* The kernel keeps an ambient capability only if it is also permitted and inheritable; like runc,
       raise those and let the others go. */
    uint64_t ambient = s->cap_ambient & s->cap_permitted & s->cap_inheritable;
    for (int cap = 0; cap <= 63; cap++) {
        if (!(ambient & (1ULL << cap))) continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) FAIL("capabilities", "PR_CAP_AMBIENT_RAISE");
    }
    if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) FAIL("no_new_privs", "prctl");
    umask(s->umask);
    return 0;
#undef FAIL
}

/* A startContainer hook, in the container: the state on stdin, killed at its timeout. */
static void run_hook(int efd, const struct berth_hook *h, int state) {
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) fail(efd, "startContainer hook", "pipe2", h->path);
    pid_t pid = fork();
    if (pid < 0) fail(efd, "startContainer hook", "fork", h->path);
    if (pid == 0) {
        dup2(in[0], 0);
        const char *const alone[] = { h->path, NULL };
        execve(h->path, (char *const *)(h->argv && h->argv[0] ? h->argv : alone), (char *const *)h->envp);
        _exit(127);
    }
    close(in[0]);
    char buf[4096];
    ssize_t n;
    off_t off = 0;
    signal(SIGPIPE, SIG_IGN);
    while ((n = pread(state, buf, sizeof buf, off)) > 0) {
        if (write(in[1], buf, (size_t)n) != n) break;
        off += n;
    }
    signal(SIGPIPE, SIG_DFL);
    close(in[1]);
    if (berth_wait_pid_exit(pid, h->timeout ? (int)h->timeout * 1000 : -1) == 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        errno = ETIMEDOUT;
        fail(efd, "startContainer hook", "timeout", h->path);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) if (errno != EINTR) fail(efd, "startContainer hook", "waitpid", h->path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = ECANCELED;
        fail(efd, "startContainer hook", "exit status", h->path);
    }
}

/* While `run` makes v1 cgroups, the supervisor clones the container. A new child waits on its parent's
   CPU even with another one idle, and the two would take turns: the supervisor is moved off that CPU
   until the container has read the cgroups' byte, then the caller's CPUs are its own again (and the
   container's, before it joins a cpuset). */
static cpu_set_t caller_cpus;
static int spread_cpus;

static void restore_caller_cpus(void) {
    if (spread_cpus) sched_setaffinity(0, sizeof caller_cpus, &caller_cpus);
}

static void spread_from_caller(pid_t child) {
    int here = sched_getcpu();
    if (here < 0 || !spread_cpus) return;
    cpu_set_t others = caller_cpus;
    CPU_CLR(here, &others);
    if (CPU_COUNT(&others) > 0) sched_setaffinity(child, sizeof others, &others);
}

static int child(void *arg) {
    const struct child_args *a = arg;
    const struct berth_spec *s = a->spec;
    int efd = a->error_fd;
    char path[4096];
    int fifo = -1, later_errors = -1, hook_state = -1;

    /* A session of its own: nothing in the container can signal its supervisor's process group. */
    setsid();

    /* A clean signal state: whatever berth's caller blocked or ignored must not reach the container
       (an inherited blocked SIGTERM would make the process deaf to `kill`). */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* exec resets handlers; an ignored signal stays ignored. Those are read from SigIgn at once rather
       than reset one by one (64 calls); every one is reset if the file cannot be read. The raw call: glibc
       refuses its own two (32 and 33), which a caller can still have ignored. */
    unsigned long long ignored = ~0ULL;
    int status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (status_fd >= 0) {
        char text[4096];
        ssize_t n = read(status_fd, text, sizeof text - 1);
        close(status_fd);
        char *line = n > 0 ? (text[n] = 0, strstr(text, "\nSigIgn:\t")) : NULL;
        if (line) ignored = strtoull(line + 9, NULL, 16);
    }
    for (int sig = 1; sig < NSIG && sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || !(ignored & (1ULL << (sig - 1)))) continue;
        struct { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long long mask; } dfl = { SIG_DFL, 0, NULL, 0 };
        syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
    }

    /* Into its cgroups first, so that everything it does is counted and limited. A thread that moves
       itself through v1 `tasks` skips the global threadgroup lock whose RCU grace period costs a
       cgroup.procs write by another process 5-15 ms. */
    int late = s->cgroups_ready_fd >= 0;
    if (late) {
        /* The network namespace, the slowest to make, is made here rather than at clone: while the
           caller makes the cgroups this process waits for. */
        if ((s->clone_flags & CLONE_NEWNET) && unshare(CLONE_NEWNET) != 0) fail(efd, "namespaces", "unshare", "network");
        /* v1 directories made while this process was cloned: joined by path once they are there. */
        char byte;
        ssize_t n;
        do { n = read(s->cgroups_ready_fd, &byte, 1); } while (n < 0 && errno == EINTR);
        if (n != 1) { errno = ECANCELED; fail(efd, "cgroup", "wait", "the runtime made no cgroup"); }
        close(s->cgroups_ready_fd);
        restore_caller_cpus();
    }
    for (size_t i = 0; (late || a->cgroup_fds) && i < s->ncgroups; i++) {
        int fd = late ? -1 : a->cgroup_fds[i];
        if (late) {
            snprintf(path, sizeof path, "%s/tasks", s->cgroups[i]);
            if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) fail(efd, "cgroup", "open", path);
        }
        if (fd < 0) continue;
        if (write(fd, "0", 1) != 1) fail(efd, "cgroup", "write", s->cgroups[i]);
        close(fd);
    }
    /* A cgroup namespace is made here, not at clone: its root is the cgroup the process is in when it is
       made, which on v1 is the container's only from now on. */
    if ((s->clone_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) != 0) fail(efd, "namespaces", "unshare", "cgroup");

    for (size_t i = 0; a->join_fds && i < s->njoins; i++) {
        if (a->join_fds[i] < 0) continue;
        if (setns(a->join_fds[i], s->joins[i].type) != 0) fail(efd, "namespaces", "setns", s->joins[i].path);
        close(a->join_fds[i]);
    }

    /* Host paths are gone after pivot_root: hold them by descriptor now (and, in a user namespace,
       while this process still has the host's root ids, which own the state directory). */
    if (s->exec_fifo) {
        fifo = open(s->exec_fifo, O_PATH | O_CLOEXEC);
        if (fifo < 0) fail(efd, "exec fifo", "open", s->exec_fifo);
        later_errors = open(s->error_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (later_errors < 0) fail(efd, "exec fifo", "open", s->error_file);
        if (s->nstart_hooks > 0) {
            hook_state = open(s->hook_state, O_RDONLY | O_CLOEXEC);
            if (hook_state < 0) fail(efd, "hooks", "open", s->hook_state);
        }
    }

    if (a->sync_fd >= 0) {
        close(a->sync_other);
        char byte;
        ssize_t n;
        do { n = read(a->sync_fd, &byte, 1); } while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127); /* the parent failed to write the maps and reports it */
        close(a->sync_fd);
        /* Root of the new namespace: files made from here on (on its own tmpfs too) need mapped ids. */
        if (setresgid(0, 0, 0) != 0) fail(efd, "user namespace", "setresgid", "0");
        if (setresuid(0, 0, 0) != 0) fail(efd, "user namespace", "setresuid", "0");
    }

    if (s->set_oom_score_adj) {
        char value[16];
        int n = snprintf(value, sizeof value, "%d", s->oom_score_adj);
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, value, (size_t)n) != n) fail(efd, "oomScoreAdj", "write", "/proc/self/oom_score_adj");
        close(fd);
    }

    if (s->stdin_fd >= 0 && dup2(s->stdin_fd, 0) < 0) fail(efd, "stdio", "dup2", "stdin");
    if (s->stdout_fd >= 0 && dup2(s->stdout_fd, 1) < 0) fail(efd, "stdio", "dup2", "stdout");
    if (s->stderr_fd >= 0 && dup2(s->stderr_fd, 2) < 0) fail(efd, "stdio", "dup2", "stderr");

    /* With a mount namespace of its own the container pivots into its root. Without one (the host's, or
       one joined by path) its mounts are made in that namespace, under a private bind of the root, and it
       chroots: a pivot would move the root of every other process there. */
    int own_mounts = (s->clone_flags & CLONE_NEWNS) != 0;
    if (s->rootfs && *s->rootfs) {
        /* Nothing we mount may propagate back to the host. A shared namespace keeps its propagation. */
        if (own_mounts && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(efd, "rootfs", "mount", "/ (make private)");
        const char *root = s->rootfs;
        char layered[4096];
        if (s->rootfs_source) {
            /* The source (the host's root) as the lower layer of an overlay whose upper is a tmpfs of this
               mount namespace: missing mount targets are made there and nothing written reaches the source. */
            char upper[4096], work[4096], options[4096 * 3];
            if (mount("tmpfs", s->rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") != 0) fail(efd, "rootfs", "mount tmpfs", s->rootfs);
            snprintf(upper, sizeof upper, "%s/upper", s->rootfs);
            snprintf(work, sizeof work, "%s/work", s->rootfs);
            snprintf(layered, sizeof layered, "%s/root", s->rootfs);
            if (mkdir(upper, 0755) != 0 || mkdir(work, 0755) != 0 || mkdir(layered, 0755) != 0) fail(efd, "rootfs", "mkdir", s->rootfs);
            snprintf(options, sizeof options, "lowerdir=%s,upperdir=%s,workdir=%s", s->rootfs_source, upper, work);
            if (mount("overlay", layered, "overlay", 0, options) != 0) fail(efd, "rootfs", "mount overlay", s->rootfs_source);
            root = layered;
        } else {
            if (s->rootfs_overlay && mount("overlay", s->rootfs, "overlay", 0, s->rootfs_overlay) != 0)
                fail(efd, "rootfs", "mount overlay", s->rootfs);
            if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) fail(efd, "rootfs", "mount", s->rootfs);
            if (!own_mounts && mount(NULL, s->rootfs, NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(efd, "rootfs", "mount", "rootfs (make private)");
        }
        int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) fail(efd, "rootfs", "open", root);
        refuse_link(efd, rootfd, "proc", "/proc");
        refuse_link(efd, rootfd, "dev", "/dev");
        char target_fd[64], source_fd[64];
        for (size_t i = 0; i < s->nmounts; i++) {
            const struct berth_mount *m = &s->mounts[i];
            int bind = m->fstype == NULL || (m->flags & MS_BIND);
            /* An empty bind source is the target itself (a remount of what is already there). */
            int self = bind && (m->source == NULL || *m->source == 0);
            int make = BERTH_RESOLVE_DIR;
            struct stat st;
            if (bind && !self && stat(m->source, &st) == 0 && !S_ISDIR(st.st_mode)) make = BERTH_RESOLVE_FILE;
            int t = berth_resolve_in_root(rootfd, m->target, make);
            if (t < 0) fail(efd, "mounts", "resolve in root", m->target);
            berth_fd_path(t, target_fd, sizeof target_fd);
            if (self) snprintf(source_fd, sizeof source_fd, "%s", target_fd);
            if (mount(self ? source_fd : m->source, target_fd, m->fstype, m->flags, m->data) != 0) fail(efd, "mounts", "mount", m->target);
            close(t);
            if (bind && m->bind_readonly) {
                /* Resolved again: the descriptor above is the directory under the new mount. */
                t = berth_resolve_in_root(rootfd, m->target, BERTH_RESOLVE_EXISTING);
                if (t < 0) fail(efd, "mounts", "resolve in root", m->target);
                berth_fd_path(t, target_fd, sizeof target_fd);
                if (mount(NULL, target_fd, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags_fd(t) | (m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)), NULL) != 0)
                    fail(efd, "mounts", "remount", m->target);
                close(t);
            }
        }
        if (s->make_dev) make_dev(efd, rootfd, (s->clone_flags & CLONE_NEWUSER) != 0);
        for (size_t i = 0; i < s->ndevices; i++) {
            const struct berth_device *d = &s->devices[i];
            char parent[4096];
            snprintf(parent, sizeof parent, "%s", d->path);
            char *slash = strrchr(parent, '/');
            if (!slash || !slash[1]) { errno = EINVAL; fail(efd, "devices", "path", d->path); }
            *slash = 0;
            const char *name = slash + 1;
            int dir = berth_resolve_in_root(rootfd, *parent ? parent : "/", BERTH_RESOLVE_DIR);
            if (dir < 0) fail(efd, "devices", "resolve in root", d->path);
            unlinkat(dir, name, 0);
            if (s->clone_flags & CLONE_NEWUSER) {
                /* No mknod in a user namespace: the host's node at the same path, bound. */
                int fd = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0) fail(efd, "devices", "open", d->path);
                close(fd);
                int t = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (t < 0) fail(efd, "devices", "open", d->path);
                berth_fd_path(t, target_fd, sizeof target_fd);
                if (mount(d->path, target_fd, NULL, MS_BIND, NULL) != 0) fail(efd, "devices", "mount", d->path);
                close(t);
                close(dir);
                continue;
            }
            if (mknodat(dir, name, d->mode, makedev(d->major, d->minor)) != 0) fail(efd, "devices", "mknod", d->path);
            if (fchmodat(dir, name, d->mode & 07777, 0) != 0 || fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) != 0)
                fail(efd, "devices", "chown", d->path);
            close(dir);
        }
        close(rootfd);
        if (chdir(root) != 0) fail(efd, "pivot_root", "chdir", root);
        if (!own_mounts) {
            if (chroot(".") != 0) fail(efd, "chroot", "chroot", s->rootfs);
        } else {
            /* runc's pivot_root sequence: the old root ends up under the new one and is detached there. */
            if (syscall(SYS_pivot_root, ".", ".") != 0) fail(efd, "pivot_root", "pivot_root", s->rootfs);
            if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) != 0) fail(efd, "pivot_root", "mount", "old root (slave)");
            if (umount2(".", MNT_DETACH) != 0) fail(efd, "pivot_root", "umount2", "old root");
        }
        if (chdir("/") != 0) fail(efd, "pivot_root", "chdir", "/");
        /* linux.rootfsPropagation: on this namespace's own root, so nothing reaches the host's mounts. */
        if (s->root_propagation && mount(NULL, "/", NULL, s->root_propagation, NULL) != 0) fail(efd, "rootfs", "mount", "/ (propagation)");
        /* The container's own /proc/sys, before it is made read-only. */
        for (size_t i = 0; i < s->nsysctls; i++) {
            const char *eq = strchr(s->sysctls[i], '=');
            if (!eq) continue;
            int n = snprintf(path, sizeof path, "/proc/sys/%.*s", (int)(eq - s->sysctls[i]), s->sysctls[i]);
            for (char *c = path + 10; c < path + n; c++) if (*c == '.') *c = '/';
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd < 0) fail(efd, "sysctl", "open", path);
            size_t len = strlen(eq + 1);
            if (write(fd, eq + 1, len) != (ssize_t)len) fail(efd, "sysctl", "write", path);
            close(fd);
        }
        /* After the mounts (the container's devpts), before paths are masked or made read-only, as runc. */
        if (s->terminal) {
            const char *call;
            if (s->console_fd < 0) { errno = EINVAL; fail(efd, "terminal", "needs --console-socket", NULL); }
            if (berth_setup_console(s->console_fd, s->uid, s->gid, &call) != 0) fail(efd, "terminal", call, NULL);
        }
        for (size_t i = 0; i < s->nmasked; i++) {
            struct stat st;
            const char *p = s->masked_paths[i];
            if (stat(p, &st) != 0) continue;
            if (S_ISDIR(st.st_mode)) {
                if (mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL) != 0) fail(efd, "masked paths", "mount", p);
            } else if (mount("/dev/null", p, NULL, MS_BIND, NULL) != 0) {
                fail(efd, "masked paths", "mount", p);
            }
        }
        for (size_t i = 0; i < s->nreadonly; i++) {
            const char *p = s->readonly_paths[i];
            struct stat st;
            if (stat(p, &st) != 0) continue;
            if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) != 0) fail(efd, "readonly paths", "mount", p);
            if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | kept_flags(p), NULL) != 0)
                fail(efd, "readonly paths", "remount", p);
        }
        if (s->readonly_root && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags("/"), NULL) != 0)
            fail(efd, "rootfs", "remount", "/ (read-only)");
    }
    /* The config reader allows a hostname only with a UTS namespace, new or joined. */
    if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) != 0)
        fail(efd, "hostname", "sethostname", s->hostname);
    const char *stage, *call;
    if (berth_apply_identity(s, &stage, &call) != 0) fail(efd, stage, call, NULL);
    if (s->cwd && chdir(s->cwd) != 0) fail(efd, "cwd", "chdir", s->cwd);

    const char *file = s->argv[0];
    char resolved[4096];
    if (!strchr(file, '/')) {
        const char *p = find_env(s->envp, "PATH");
        if (!p) p = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        int found = 0;
        while (*p && !found) {
            const char *end = strchr(p, ':');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (n > 0 && n + strlen(file) + 2 < sizeof resolved) {
                memcpy(resolved, p, n);
                resolved[n] = '/';
                strcpy(resolved + n + 1, file);
                if (access(resolved, X_OK) == 0) { found = 1; file = resolved; }
            }
            p = end ? end + 1 : p + n;
        }
        if (!found) { errno = ENOENT; fail(efd, "exec", "execve", s->argv[0]); }
    }
    if (fifo >= 0) {
        /* Set up: tell the creator (EOF on its pipe), then wait for `start` to open the FIFO. */
        close(efd);
        efd = later_errors;
        char proc_path[64];
        snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fifo);
        int w = open(proc_path, O_WRONLY | O_CLOEXEC);
        if (w < 0) fail(efd, "exec fifo", "open", "exec.fifo (is /proc mounted?)");
        close(fifo);
        /* The write end closes at execve: the starter reads EOF (and then this file's failures). */
        for (size_t i = 0; i < s->nstart_hooks; i++) run_hook(efd, &s->start_hooks[i], hook_state);
    }
    /* Seccomp last (the filter may forbid what the steps above need), unless it had to be loaded while
       privileged: without no_new_privs, loading a filter needs CAP_SYS_ADMIN. */
    if (s->no_new_privs && berth_load_seccomp(s) != 0) fail(efd, "seccomp", "prctl", NULL);
    execve(file, (char *const *)s->argv, (char *const *)s->envp);
    fail(efd, "exec", "execve", file);
    return 127;
}

static void spawn_error(struct berth_error *error, const char *stage, const char *call, const char *path) {
    error->err = errno;
    strncpy(error->stage, stage, sizeof error->stage - 1);
    strncpy(error->syscall, call, sizeof error->syscall - 1);
    if (path) strncpy(error->path, path, sizeof error->path - 1);
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

struct clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/*
 * The cgroups to join. v1 directories have `tasks`, which the child writes itself into. A v2 directory
 * is entered at creation with clone3(CLONE_INTO_CGROUP) (*into_fd), falling back to the child writing
 * its own cgroup.procs on kernels without it.
 */
static int open_cgroups(const struct berth_spec *spec, int *fds, int *into_fd, int *v2_index, struct berth_error *error) {
    char path[4096];
    for (size_t i = 0; i < spec->ncgroups; i++) fds[i] = -1;
    for (size_t i = 0; i < spec->ncgroups; i++) {
        snprintf(path, sizeof path, "%s/tasks", spec->cgroups[i]);
        fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (fds[i] >= 0) continue;
        if (errno == ENOENT && *into_fd < 0) {
            *into_fd = open(spec->cgroups[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (*into_fd >= 0) { *v2_index = (int)i; continue; }
            snprintf(path, sizeof path, "%s", spec->cgroups[i]);
        }
        spawn_error(error, "cgroup", "open", path);
        return -1;
    }
    return 0;
}

static int write_map(pid_t pid, const char *name, const char *text, struct berth_error *error) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    /* One write: the kernel takes a map only whole. */
    size_t len = text ? strlen(text) : 0;
    if (fd < 0 || write(fd, text ? text : "", len) != (ssize_t)len) {
        spawn_error(error, "user namespace", "write", path);
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int berth_spawn(const struct berth_spec *spec, pid_t *pid, struct berth_error *error) {
    int fds[2];
    memset(error, 0, sizeof *error);
    if (pipe2(fds, O_CLOEXEC) != 0) { spawn_error(error, "spawn", "pipe2", NULL); return -1; }
    int cgroup_fds[16];
    int into_fd = -1, v2_index = -1;
    if (spec->ncgroups > sizeof cgroup_fds / sizeof cgroup_fds[0]) {
        errno = E2BIG;
        spawn_error(error, "spawn", "cgroups", NULL);
        close(fds[0]); close(fds[1]);
        return -1;
    }
    /* Directories still being made are joined by the child itself (v1 only). */
    int failed = 0;
    if (spec->cgroups_ready_fd >= 0) for (size_t i = 0; i < spec->ncgroups; i++) cgroup_fds[i] = -1;
    else failed = open_cgroups(spec, cgroup_fds, &into_fd, &v2_index, error);
    int join_fds[8];
    for (size_t i = 0; i < sizeof join_fds / sizeof join_fds[0]; i++) join_fds[i] = -1;
    if (!failed && spec->njoins > sizeof join_fds / sizeof join_fds[0]) { errno = E2BIG; spawn_error(error, "spawn", "namespaces", NULL); failed = 1; }
    for (size_t i = 0; !failed && i < spec->njoins; i++) {
        join_fds[i] = open(spec->joins[i].path, O_RDONLY | O_CLOEXEC);
        if (join_fds[i] < 0) { spawn_error(error, "namespaces", "open", spec->joins[i].path); failed = 1; break; }
        /* A pid namespace holds only the children of whoever enters it: enter it here, before clone. */
        if (spec->joins[i].type == CLONE_NEWPID) {
            if (setns(join_fds[i], CLONE_NEWPID) != 0) { spawn_error(error, "namespaces", "setns", spec->joins[i].path); failed = 1; }
            close(join_fds[i]);
            join_fds[i] = -1;
        }
    }
    int sync[2] = { -1, -1 };
    int userns = (spec->clone_flags & CLONE_NEWUSER) != 0;
    if (!failed && userns && pipe2(sync, O_CLOEXEC) != 0) { spawn_error(error, "user namespace", "pipe2", NULL); failed = 1; }
    struct child_args args = { spec, fds[1], cgroup_fds, join_fds, sync[0], sync[1] };
    pid_t child_pid = -1;
    int saved = 0;
    if (!failed && into_fd >= 0) {
        struct clone3_args ca;
        memset(&ca, 0, sizeof ca);
        ca.flags = (uint64_t)(unsigned)(spec->clone_flags & ~CLONE_NEWCGROUP) | CLONE_INTO_CGROUP;
        ca.exit_signal = SIGCHLD;
        ca.cgroup = (uint64_t)into_fd;
        /* Without CLONE_VM the child runs on a copy of this stack, as after fork. */
        child_pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
        if (child_pid == 0) _exit(child(&args));
        saved = errno;
        if (child_pid < 0 && (saved == ENOSYS || saved == E2BIG || saved == EINVAL)) {
            /* An older kernel: the child writes its own cgroup.procs. */
            char path[4096];
            snprintf(path, sizeof path, "%s/cgroup.procs", spec->cgroups[v2_index]);
            cgroup_fds[v2_index] = open(path, O_WRONLY | O_CLOEXEC);
            if (cgroup_fds[v2_index] < 0) { spawn_error(error, "cgroup", "open", path); failed = 1; }
        } else {
            cgroup_fds[v2_index] = -1;
        }
    }
    char *stack = MAP_FAILED;
    const size_t stack_size = 256 * 1024;
    if (!failed && child_pid < 0) {
        stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) { spawn_error(error, "spawn", "mmap", NULL); failed = 1; }
        else {
            /* Made by the child meanwhile: the network namespace when the caller is still making cgroups. */
            int later = CLONE_NEWCGROUP | (spec->cgroups_ready_fd >= 0 ? CLONE_NEWNET : 0);
            child_pid = clone(child, stack + stack_size, (spec->clone_flags & ~later) | SIGCHLD, &args);
            saved = errno;
        }
    }
    close(fds[1]);
    if (sync[0] >= 0) close(sync[0]);
    if (!failed && child_pid > 0 && userns) {
        /* The child waits on the sync pipe until its ids mean something in the new namespace. */
        if (write_map(child_pid, "uid_map", spec->uid_map, error) != 0 || write_map(child_pid, "gid_map", spec->gid_map, error) != 0) {
            kill(child_pid, SIGKILL);
            waitpid(child_pid, NULL, 0);
            /* A child that failed first (and so was gone) says why. */
            struct berth_error first;
            if (read(fds[0], &first, sizeof first) == (ssize_t)sizeof first) *error = first;
            failed = 1;
        } else if (write(sync[1], "1", 1) != 1) {
            spawn_error(error, "user namespace", "write", "sync pipe");
            kill(child_pid, SIGKILL);
            waitpid(child_pid, NULL, 0);
            failed = 1;
        }
    }
    if (sync[1] >= 0) close(sync[1]);
    for (size_t i = 0; i < spec->ncgroups; i++) if (cgroup_fds[i] >= 0) close(cgroup_fds[i]);
    for (size_t i = 0; i < sizeof join_fds / sizeof join_fds[0]; i++) if (join_fds[i] >= 0) close(join_fds[i]);
    if (into_fd >= 0) close(into_fd);
    if (failed || child_pid < 0) {
        if (stack != MAP_FAILED) munmap(stack, stack_size);
        close(fds[0]);
        if (!failed) { errno = saved; spawn_error(error, "spawn", "clone", NULL); }
        return -1;
    }
    /* EOF without a record: the child reached execve (or waits on the exec FIFO). */
    ssize_t n;
    do { n = read(fds[0], error, sizeof *error); } while (n < 0 && errno == EINTR);
    close(fds[0]);
    if (stack != MAP_FAILED) munmap(stack, stack_size);
    *pid = child_pid;
    if (n == (ssize_t)sizeof *error) {
        int status;
        waitpid(child_pid, &status, 0);
        return -1;
    }
    memset(error, 0, sizeof *error);
    return 0;
}

/* ---- The supervisor of one container (berth-shim, or a fork of `berth-runtime run`) ---- */

struct log {
    const char *dir;
    int fd;
    long long size, max;
    int files;
};

static void log_open(struct log *l) {
    char path[4096];
    snprintf(path, sizeof path, "%s/container.log", l->dir);
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat st;
    l->size = (l->fd >= 0 && fstat(l->fd, &st) == 0) ? st.st_size : 0;
}

static void log_rotate(struct log *l) {
    char from[4096], to[4096];
    if (l->fd >= 0) close(l->fd);
    for (int i = l->files - 1; i >= 1; i--) {
        if (i == 1) snprintf(from, sizeof from, "%s/container.log", l->dir);
        else snprintf(from, sizeof from, "%s/container.log.%d", l->dir, i - 1);
        snprintf(to, sizeof to, "%s/container.log.%d", l->dir, i);
        rename(from, to);
    }
    if (l->files <= 1) { snprintf(from, sizeof from, "%s/container.log", l->dir); unlink(from); }
    log_open(l);
}

static void log_write(struct log *l, const char *buf, ssize_t n) {
    if (l->fd < 0) return;
    if (l->size > 0 && l->size + n > l->max) log_rotate(l);
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = write(l->fd, buf + off, (size_t)(n - off));
        if (w < 0) { if (errno == EINTR) continue; return; }
        off += w;
    }
    l->size += n;
}

static int write_state(const char *dir, const char *name, const char *text) {
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    /* No fsync: the state lives as long as the machine's processes do. */
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok && rename(tmp, final) == 0 ? 0 : -1;
}


int berth_supervise(struct berth_spec *spec, const char *dir, int notify, const struct berth_log_config *logging, int detach, pid_t waiter) {
    /* Its own session: a signal to the process group of the berth that started it does not reach it. */
    setsid();
    /* Orphans of the container are reparented here, and reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    int out[2] = {-1, -1};
    if (logging) {
        if (pipe2(out, O_CLOEXEC) != 0) { dprintf(notify, "error logs: pipe: %s\n", strerror(errno)); return 1; }
        spec->stdout_fd = out[1];
        spec->stderr_fd = out[1];
    }
    pid_t pid;
    struct berth_error err;
    if (berth_spawn(spec, &pid, &err) != 0) {
        dprintf(notify, "error %s: %s %s: %s\n", err.stage, err.syscall, err.path, strerror(err.err));
        return 1;
    }
    /* pid and start time, so that a reused pid is not taken for the container. */
    char stat_path[64], stat_buf[1024], pidline[128];
    unsigned long long start = 0;
    snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", pid);
    int sfd = open(stat_path, O_RDONLY | O_CLOEXEC);
    if (sfd >= 0) {
        ssize_t n = read(sfd, stat_buf, sizeof stat_buf - 1);
        close(sfd);
        if (n > 0) {
            stat_buf[n] = 0;
            char *p = strrchr(stat_buf, ')');
            for (int field = 2; p && *p && field < 22; p++) if (*p == ' ') field++;
            if (p) start = strtoull(p, NULL, 10);
        }
    }
    snprintf(pidline, sizeof pidline, "%d %llu\n", pid, start);
    if (write_state(dir, "pid", pidline) != 0) { dprintf(notify, "error state: cannot write pid\n"); kill(pid, SIGKILL); return 1; }
    /* The container has read the cgroups' byte, so the caller is done moving this process. */
    restore_caller_cpus();
    dprintf(notify, "ok %d\n", pid);
    /* A forked supervisor's `run` keeps reading: the exit code comes the same way. */
    if (!waiter || detach) { close(notify); notify = -1; }
    if (detach) return 0;
    /* The caller's stdio is the container's alone now: its reader sees the end when the container ends. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); }

    int status = 0;
    if (logging) {
        close(out[1]);
        struct log l = { dir, -1, 0, logging->max_bytes > 0 ? logging->max_bytes : 10LL << 20, logging->files > 0 ? logging->files : 5 };
        log_open(&l);
        char buf[65536];
        for (;;) {
            ssize_t n = read(out[0], buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            log_write(&l, buf, n);
        }
        if (l.fd >= 0) close(l.fd);
    }
    for (;;) {
        pid_t w = waitpid(-1, &status, 0);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;
        if (w == pid) break;
    }
    char exitline[64];
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    snprintf(exitline, sizeof exitline, "%d\n", code);
    /* A `run` still waiting is told the code (and removes the container's state meanwhile, while this
       process removes its cgroups); the file is for anyone who comes later. */
    int told = notify >= 0 && getppid() == waiter && dprintf(notify, "exit %d\n", code) > 0;
    if (notify >= 0) close(notify);
    if (!told) write_state(dir, "exit", exitline);
    /* Reap whatever else is left, then go. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    /* Empty now (all but a process that left the container's pid namespace: the caller's removal then
       tries again). */
    for (size_t i = 0; told && i < spec->ncgroups; i++) rmdir(spec->cgroups[i]);
    return waiter ? code : 0;
}

/* Keeps only stdio, the notify pipe (as fd 3) and the console socket when there is one (fd 4, put there by
   the caller): descriptors the caller leaked must not stay open for the container's whole life. */
static int keep_only_stdio_and(int notify, int console) {
    if (notify != 3) { if (dup2(notify, 3) < 0) return -1; close(notify); notify = 3; }
    syscall(SYS_close_range, console ? 5 : 4, ~0U, 0);
    /* The container must not keep the caller's pipe open once it execs. */
    fcntl(notify, F_SETFD, FD_CLOEXEC);
    if (console) fcntl(4, F_SETFD, FD_CLOEXEC);
    return notify;
}

int berth_shim_main(struct berth_spec *spec, const char *dir, int notify, const struct berth_log_config *logging, int detach) {
    int console = spec->terminal && spec->console_fd == 4;
    return berth_supervise(spec, dir, keep_only_stdio_and(notify, console), logging, detach, 0);
}

pid_t berth_fork_supervisor(const unsigned char *encoded, size_t len, const char *dir, int cgroups_ready, int *reply, char *message, size_t size) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) { snprintf(message, size, "pipe: %s", strerror(errno)); return -1; }
    spread_cpus = cgroups_ready >= 0 && sched_getaffinity(0, sizeof caller_cpus, &caller_cpus) == 0 && CPU_COUNT(&caller_cpus) > 1;
    pid_t sup = fork();
    if (sup < 0) { snprintf(message, size, "fork: %s", strerror(errno)); close(fds[0]); close(fds[1]); return -1; }
    if (sup > 0) spread_from_caller(sup);
    if (sup == 0) {
        /* The caller is a single-threaded process; from here on only this file's C runs. Named as the
           other supervisors are, for ps and for whoever reaps them. */
        prctl(PR_SET_NAME, "berth-shim", 0, 0, 0);
        close(fds[0]);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null >= 0 && null != 0) { dup2(null, 0); close(null); }
        /* The cgroups' pipe as fd 4 (kept, close-on-exec, as a console is): both are copied above 9
           first, so that neither dup2 lands on the other's source. */
        int notify = fds[1], ready = -1;
        if (cgroups_ready >= 0) {
            notify = fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
            int high = fcntl(cgroups_ready, F_DUPFD_CLOEXEC, 10);
            if (notify < 0 || high < 0 || dup2(high, 4) != 4) _exit(1);
            ready = 4;
        }
        notify = keep_only_stdio_and(notify, ready == 4);
        if (notify < 0) _exit(1);
        struct berth_spec spec;
        if (berth_decode_spec(encoded, len, &spec) != 0) { dprintf(notify, "error spec: damaged\n"); _exit(1); }
        spec.cgroups_ready_fd = ready;
        _exit(berth_supervise(&spec, dir, notify, NULL, 0, getppid()));
    }
    close(fds[1]);
    *reply = fds[0];
    return sup;
}

/* One line, a byte at a time: what follows it is the next reader's. */
static void read_line(int fd, char *text, size_t size) {
    size_t got = 0;
    while (got < size - 1) {
        ssize_t n = read(fd, text + got, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || text[got] == '\n') break;
        got++;
    }
    text[got] = 0;
}

int berth_await_supervisor(pid_t supervisor, int reply, pid_t *container, char *message, size_t size) {
    char text[512];
    read_line(reply, text, sizeof text);
    if (strncmp(text, "ok ", 3) == 0) { *container = (pid_t)atoi(text + 3); return 0; }
    close(reply);
    snprintf(message, size, "%s", strncmp(text, "error ", 6) == 0 ? text + 6 : "the supervisor failed");
    waitpid(supervisor, NULL, 0);
    return -1;
}

int berth_await_exit(int reply) {
    char text[64];
    read_line(reply, text, sizeof text);
    close(reply);
    return strncmp(text, "exit ", 5) == 0 ? atoi(text + 5) : -1;
}

int berth_memfd(const char *name) {
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
}

/*
 * Spec encoding (little-endian): a sequence of fields, each a u32 tag and a payload. Strings are u32 length
 * + bytes + NUL; string lists are u32 count + strings; numbers are u64. Written by SpecEncoding.swift.
 */
struct reader { const unsigned char *p, *end; };

static int rd_u32(struct reader *r, uint32_t *v) {
    if (r->end - r->p < 4) return -1;
    memcpy(v, r->p, 4); r->p += 4; return 0;
}
static int rd_u64(struct reader *r, uint64_t *v) {
    if (r->end - r->p < 8) return -1;
    memcpy(v, r->p, 8); r->p += 8; return 0;
}
static int rd_str(struct reader *r, const char **s) {
    uint32_t n;
    if (rd_u32(r, &n) != 0 || (size_t)(r->end - r->p) < (size_t)n + 1 || r->p[n] != 0) return -1;
    *s = (const char *)r->p; r->p += n + 1; return 0;
}
static int rd_strs(struct reader *r, const char ***list, size_t *count) {
    uint32_t n;
    if (rd_u32(r, &n) != 0 || n > 65536) return -1;
    const char **l = calloc(n + 1, sizeof *l);
    if (!l) return -1;
    for (uint32_t i = 0; i < n; i++) if (rd_str(r, &l[i]) != 0) { free(l); return -1; }
    *list = l; if (count) *count = n; return 0;
}

void berth_spec_free(struct berth_spec *s) {
    free((void *)s->mounts); free((void *)s->masked_paths); free((void *)s->readonly_paths); free((void *)s->argv);
    free((void *)s->envp); free((void *)s->groups); free((void *)s->rlimits); free((void *)s->cgroups);
    free((void *)s->joins); free((void *)s->sysctls); free((void *)s->devices);
    for (size_t i = 0; s->start_hooks && i < s->nstart_hooks; i++) { free((void *)s->start_hooks[i].argv); free((void *)s->start_hooks[i].envp); }
    free((void *)s->start_hooks);
    memset(s, 0, sizeof *s);
}

int berth_decode_spec(const unsigned char *buf, size_t len, struct berth_spec *s) {
    memset(s, 0, sizeof *s);
    s->stdin_fd = s->stdout_fd = s->stderr_fd = -1;
    s->console_fd = -1;
    s->cgroups_ready_fd = -1;
    s->umask = 022;
    return berth_decode_spec_over(buf, len, s);
}

int berth_decode_spec_over(const unsigned char *buf, size_t len, struct berth_spec *s) {
    struct reader r = { buf, buf + len };
    uint64_t v; const char *str; size_t n;
    while (r.p < r.end) {
        uint32_t tag;
        if (rd_u32(&r, &tag) != 0) return -1;
        switch (tag) {
        case 1: if (rd_u64(&r, &v)) return -1; s->clone_flags = (int)v; break;
        case 2: if (rd_str(&r, &s->rootfs)) return -1; break;
        case 3: if (rd_u64(&r, &v)) return -1; s->readonly_root = (int)v; break;
        case 4: if (rd_str(&r, &s->hostname)) return -1; break;
        case 5: {
            uint32_t count;
            if (rd_u32(&r, &count) || count > 4096) return -1;
            struct berth_mount *m = calloc(count ? count : 1, sizeof *m);
            if (!m) return -1;
            for (uint32_t i = 0; i < count; i++) {
                const char *fstype, *data;
                if (rd_str(&r, &m[i].source) || rd_str(&r, &m[i].target) || rd_str(&r, &fstype) || rd_u64(&r, &v)) return -1;
                m[i].flags = (unsigned long)v;
                if (rd_str(&r, &data) || rd_u64(&r, &v)) return -1;
                m[i].bind_readonly = (int)v;
                m[i].fstype = *fstype ? fstype : NULL;
                m[i].data = *data ? data : NULL;
            }
            s->mounts = m; s->nmounts = count; break;
        }
        case 6: if (rd_strs(&r, (const char ***)&s->masked_paths, &s->nmasked)) return -1; break;
        case 7: if (rd_strs(&r, (const char ***)&s->readonly_paths, &s->nreadonly)) return -1; break;
        case 8: if (rd_u64(&r, &v)) return -1; s->make_dev = (int)v; break;
        case 9: free((void *)s->argv); s->argv = NULL; if (rd_strs(&r, (const char ***)&s->argv, &n)) return -1; break;
        case 10: free((void *)s->envp); s->envp = NULL; if (rd_strs(&r, (const char ***)&s->envp, &n)) return -1; break;
        case 11: if (rd_str(&r, &s->cwd)) return -1; break;
        case 12: if (rd_u64(&r, &v)) return -1; s->uid = (uid_t)v; break;
        case 13: if (rd_u64(&r, &v)) return -1; s->gid = (gid_t)v; break;
        case 14: {
            uint32_t count;
            if (rd_u32(&r, &count) || count > 65536) return -1;
            free((void *)s->groups); s->groups = NULL;
            gid_t *g = calloc(count ? count : 1, sizeof *g);
            if (!g) return -1;
            for (uint32_t i = 0; i < count; i++) { if (rd_u64(&r, &v)) return -1; g[i] = (gid_t)v; }
            s->groups = g; s->ngroups = count; break;
        }
        case 15: if (rd_u64(&r, &s->cap_bounding)) return -1; break;
        case 16: if (rd_u64(&r, &s->cap_effective)) return -1; break;
        case 17: if (rd_u64(&r, &s->cap_permitted)) return -1; break;
        case 18: if (rd_u64(&r, &s->cap_inheritable)) return -1; break;
        case 19: if (rd_u64(&r, &s->cap_ambient)) return -1; break;
        case 20: if (rd_u64(&r, &v)) return -1; s->no_new_privs = (int)v; break;
        case 21: {
            uint32_t count;
            if (rd_u32(&r, &count) || count > 64) return -1;
            free((void *)s->rlimits); s->rlimits = NULL;
            struct berth_rlimit *l = calloc(count ? count : 1, sizeof *l);
            if (!l) return -1;
            for (uint32_t i = 0; i < count; i++) {
                if (rd_u64(&r, &v)) return -1;
                l[i].resource = (int)v;
                if (rd_u64(&r, &l[i].soft) || rd_u64(&r, &l[i].hard)) return -1;
            }
            s->rlimits = l; s->nrlimits = count; break;
        }
        case 22: {
            uint32_t count;
            if (rd_u32(&r, &count) || (size_t)(r.end - r.p) < (size_t)count * 8) return -1;
            s->seccomp_filter = r.p; s->seccomp_len = count; r.p += (size_t)count * 8; break;
        }
        case 23: if (rd_str(&r, &s->exec_fifo)) return -1; break;
        case 24: if (rd_str(&r, &s->error_file)) return -1; break;
        case 25: if (rd_strs(&r, (const char ***)&s->cgroups, &s->ncgroups)) return -1; break;
        case 26: if (rd_str(&r, &s->rootfs_overlay)) return -1; break;
        case 28: if (rd_str(&r, &s->rootfs_source)) return -1; break;
        case 29: {
            uint32_t count;
            if (rd_u32(&r, &count) || count > 8) return -1;
            struct berth_join *j = calloc(count ? count : 1, sizeof *j);
            if (!j) return -1;
            for (uint32_t i = 0; i < count; i++) {
                if (rd_u64(&r, &v) || rd_str(&r, &j[i].path)) return -1;
                j[i].type = (int)v;
            }
            s->joins = j; s->njoins = count; break;
        }
        case 32: if (rd_u64(&r, &v)) return -1; s->set_oom_score_adj = 1; s->oom_score_adj = (int)(int64_t)v; break;
        case 33: if (rd_strs(&r, (const char ***)&s->sysctls, &s->nsysctls)) return -1; break;
        case 34: {
            uint32_t count;
            if (rd_u32(&r, &count) || count > 4096) return -1;
            struct berth_device *d = calloc(count ? count : 1, sizeof *d);
            if (!d) return -1;
            for (uint32_t i = 0; i < count; i++) {
                uint64_t mode, major, minor, uid, gid;
                if (rd_str(&r, &d[i].path) || rd_u64(&r, &mode) || rd_u64(&r, &major) || rd_u64(&r, &minor) || rd_u64(&r, &uid) || rd_u64(&r, &gid)) return -1;
                d[i].mode = (mode_t)mode; d[i].major = (unsigned)major; d[i].minor = (unsigned)minor; d[i].uid = (uid_t)uid; d[i].gid = (gid_t)gid;
            }
            s->devices = d; s->ndevices = count; break;
        }
        case 35: if (rd_u64(&r, &v)) return -1; s->umask = (mode_t)(v & 0777); break;
        case 36: if (rd_u64(&r, &v)) return -1; s->root_propagation = (unsigned long)v; break;
        case 37: if (rd_u64(&r, &v)) return -1; s->terminal = (int)v; break;
        case 38: {
            uint32_t count;
            if (rd_u32(&r, &count) || count > 256) return -1;
            struct berth_hook *h = calloc(count ? count : 1, sizeof *h);
            if (!h) return -1;
            s->start_hooks = h; s->nstart_hooks = count;
            for (uint32_t i = 0; i < count; i++) {
                if (rd_str(&r, &h[i].path) || rd_strs(&r, (const char ***)&h[i].argv, NULL) || rd_strs(&r, (const char ***)&h[i].envp, NULL) || rd_u64(&r, &v)) return -1;
                h[i].timeout = (unsigned)v;
            }
            break;
        }
        case 39: if (rd_str(&r, &s->hook_state)) return -1; break;
        case 30: if (rd_str(&r, &s->uid_map)) return -1; break;
        case 31: if (rd_str(&r, &s->gid_map)) return -1; break;
        default: return -1;
        }
        (void)str;
    }
    return 0;
}

int berth_wait_pid_exit(pid_t pid, int timeout_ms) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return errno == ESRCH ? 0 : -1;
    struct pollfd p = { fd, POLLIN, 0 };
    int rc;
    do { rc = poll(&p, 1, timeout_ms); } while (rc < 0 && errno == EINTR);
    close(fd);
    return rc > 0 ? 0 : (rc == 0 ? 1 : -1);
}

int berth_oom_notifier(const char *memory_dir, int v2) {
    char path[4096];
    if (v2) {
        int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (fd < 0) return -1;
        snprintf(path, sizeof path, "%s/memory.events", memory_dir);
        if (inotify_add_watch(fd, path, IN_MODIFY) < 0) { int e = errno; close(fd); errno = e; return -1; }
        return fd;
    }
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return -1;
    snprintf(path, sizeof path, "%s/memory.oom_control", memory_dir);
    int ofd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/cgroup.event_control", memory_dir);
    int cfd = ofd < 0 ? -1 : open(path, O_WRONLY | O_CLOEXEC);
    int ok = cfd >= 0 && dprintf(cfd, "%d %d", efd, ofd) > 0;
    int e = errno;
    if (cfd >= 0) close(cfd);
    /* The registration holds what it needs; the event goes away when efd is closed. */
    if (ofd >= 0) close(ofd);
    if (!ok) { close(efd); errno = e; return -1; }
    return efd;
}

int berth_pidfd(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int berth_has_exited_child(void) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    /* WNOWAIT: look without collecting, so that whoever waits on that child still can. */
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return 0;
    return info.si_pid != 0;
}

int berth_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int berth_fsetxattr(int fd, const char *name, const void *value, size_t size) {
    return fsetxattr(fd, name, value, size, 0);
}

unsigned long long berth_makedev(unsigned int major, unsigned int minor) {
    return makedev(major, minor);
}
