/*
 * berth-shim: the small supervisor of one container (like conmon). `berth runtime create` starts it
 * detached; it sets the container up from <state>/spec.bin, reports the pid, waits for the container's
 * exit and records the exit code in <state>/exit, so the code is kept when no berth is waiting.
 * Usage: berth-shim STATE_DIR NOTIFY_FD
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

static int write_file(const char *dir, const char *name, const char *text) {
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    return ok && rename(tmp, final) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: berth-shim STATE_DIR NOTIFY_FD\n"); return 2; }
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
    pid_t pid;
    struct berth_error err;
    if (berth_spawn(&spec, &pid, &err) != 0) {
        dprintf(notify, "error %s: %s %s: %s\n", err.stage, err.syscall, err.path, strerror(err.err));
        return 1;
    }
    /* Into its cgroups while it waits before exec: everything it runs is counted and limited. */
    for (size_t i = 0; i < spec.ncgroups; i++) {
        char procs[4096], pidtext[32];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", spec.cgroups[i]);
        snprintf(pidtext, sizeof pidtext, "%d", pid);
        int cfd = open(procs, O_WRONLY | O_CLOEXEC);
        if (cfd < 0 || write(cfd, pidtext, strlen(pidtext)) < 0) {
            dprintf(notify, "error cgroup: write %s: %s\n", procs, strerror(errno));
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 1;
        }
        close(cfd);
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
