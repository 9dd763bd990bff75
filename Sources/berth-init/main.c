/*
 * berth-init: PID 1 of a pod's container, as tini or docker-init. The kernel delivers to PID 1 of a pid
 * namespace only the signals it has a handler for, and orphans of the namespace become its children: a
 * program that does not expect to be PID 1 ignores SIGTERM and leaves zombies. berth-init runs the
 * program as its child, forwards every signal it gets to it, reaps every child, and exits with the
 * program's status (128+N when a signal N ended it).
 * Usage: berth-init [--] PROGRAM [ARGS...]   (bind-mounted read-only into the container at /dev/init)
 *        berth-init --pause                   (a pod's sandbox: holds its namespaces until SIGTERM/SIGINT)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* Signals a fault raises in this process itself: left unblocked so that a fault is not hidden. */
static const int synchronous[] = { SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS };

/* Sleeps, reaping anything that ends up here, until told to stop. */
static int pause_until_stopped(void) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (;;) {
        int sig = sigwaitinfo(&all, NULL);
        if (sig == SIGTERM || sig == SIGINT) return 0;
        if (sig == SIGCHLD) while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc == 2 && strcmp(argv[1], "--pause") == 0) return pause_until_stopped();
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    if (first >= argc) {
        fprintf(stderr, "usage: berth-init [--] PROGRAM [ARGS...] | berth-init --pause\n");
        return 2;
    }
    /* Not PID 1 (a shared pid namespace): orphans of the program still come here to be reaped. */
    if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    sigset_t all, before;
    sigfillset(&all);
    for (size_t i = 0; i < sizeof synchronous / sizeof synchronous[0]; i++) sigdelset(&all, synchronous[i]);
    /* Blocked, signals wait in the queue for sigwaitinfo; a blocked SIGCHLD is kept although its default
       action is to be ignored. */
    sigprocmask(SIG_SETMASK, &all, &before);

    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "berth-init: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &before, NULL);
        execvp(argv[first], argv + first);
        int code = errno == ENOENT ? 127 : 126;
        fprintf(stderr, "berth-init: exec %s: %s\n", argv[first], strerror(errno));
        _exit(code);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) break;
            if (pid != child) continue;
            /* The rest of the namespace is killed by the kernel when PID 1 exits. */
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
    }
}
