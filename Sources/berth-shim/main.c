/*
 * berth-shim: the small supervisor of one container (like conmon). `berth runtime create` starts it
 * detached; it sets the container up from <state>/spec.bin, reports the pid, waits for the container's
 * exit and records the exit code in <state>/exit, so the code is kept when no berth is waiting.
 * Usage: berth-shim STATE_DIR NOTIFY_FD [attach | log MAX_BYTES FILES]
 * With `log`, the container's stdout and stderr go through the shim into STATE_DIR/container.log,
 * rotated when it passes MAX_BYTES, keeping FILES files in all (container.log, container.log.1, ...).
 */
#define _GNU_SOURCE
#include "berth_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/syscall.h>

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

static int write_file(const char *dir, const char *name, const char *text) {
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

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4 && argc != 6) {
        fprintf(stderr, "usage: berth-shim STATE_DIR NOTIFY_FD [attach | log MAX_BYTES FILES]\n");
        return 2;
    }
    int logging = argc == 6 && strcmp(argv[3], "log") == 0;
    const char *dir = argv[1];
    int notify = atoi(argv[2]);
    /* Keep only stdio and the notify pipe: descriptors berth's caller leaked to us (pipe ends of other
       processes) must not stay open for the container's whole life. */
    if (notify != 3) { dup2(notify, 3); close(notify); notify = 3; }
    syscall(SYS_close_range, 4, ~0U, 0);
    /* The container must not keep berth's pipe open once it execs. */
    fcntl(notify, F_SETFD, FD_CLOEXEC);
    char path[4096];
    snprintf(path, sizeof path, "%s/spec.bin", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { dprintf(notify, "error spec: cannot read %s\n", path); return 1; }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size) { dprintf(notify, "error spec: cannot read %s\n", path); return 1; }
    close(fd);
    struct berth_spec spec;
    if (berth_decode_spec(buf, (size_t)st.st_size, &spec) != 0) { dprintf(notify, "error spec: %s is damaged\n", path); return 1; }

    /* Its own session: a signal to the process group of the berth that started it does not reach it. */
    setsid();
    /* Orphans of the container are reparented here, and reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    int out[2] = {-1, -1};
    if (logging) {
        if (pipe2(out, O_CLOEXEC) != 0) { dprintf(notify, "error logs: pipe: %s\n", strerror(errno)); return 1; }
        spec.stdout_fd = out[1];
        spec.stderr_fd = out[1];
    }
    pid_t pid;
    struct berth_error err;
    if (berth_spawn(&spec, &pid, &err) != 0) {
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
    if (write_file(dir, "pid", pidline) != 0) { dprintf(notify, "error state: cannot write pid\n"); kill(pid, SIGKILL); return 1; }
    dprintf(notify, "ok %d\n", pid);
    close(notify);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) { dup2(null, 0); }

    int status = 0;
    if (logging) {
        close(out[1]);
        struct log l = { dir, -1, 0, atoll(argv[4]), atoi(argv[5]) };
        if (l.max <= 0) l.max = 10LL << 20;
        if (l.files <= 0) l.files = 5;
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
    write_file(dir, "exit", exitline);
    /* Reap whatever else is left, then go. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    return 0;
}
