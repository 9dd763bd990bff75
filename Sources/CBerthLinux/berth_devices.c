/* The cgroup v2 device controller is a BPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup:
   this builds one from allow/deny rules, as the v1 devices.allow/deny files take them. */
#define _GNU_SOURCE
#include "berth_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct bpf_insn insn(unsigned char code, unsigned char dst, unsigned char src, short off, int imm) {
    struct bpf_insn i;
    memset(&i, 0, sizeof i);
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

/* r1 = struct bpf_cgroup_dev_ctx { u32 access_type (type | access << 16); u32 major; u32 minor; } */
#define MAX_INSNS 4096

int berth_device_filter_attach(const char *cgroup_dir, const struct berth_device_rule *rules, size_t n) {
    size_t len = 0;
    int matched_all = 0;
    if (n * 8 + 8 > MAX_INSNS) { errno = E2BIG; return -1; }
    struct bpf_insn *prog = calloc(n * 8 + 8, sizeof *prog);
    if (!prog) return -1;
    prog[len++] = insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0);      /* r2 = access_type */
    prog[len++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);    /* r3 = r2 */
    prog[len++] = insn(BPF_ALU | BPF_AND | BPF_K, 3, 0, 0, 0xffff); /* r3 = device type */
    prog[len++] = insn(BPF_ALU | BPF_RSH | BPF_K, 2, 0, 0, 16);     /* r2 = access wanted */
    prog[len++] = insn(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0);      /* r4 = major */
    prog[len++] = insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0);      /* r5 = minor */
    /* The last matching rule decides, as when the rules are written one after another to v1's files:
       test them from the last one back, and the first match returns. */
    for (size_t k = n; k-- > 0;) {
        const struct berth_device_rule *r = &rules[k];
        struct bpf_insn block[8];
        int jumps[8], nb = 0, nj = 0;
        if (r->type == 'c' || r->type == 'b') {
            jumps[nj++] = nb;
            block[nb++] = insn(BPF_JMP | BPF_JNE | BPF_K, 3, 0, 0, r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
        }
        unsigned all = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;
        if ((r->access & all) != all) {
            block[nb++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 6, 2, 0, 0);
            block[nb++] = insn(BPF_ALU | BPF_AND | BPF_K, 6, 0, 0, (int)(~r->access & all));
            jumps[nj++] = nb;
            block[nb++] = insn(BPF_JMP | BPF_JNE | BPF_K, 6, 0, 0, 0);   /* wants more than the rule covers */
        }
        if (r->type != 'a' && r->major >= 0) {
            jumps[nj++] = nb;
            block[nb++] = insn(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (int)r->major);
        }
        if (r->type != 'a' && r->minor >= 0) {
            jumps[nj++] = nb;
            block[nb++] = insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int)r->minor);
        }
        block[nb++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow ? 1 : 0);
        block[nb++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
        for (int j = 0; j < nj; j++) block[jumps[j]].off = (short)(nb - jumps[j] - 1);
        memcpy(prog + len, block, (size_t)nb * sizeof block[0]);
        len += (size_t)nb;
        /* A rule that matches everything decides alone: what follows would be unreachable, which the
           verifier refuses. */
        if (nj == 0) { matched_all = 1; break; }
    }
    if (!matched_all) {
        prog[len++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);   /* nothing matched: denied */
        prog[len++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }

    union bpf_attr load;
    memset(&load, 0, sizeof load);
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (unsigned long long)(unsigned long)prog;
    load.insn_cnt = (unsigned)len;
    load.license = (unsigned long long)(unsigned long)"Apache";
    int prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    int load_errno = errno;
    free(prog);
    if (prog_fd < 0) { errno = load_errno; return -1; }
    int cg = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0) { int e = errno; close(prog_fd); errno = e; return -1; }
    union bpf_attr attach;
    memset(&attach, 0, sizeof attach);
    attach.target_fd = (unsigned)cg;
    attach.attach_bpf_fd = (unsigned)prog_fd;
    attach.attach_type = BPF_CGROUP_DEVICE;
    int rc = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach);
    int e = errno;
    /* The attachment holds the program for as long as the cgroup lives. */
    close(cg);
    close(prog_fd);
    errno = e;
    return rc;
}
