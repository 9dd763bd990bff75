/*
 * berth-shim: the small supervisor of one container (like conmon). `berth runtime create` starts it
 * detached; it sets the container up from <state>/spec.bin, reports the pid, waits for the container's
 * exit and records the exit code in <state>/exit, so the code is kept when no berth is waiting.
 * Usage: berth-shim STATE_DIR NOTIFY_FD detach [console] | log MAX_BYTES FILES
 * With `detach` it exits once the container is spawned (runc's way: the caller's subreaper reaps it);
 * `console`: fd 4 is the console socket a terminal's master is sent over.
 * With `log`, the container's stdout and stderr go through the shim into STATE_DIR/container.log,
 * rotated when it passes MAX_BYTES, keeping FILES files in all (container.log, container.log.1, ...).
 */
#define _GNU_SOURCE
#include "berth_linux.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int detach = (argc == 4 || (argc == 5 && strcmp(argv[4], "console") == 0)) && strcmp(argv[3], "detach") == 0;
    if (!detach && !(argc == 6 && strcmp(argv[3], "log") == 0)) {
        fprintf(stderr, "usage: berth-shim STATE_DIR NOTIFY_FD detach [console] | log MAX_BYTES FILES\n");
        return 2;
    }
    const char *dir = argv[1];
    int notify = atoi(argv[2]);
    struct berth_log_config log = { 0, 0 };
    if (argc == 6) { log.max_bytes = atoll(argv[4]); log.files = atoi(argv[5]); }
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
    if (argc == 5) spec.console_fd = 4;
    return berth_shim_main(&spec, dir, notify, argc == 6 ? &log : NULL, detach);
}
