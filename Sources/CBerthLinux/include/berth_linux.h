#ifndef BERTH_LINUX_H
#define BERTH_LINUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A mount to make inside the container's root, in order. */
struct berth_mount {
    const char *source;
    const char *target;      /* absolute, inside the container */
    const char *fstype;      /* NULL for bind mounts */
    unsigned long flags;     /* MS_* */
    const char *data;
    int bind_readonly;       /* bind mounts: remount read-only (and flags) after binding */
};

/* An existing namespace to enter instead of making a new one (OCI linux.namespaces[].path). */
struct berth_join {
    int type;                /* CLONE_NEW* */
    const char *path;        /* e.g. /proc/PID/ns/net or a bind-mounted namespace file */
};

/* A device node to make in the container (OCI linux.devices). */
struct berth_device {
    const char *path;        /* absolute, inside the container */
    mode_t mode;             /* S_IFCHR, S_IFBLK or S_IFIFO | permissions */
    unsigned int major, minor;
    uid_t uid;
    gid_t gid;
};

/* An OCI hook: run with the container's state JSON on stdin, killed after timeout seconds (0: none). */
struct berth_hook {
    const char *path;
    const char *const *argv;         /* NULL-terminated; empty: path alone */
    const char *const *envp;
    unsigned timeout;
};

struct berth_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
};

/*
 * Everything the child needs, prepared by the parent so that nothing is allocated or parsed between
 * clone and execve. Strings and arrays are owned by the caller and must outlive berth_spawn.
 */
struct berth_spec {
    int clone_flags;                 /* CLONE_NEW* */
    const char *rootfs;              /* absolute host path */
    int readonly_root;
    const char *hostname;            /* NULL: leave */
    const struct berth_mount *mounts;
    size_t nmounts;
    const char *const *masked_paths;
    size_t nmasked;
    const char *const *readonly_paths;
    size_t nreadonly;
    int make_dev;                    /* populate a minimal /dev on tmpfs */
    const char *const *argv;         /* argv[0] is resolved against PATH in envp when it has no '/' */
    const char *const *envp;
    const char *cwd;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
    int no_new_privs;
    const struct berth_rlimit *rlimits;
    size_t nrlimits;
    const void *seccomp_filter;      /* struct sock_filter[], NULL for none */
    size_t seccomp_len;              /* number of instructions */
    int stdin_fd, stdout_fd, stderr_fd; /* -1: inherit */
    /*
     * Create/start split, as runc does: with exec_fifo set, berth_spawn returns once the container is
     * set up, and the process waits, before execve, until someone opens the FIFO for reading
     * (`berth runtime start`). Failures after that point go to error_file as a struct berth_error.
     */
    const char *exec_fifo;
    const char *error_file;
    /* cgroup directories the process joins before anything else (v1: one per controller; v2: one). */
    const char *const *cgroups;
    size_t ncgroups;
    /* With it, rootfs becomes an overlay mount with these options (lowerdir=…,upperdir=…,workdir=…),
       made inside the container's mount namespace, so no host mount is left behind. */
    const char *rootfs_overlay;
    /* A read-only lower layer (the host's root for `image: host`, without its submounts): the root is an
       overlay of it under a tmpfs that rootfs becomes, so the source is never written. NULL: rootfs itself. */
    const char *rootfs_source;
    /* Namespaces to join (net, ipc, uts, pid); their types are not in clone_flags. A pid namespace is
       entered by the caller before clone (it applies to children), the others by the child. */
    const struct berth_join *joins;
    size_t njoins;
    /* With CLONE_NEWUSER in clone_flags: /proc/PID/uid_map and gid_map text ("inside outside count\n"...),
       written by the caller while the child waits; the child then becomes root of the namespace. */
    const char *uid_map;
    const char *gid_map;
    int set_oom_score_adj;
    int oom_score_adj;
    /* "key=value" pairs for /proc/sys (namespaced ones only; checked by the caller). */
    const char *const *sysctls;
    size_t nsysctls;
    const struct berth_device *devices;
    size_t ndevices;
    mode_t umask;                    /* process.user.umask (0022 unless given, as runc) */
    unsigned long root_propagation;  /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE [| MS_REC] for "/", 0: leave */
    /* process.terminal: a pty of the container's own devpts is the process's stdio and controlling
       terminal; its master is sent over console_fd (a connected unix socket: runc's --console-socket). */
    int terminal;
    int console_fd;                  /* not encoded: the descriptor of whoever decodes the spec; -1: none */
    /* startContainer hooks: run in the container once `start` opened the exec FIFO, before the process's
       execve; their stdin is the file hook_state (the runtime writes the state there after create). */
    const struct berth_hook *start_hooks;
    size_t nstart_hooks;
    const char *hook_state;
    /* Not encoded: -1, or a pipe the child reads a byte from before it moves itself into its v1 cgroups,
       which the caller makes meanwhile (no byte: the caller could not, and says why). */
    int cgroups_ready_fd;
};

