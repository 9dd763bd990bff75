/* Entering a running container from the node agent without changing the agent's own namespaces: probes
   and `exec` run in a forked child, and a socket of a pod's network namespace is made by a short-lived
   thread-like child that shares the caller's descriptor table. */
#define _GNU_SOURCE
#include "berth_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct netns_socket_args {
    const char *path;
    int domain, type;
    int fd, error;
};

static int netns_socket_child(void *p) {
    struct netns_socket_args *a = p;
    int ns = open(a->path, O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) { a->error = errno; if (ns >= 0) close(ns); return 1; }
    close(ns);
    /* The descriptor table is shared: the socket lands in the caller's, bound to this namespace. */
    a->fd = socket(a->domain, a->type | SOCK_CLOEXEC, 0);
    if (a->fd < 0) a->error = errno;
    return 0;
}

int berth_netns_socket(const char *netns_path, int domain, int type) {
    enum { stack_size = 64 * 1024 };
    char *stack = malloc(stack_size);
    if (!stack) return -1;
    struct netns_socket_args a = { netns_path, domain, type, -1, 0 };
    /* CLONE_VFORK: the caller sleeps until the child has exited, so `a` and the stack stay valid. */
    pid_t pid = clone(netns_socket_child, stack + stack_size, CLONE_VM | CLONE_FILES | CLONE_VFORK | SIGCHLD, &a);
    if (pid < 0) { int e = errno; free(stack); errno = e; return -1; }
    int status;
    while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {}
    free(stack);
    if (a.fd < 0) { errno = a.error ? a.error : EIO; return -1; }
    return a.fd;
}

static void write_all(int fd, const char *s) {
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        s += n;
        len -= (size_t)n;
    }
}

/* The reason goes to `out`, and as an "error ..." line to `report` (exec's pid pipe) when there is one. */
static void fail_with(int out, int report, int code, const char *what, const char *detail) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s\n", what, detail);
    if (report >= 0) {
        write_all(report, "error ");
        write_all(report, msg);
    } else {
        write_all(out, "berth exec: ");
        write_all(out, msg);
    }
    _exit(code);
}

#define die(out, what) fail_with(out, io->pid_fd, 126, what, strerror(errno))

pid_t berth_exec_in(pid_t target, const char *const *argv, const char *const *envp,
                    const char *const *cgroups, size_t ncgroups, const struct berth_spec *identity,
                    const struct berth_exec_io *io) {
    pid_t helper = fork();
    if (helper != 0) return helper;

    /* The helper: joins the container's cgroups and namespaces, then forks once more, because a joined
       pid namespace applies to children only. Its reasons go where the process's output would. */
    int out = io->out_fd >= 0 ? io->out_fd : 2;
    if (io->out_fd >= 0) setpgid(0, 0);
    for (size_t i = 0; i < ncgroups; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/cgroup.procs", cgroups[i]);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) die(out, "join cgroup");
        close(fd);
    }
    static const char *const kinds[] = { "ipc", "uts", "net", "pid", "mnt" };
    int fds[5];
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)target, kinds[i]);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) die(out, path);
    }
    /* The container's root, which is its mount namespace's only when it pivoted (not when it chrooted
       in a namespace it shares). */
    char root_path[64];
    snprintf(root_path, sizeof root_path, "/proc/%d/root", (int)target);
    int root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) die(out, root_path);
    for (int i = 0; i < 5; i++) {
        /* The mount namespace last: /proc/PID paths above belong to the host's. */
        if (setns(fds[i], 0) != 0) die(out, kinds[i]);
        close(fds[i]);
    }
    if (fchdir(root) != 0 || chroot(".") != 0) die(out, "chroot");
    close(root);
    const char *cwd = identity->cwd && *identity->cwd ? identity->cwd : "/";
    if (chdir(cwd) != 0 && chdir("/") != 0) die(out, "chdir /");
    pid_t child = fork();
    if (child < 0) die(out, "fork");
    if (child == 0) {
        /* Killing the helper (a timed-out probe) kills the program too; a detached one outlives it. */
        if (io->out_fd >= 0) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        /* Its own session: kill(0, ...) inside reaches neither the helper nor the caller. */
        setsid();
        if (io->out_fd >= 0) {
            int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (null >= 0) dup2(null, 0);
            dup2(io->out_fd, 1);
            dup2(io->out_fd, 2);
        }
        if (io->console_fd >= 0) {
            const char *call;
            if (berth_setup_console(io->console_fd, identity->uid, identity->gid, &call) != 0) die(2, call);
        }
        /* Nothing of the caller's stays open in the container (CLOSE_RANGE_CLOEXEC). */
        syscall(SYS_close_range, 3, ~0U, 4);
        /* As the container's own process: its user, capabilities, limits and seccomp filter. */
        const char *stage, *call;
        if (berth_apply_identity(identity, &stage, &call) != 0) die(2, call);
        if (identity->no_new_privs && berth_load_seccomp(identity) != 0) die(2, "seccomp");
        environ = (char **)envp;
        execvp(argv[0], (char *const *)argv);
        fail_with(2, io->pid_fd, errno == ENOENT ? 127 : 126, argv[0], strerror(errno));
    }
    if (io->out_fd >= 0) close(io->out_fd);
    if (io->console_fd >= 0) close(io->console_fd);
    if (io->pid_fd >= 0) {
        char line[32];
        snprintf(line, sizeof line, "%d\n", (int)child);
        write_all(io->pid_fd, line);
        close(io->pid_fd);
    }
    if (io->detach) _exit(0);
    /* The process has the caller's stdio: the helper keeps none of it open. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); }
    int status;
    while (waitpid(child, &status, 0) < 0) if (errno != EINTR) _exit(126);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

int berth_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int berth_unix_connect(const char *path) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    int dir = -1;
    if (strlen(path) >= sizeof addr.sun_path) {
        /* Too long for sun_path: through the directory's descriptor, as /proc/self/fd/N/NAME. */
        const char *slash = strrchr(path, '/');
        if (!slash) { errno = ENAMETOOLONG; return -1; }
        char parent[4096];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        dir = open(*parent ? parent : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0) return -1;
        if ((size_t)snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dir, slash + 1) >= sizeof addr.sun_path) {
            close(dir);
            errno = ENAMETOOLONG;
            return -1;
        }
    } else {
        memcpy(addr.sun_path, path, strlen(path));
    }
    int types[] = { SOCK_STREAM, SOCK_SEQPACKET };
    int fd = -1;
    for (int i = 0; i < 2; i++) {
        fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
        if (fd < 0) break;
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) break;
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
        /* A listener of the other kind refuses with EPROTOTYPE. */
        if (e != EPROTOTYPE) break;
    }
    int e = errno;
    if (dir >= 0) close(dir);
    errno = e;
    return fd;
}
