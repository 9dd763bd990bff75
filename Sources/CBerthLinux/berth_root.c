/* Paths inside a container's root, resolved without ever leaving it: a link planted in an image or a
   volume cannot make set-up create, change or mount anything on the host. */
#define _GNU_SOURCE
#include "berth_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static int open_in_root(int rootfd, const char *rel, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(flags | O_PATH | O_CLOEXEC);
    how.resolve = IN_ROOT;
    int fd;
    do { fd = (int)syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof how); } while (fd < 0 && errno == EAGAIN);
    return fd;
}

void berth_fd_path(int fd, char *buf, size_t size) {
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

int berth_resolve_in_root(int rootfd, const char *inside, int make) {
    const char *rel = inside;
    while (*rel == '/') rel++;
    int fd = open_in_root(rootfd, rel, 0);
    if (fd >= 0 || errno != ENOENT || make == BERTH_RESOLVE_EXISTING) return fd;

    char buf[4096];
    size_t len = strlen(rel);
    if (len >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, rel, len + 1);
    while (len > 0 && buf[len - 1] == '/') buf[--len] = 0;
    /* Back to the deepest prefix that exists (most often the parent): one look-up a level, rather than
       one for every level from the root down. */
    size_t missing = len;
    int dir = -1;
    while (dir < 0) {
        size_t cut = missing;
        while (cut > 0 && buf[cut - 1] != '/') cut--;
        size_t end = cut;
        while (end > 0 && buf[end - 1] == '/') end--;
        if (end == 0) {
            dir = open_in_root(rootfd, "", O_DIRECTORY);
            if (dir < 0) return -1;
            missing = 0;
            break;
        }
        char kept = buf[end];
        buf[end] = 0;
        dir = open_in_root(rootfd, buf, 0);
        int e = errno;
        buf[end] = kept;
        if (dir >= 0) { missing = cut; break; }
        if (e != ENOENT) { errno = e; return -1; }
        missing = end;
    }
    /* Then down, making each missing level. Each one is opened from the root again, so a link made or
       planted in it meanwhile still resolves inside. */
    char *start = buf + missing;
    for (;;) {
        while (*start == '/') start++;
        char *slash = strchr(start, '/');
        int last = slash == NULL;
        if (slash) *slash = 0;
        if (*start != 0 && strcmp(start, ".") != 0) {
            int made;
            if (last && make == BERTH_RESOLVE_FILE) {
                int f = openat(dir, start, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                made = f >= 0 || errno == EEXIST ? 0 : -1;
                if (f >= 0) close(f);
            } else {
                made = mkdirat(dir, start, 0755) == 0 || errno == EEXIST ? 0 : -1;
            }
            /* A dangling link stays dangling (EEXIST above, ENOENT here): nothing is made through it. */
            int next = made == 0 ? open_in_root(rootfd, buf, 0) : -1;
            if (next < 0) { int e = errno; close(dir); errno = e; return -1; }
            close(dir);
            dir = next;
        }
        if (last) return dir;
        *slash = '/';
        start = slash + 1;
    }
}

int berth_open_in_root(const char *root, const char *inside, int make) {
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return -1;
    int fd = berth_resolve_in_root(rootfd, inside, make);
    int e = errno;
    close(rootfd);
    errno = e;
    return fd;
}