/* Where the child failed, sent back over a close-on-exec pipe. */
struct berth_error {
    char stage[32];
    char syscall[24];
    char path[200];
    int err;                         /* errno */
};

/*
 * Clones a child in new namespaces that sets up the container and execs the process.
 * Returns 0 with *pid set once the child has exec'd; -1 with *error filled when it (or clone) failed.
 */
int berth_spawn(const struct berth_spec *spec, pid_t *pid, struct berth_error *error);

/* A detached container's log: rotated past max_bytes, files kept in all (container.log, .1, ...). */
struct berth_log_config {
    long long max_bytes;
    int files;
};

/*
 * Supervises one container from this process (berth-shim, or a fork of `berth-runtime run`): its own
 * session, child subreaper; spawns the container, writes DIR/pid ("PID STARTTIME"), reports "ok PID\n" or
 * "error ...\n" on notify, copies its output into DIR/container.log when logging (else it inherits
 * stdio), waits, writes DIR/exit. Returns the supervisor's exit status. With `detach` it returns once the
 * container is spawned, as runc does: the container is then reparented to the nearest subreaper (the
 * caller's containerd shim or conmon), which reaps it and learns its exit code; DIR/exit is not written.
 * With `waiter` (the pid of a `run` that waits for this process), the exit status is the container's exit
 * code, and DIR/exit is written only when that process is no longer its parent.
 */
int berth_supervise(struct berth_spec *spec, const char *dir, int notify, const struct berth_log_config *logging, int detach, pid_t waiter);

/* berth-shim's main: berth_supervise after closing every descriptor but stdio and notify. */
int berth_shim_main(struct berth_spec *spec, const char *dir, int notify, const struct berth_log_config *logging, int detach);

/* Forks a supervisor (the caller must be single-threaded) for a spec encoded as for berth-shim; returns
   its pid, with *reply the descriptor berth_await_supervisor reads, or -1 with the reason in message.
   stdin is /dev/null; stdout and stderr are shared. cgroups_ready (-1: none) is the read end of a pipe
   whose byte lets the container join its cgroups: the caller makes them while the container's
   namespaces are made. */
pid_t berth_fork_supervisor(const unsigned char *encoded, size_t len, const char *dir, int cgroups_ready, int *reply, char *message, size_t size);

/* Waits for the forked supervisor's word: 0 with *container set once the container runs (reply stays
   open for berth_await_exit), or -1 with the reason in message (the supervisor is reaped, reply closed). */
int berth_await_supervisor(pid_t supervisor, int reply, pid_t *container, char *message, size_t size);

/* Waits for the container's exit code, which the supervisor sends before it removes the container's
   cgroups and exits; -1 if it went without a word. Closes reply. */
int berth_await_exit(int reply);

/* Reads a spec serialized by berth (see SpecEncoding.swift) from a buffer; pointers point into it. */
int berth_decode_spec(const unsigned char *buf, size_t len, struct berth_spec *spec);

/* Decodes more fields over a decoded spec: those the buffer has replace the spec's (exec's process). */
int berth_decode_spec_over(const unsigned char *buf, size_t len, struct berth_spec *spec);

