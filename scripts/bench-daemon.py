#!/usr/bin/env python3
"""Benchmark of `berth run` (root), everything in a scratch directory and a network namespace made for it:

1. push → Ready: a 1-replica busybox Deployment gets a new env value, committed and pushed to a local bare
   repository whose post-receive hook tells the daemon; timed from `git push` until the API shows the one
   pod of the new revision ready. Then the same with polling only (no hook), against the poll interval.
2. idle: example-repo deployed, the daemon's CPU (utime + stime from /proc) and RSS over a window, and the
   status commits made in it.

Usage: bench-daemon.py BERTH_BINARY [--pushes 20] [--poll-pushes 5] [--interval 5] [--idle-seconds 120]
KEEP=1 keeps the scratch directory (the daemon's log, state and repositories) for a look afterwards.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlab import Daemon, add_netns, sh, workspace

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: bench
spec:
  replicas: 1
  selector:
    matchLabels:
      app: bench
  template:
    metadata:
      labels:
        app: bench
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: host
          command: ["/bin/sleep", "100000"]
          env:
            - name: ROUND
              value: "{round}"
"""

def push_rounds(d, git, work, rounds, start):
    times = []
    for i in range(start, start + rounds):
        with open(os.path.join(work, "bench.yaml"), "w") as f:
            f.write(DEPLOYMENT.format(round=i))
        git("commit", "-qam", "round %d" % i, cwd=work)
        t0 = time.monotonic()
        git("push", "-q", "origin", "main", cwd=work)
        d.wait("round %d" % i, lambda: d.rolled_out("bench", 1, str(i)))
        times.append(time.monotonic() - t0)
    return times

def summary(times):
    s = sorted(times)
    return "p50 %.3f s, p90 %.3f s, min %.3f s, max %.3f s over %d pushes" % (
        statistics.median(s), s[max(0, int(len(s) * 0.9) - 1)], s[0], s[-1], len(s))

def main():
    a = argparse.ArgumentParser()
    a.add_argument("binary")
    a.add_argument("--pushes", type=int, default=20)
    a.add_argument("--poll-pushes", type=int, default=5)
    a.add_argument("--interval", type=int, default=5)
    a.add_argument("--idle-seconds", type=int, default=120)
    a.add_argument("--example", default=os.path.join(os.path.dirname(__file__), "..", "example-repo"))
    args = a.parse_args()
    hooks = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hooks")

    tmp = tempfile.mkdtemp(prefix="berth-bench-daemon-")
    netns = "berth-bench-d%d" % os.getpid()
    add_netns(netns)
    daemon = None
    try:
        git, bare, work = workspace(tmp, "bench")
        with open(work + "/bench.yaml", "w") as f:
            f.write(DEPLOYMENT.format(round=0))
        git("add", "-A", cwd=work)
        git("commit", "-qm", "bench", cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)

        # 1. push → Ready through the post-receive hook; polling is hourly, so only the hook can be fast.
        daemon = Daemon(args.binary, bare, tmp, netns, "1h")
        daemon.wait("the first rollout", lambda: daemon.rolled_out("bench", 1, "0"))
        shutil.copy(hooks + "/post-receive", bare + "/hooks/post-receive")
        git("config", "berth.url", daemon.api + "/api/v1/sync", cwd=bare)
        git("config", "berth.tokenFile", tmp + "/state/api-token", cwd=bare)
        hook = push_rounds(daemon, git, work, args.pushes, 1)
        print("push → Ready, post-receive hook: " + summary(hook))
        daemon.stop()

        # Polling only.
        git("config", "--unset", "berth.url", cwd=bare)
        daemon = Daemon(args.binary, bare, tmp, netns, "%ds" % args.interval)
        daemon.wait("the adopted rollout", lambda: daemon.rolled_out("bench", 1))
        poll = push_rounds(daemon, git, work, args.poll_pushes, 100)
        print("push → Ready, polling every %d s: %s" % (args.interval, summary(poll)))

        # 2. idle with example-repo deployed.
        for name in os.listdir(args.example):
            src = os.path.join(args.example, name)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(work, name))
        git("add", "-A", cwd=work)
        git("commit", "-qm", "example-repo", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        # Removing everything berth made in one commit is refused: first add, then remove.
        daemon.wait("example-repo applied", lambda: len(daemon.get("/api/v1/deployments")["items"]) == 3)
        git("rm", "-q", "bench.yaml", cwd=work)
        git("commit", "-qm", "without the bench Deployment", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        daemon.wait("example-repo deployed", lambda: len(daemon.get("/api/v1/deployments")["items"]) == 2 and daemon.all_rolled_out(), timeout=120)
        time.sleep(10)  # the status writer's coalescing and the last probes settle
        commits = lambda: int(sh("git", "rev-list", "--count", "berth/status", cwd=bare))
        c0, cpu0, t0 = commits(), daemon.cpu_seconds(), time.monotonic()
        rss_max = 0
        while time.monotonic() - t0 < args.idle_seconds:
            time.sleep(1)
            rss_max = max(rss_max, daemon.rss_mib())
        cpu = (daemon.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        print("idle with example-repo (%d pods), %d s: CPU %.2f%% of a core, RSS %.1f MiB (max), status commits %d"
              % (len(daemon.get("/api/v1/pods")["items"]), args.idle_seconds, cpu * 100, rss_max, commits() - c0))
    finally:
        if daemon:
            daemon.stop()
        subprocess.run(["ip", "netns", "del", netns])
        if not os.environ.get("KEEP"): shutil.rmtree(tmp, ignore_errors=True)

main()
