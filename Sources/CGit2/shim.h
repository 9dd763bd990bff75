#include <git2.h>

/* git_libgit2_opts is variadic, which Swift cannot call. */
static inline int berth_git_set_mwindow_file_limit(size_t limit) {
    return git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT, limit);
}
