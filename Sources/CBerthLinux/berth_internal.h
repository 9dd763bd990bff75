/* Helpers shared by the C files of CBerthLinux; not part of the Swift interface. */
#ifndef BERTH_INTERNAL_H
#define BERTH_INTERNAL_H

#include "berth_linux.h"

/* What berth_resolve_in_root makes when the path is missing. */
enum { BERTH_RESOLVE_EXISTING = 0, BERTH_RESOLVE_DIR = 1, BERTH_RESOLVE_FILE = 2 };

/*
 * An O_PATH descriptor of `inside` (absolute, as the container sees it) under the directory rootfd, with
 * every symlink resolved as if rootfd were "/" (openat2 RESOLVE_IN_ROOT): nothing outside is reached.
 * Missing components are made one at a time relative to their resolved parent, never through a link.
 * -1 with errno on failure.
 */
int berth_resolve_in_root(int rootfd, const char *inside, int make);

/* "/proc/self/fd/N", for mounting onto or from a resolved descriptor. */
void berth_fd_path(int fd, char *buf, size_t size);

/* The process identity of a container (rlimits, capabilities, user and groups, no_new_privs, and the
   seccomp filter when it must be loaded while privileged); on failure *stage and *call say where. */
int berth_apply_identity(const struct berth_spec *s, const char **stage, const char **call);

/* process.terminal: opens a pty in the current mount namespace's /dev/ptmx, makes its peer the
   controlling terminal and stdio (owned by uid/gid), sends the master over `sock`. -1 with *call set. */
int berth_setup_console(int sock, uid_t uid, gid_t gid, const char **call);

/* Loads the spec's seccomp filter (0 without one). */
int berth_load_seccomp(const struct berth_spec *s);

#endif