/* Waits (pidfd + poll) until a process that is not our child exits: 0 exited, 1 timed out, -1 error. */
int berth_wait_pid_exit(pid_t pid, int timeout_ms);

/* A descriptor that becomes readable when a cgroup's OOM killer acts: v1 registers an eventfd on
   memory.oom_control; v2 watches memory.events with inotify. Read it to rearm. -1 with errno on failure. */
int berth_oom_notifier(const char *memory_dir, int v2);

/* pidfd_open: readable once the process has exited. */
int berth_pidfd(pid_t pid);

/* 1 when a child of this process has exited and waits to be collected (it is left uncollected). */
int berth_has_exited_child(void);

/* Makes orphaned descendants reparent to this process (PR_SET_CHILD_SUBREAPER). */
int berth_set_child_subreaper(void);

/* An O_PATH descriptor of `inside` under the directory `root`, every link resolved as if root were "/"
   (nothing outside is reached); make: 0 must exist, 1 make missing directories, 2 make a missing file
   (and its directories). -1 with errno on failure. */
int berth_open_in_root(const char *root, const char *inside, int make);

/* fsetxattr and makedev, which Swift's Glibc module does not export. */
int berth_fsetxattr(int fd, const char *name, const void *value, size_t size);
unsigned long long berth_makedev(unsigned int major, unsigned int minor);

/* An anonymous in-memory file (memfd_create with MFD_CLOEXEC), for libseccomp's fd-only export. */
int berth_memfd(const char *name);

/* A socket (SOCK_CLOEXEC added) that lives in the network namespace at netns_path, made without the
   caller changing namespace. -1 with errno on failure. */
int berth_netns_socket(const char *netns_path, int domain, int type);

/* Where an entered process's stdio goes. */
struct berth_exec_io {
    int out_fd;      /* >= 0: stdin is /dev/null, stdout and stderr go here (probes); -1: the caller's stdio */
    int console_fd;  /* >= 0: a pty of the container is its stdio, the master sent over this socket */
    int pid_fd;      /* >= 0: the process's pid is written here as "PID\n" once it is forked */
    int detach;      /* the helper exits once the process is forked: the process is the caller's
                        subreaper's to reap (runc's exec --detach) */
};

/* Runs argv (PATH searched in envp) inside the ipc, uts, net, pid and mount namespaces of the running
   process `target`, joined to the cgroup directories given, in a session of its own, as the container's
   process runs (`identity` is the container's decoded spec, with exec's process fields over it): its user
   and groups, capabilities, rlimits, no_new_privs, seccomp filter and working directory. Returns the pid
   of a helper child that exits with the program's status (126/127 when it could not start, the reason
   written to out_fd or stderr); with out_fd, SIGKILL to the helper ends the program too. */
pid_t berth_exec_in(pid_t target, const char *const *argv, const char *const *envp,
                    const char *const *cgroups, size_t ncgroups, const struct berth_spec *identity,
                    const struct berth_exec_io *io);

/* A connected unix socket (stream, or seqpacket when the listener is one), close-on-exec; paths too long
   for sun_path are reached through their directory. -1 with errno on failure. */
int berth_unix_connect(const char *path);

/* Frees the lists berth_decode_spec allocated (the strings stay in the caller's buffer). */
void berth_spec_free(struct berth_spec *spec);

/* A device cgroup rule: type 'a' (all), 'c' or 'b'; major/minor -1 for any; access bits 1 mknod, 2 read,
   4 write (BPF_DEVCG_ACC_*). */
struct berth_device_rule {
    int allow;
    char type;
    long long major, minor;
    unsigned access;
};

/* cgroup v2: attaches a device program to the cgroup directory that lets through what the last matching
   rule allows (nothing matched: denied). -1 with errno on failure. */
int berth_device_filter_attach(const char *cgroup_dir, const struct berth_device_rule *rules, size_t n);

/* pipe2(O_CLOEXEC), which Swift's Glibc module does not export: no other thread's spawn inherits it. */
int berth_pipe_cloexec(int fds[2]);

#endif
