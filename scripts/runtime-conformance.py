#!/usr/bin/env python3
"""The OCI runtime-tools validation suite against runtimes, side by side (root).

The suite's source is a local Git copy outside this repository (`--source`, a bare or normal repository of
opencontainers/runtime-tools); the commit built is `--commit` (260e151, the last that Debian's Go 1.19
builds). It is extracted and built once under `--work` with its vendored modules, offline. Each validation
program then runs against each runtime, from the suite's directory (the programs untar its rootfs and copy
its `runtimetest` into their bundles), with RUNTIME set to a wrapper that gives the runtime a state root of
its own; containers left in that root are removed after each program.

A program passes when it exits 0, reports at least one `ok` and no `not ok` (some programs report what
stopped them as an `"error"` diagnostic under a plan of `1..0`, and exit 0: a failure). Output: a Markdown table, one row per program.

Usage: runtime-conformance.py --source GITDIR [--commit 260e151] [--work DIR] [--timeout 120]
                              [--only NAME,...] NAME=BINARY ...
"""
import argparse, os, re, shutil, signal, subprocess, sys, tempfile


def build(source, commit, work):
    tree = os.path.join(work, "src-" + commit)
    stamp = os.path.join(tree, ".built")
    if os.path.exists(stamp):
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    archive = subprocess.run(["git", "--git-dir", git_dir(source), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    env = dict(os.environ, GOFLAGS="-mod=vendor", GOPROXY="off", GOCACHE=os.path.join(work, "gocache"),
               GOPATH=os.path.join(work, "gopath"), CGO_ENABLED="1")
    def go(*args):
        subprocess.run(["go", "build", *args], cwd=tree, env=env, check=True)
    go("-tags", "netgo osusergo", "-ldflags", "-extldflags -static", "-o", "runtimetest", "./cmd/runtimetest")
    for name in programs(tree):
        go("-o", "validation/%s/%s.t" % (name, name), "./validation/%s/%s.go" % (name, name))
    open(stamp, "w").close()
    return tree


def git_dir(source):
    dot = os.path.join(source, ".git")
    return dot if os.path.isdir(dot) else source


def programs(tree):
    out = []
    for name in sorted(os.listdir(os.path.join(tree, "validation"))):
        if name != "util" and os.path.exists(os.path.join(tree, "validation", name, name + ".go")):
            out.append(name)
    return out


def wrapper(binary, root, path):
    with open(path, "w") as f:
        f.write('#!/bin/sh\nexec %s --root %s "$@"\n' % (binary, root))
    os.chmod(path, 0o755)


def clean_root(binary, root):
    """Removes what a program left in the runtime's root: its containers, killed first."""
    if not os.path.isdir(root):
        return
    for entry in os.listdir(root):
        if os.path.isdir(os.path.join(root, entry)):
            subprocess.run([binary, "--root", root, "delete", "--force", entry], capture_output=True, timeout=30)


def detach_left_mounts():
    """Detaches mounts a runtime left in the host's mount namespace under the programs' bundles (a container
    without a mount namespace of its own mounts there; runc leaves them); returns how many."""
    prefix = os.path.join(tempfile.gettempdir(), "ocitest")
    with open("/proc/self/mountinfo") as f:
        points = [p for p in (l.split()[4] for l in f) if p.startswith(prefix)]
    for point in reversed(points):
        subprocess.run(["umount", "-l", point], capture_output=True)
    return len(points)


def run_program(tree, name, runtime, timeout):
    proc = subprocess.Popen([os.path.join(tree, "validation", name, name + ".t")], cwd=tree,
                            env=dict(os.environ, RUNTIME=runtime), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return False, "timed out after %d s" % timeout, out.decode(errors="replace")
    text = out.decode(errors="replace")
    lines = text.splitlines()
    failed = [l for l in lines if l.startswith("not ok")]
    oks = len([l for l in lines if l.startswith("ok")])
    if proc.returncode == 0 and not failed and oks:
        return True, "%d ok" % oks, text
    # Some programs report what stopped them as an "error" diagnostic under a plan of 1..0, and exit 0.
    errors = [l.strip() for l in lines if l.strip().startswith('"error":')]
    why = failed[0] if failed else errors[-1] if errors and not oks else "exit %d" % proc.returncode
    return False, why, text


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--source", required=True)
    a.add_argument("--commit", default="260e151")
    a.add_argument("--work", default="/var/tmp/berth-runtime-tools")
    a.add_argument("--timeout", type=int, default=120)
    a.add_argument("--only", default="")
    a.add_argument("--logs", help="directory for each program's output")
    a.add_argument("runtimes", nargs="+", help="NAME=BINARY")
    args = a.parse_args()
    runtimes = [r.split("=", 1) for r in args.runtimes]
    os.makedirs(args.work, exist_ok=True)
    tree = build(args.source, args.commit, args.work)
    names = args.only.split(",") if args.only else programs(tree)
    tmp = tempfile.mkdtemp(prefix="berth-conformance-")
    results = {}
    try:
        for rname, binary in runtimes:
            root = os.path.join(tmp, rname, "root")
            os.makedirs(root)
            wrap = os.path.join(tmp, rname, "runtime")
            wrapper(os.path.abspath(binary), root, wrap)
            for name in names:
                ok, why, text = run_program(tree, name, wrap, args.timeout)
                clean_root(os.path.abspath(binary), root)
                left = detach_left_mounts()
                if left:
                    why += "; left %d mounts in the host's mount namespace" % left
                results[(rname, name)] = (ok, why)
                if args.logs:
                    os.makedirs(args.logs, exist_ok=True)
                    with open(os.path.join(args.logs, "%s.%s.log" % (name, rname)), "w") as f:
                        f.write(text)
                print("%-40s %-14s %s  %s" % (name, rname, "pass" if ok else "FAIL", why[:100]), file=sys.stderr, flush=True)
    finally:
        for rname, binary in runtimes:
            clean_root(os.path.abspath(binary), os.path.join(tmp, rname, "root"))
        shutil.rmtree(tmp, ignore_errors=True)
    cols = [r for r, _ in runtimes]
    print("| program | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name in names:
        cells = []
        for r in cols:
            ok, why = results[(r, name)]
            cells.append("pass" if ok else "fail: " + re.sub(r"\s+", " ", why.replace("|", "/"))[:80])
        print("| %s | %s |" % (name, " | ".join(cells)))
    print("| **passed** | " + " | ".join("**%d of %d**" % (sum(results[(r, n)][0] for n in names), len(names)) for r in cols) + " |")
    both = [n for n in names if results[(cols[0], n)][0] and not all(results[(r, n)][0] for r in cols)]
    if len(cols) > 1 and both:
        print("\npassed by %s, failed by another: %s" % (cols[0], ", ".join(both)))


if __name__ == "__main__":
    main()
