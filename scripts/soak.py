#!/usr/bin/env python3
"""Soak of `berth run` (root): example-repo plus a Deployment with exec and HTTP probes, in a scratch directory
and a network namespace made for it. Every period: a rollout (a new env value pushed) and one pod's process
killed with SIGKILL. Sampled each period and asserted flat at the end: the daemon's children and zombies, its
open files and memory (resident and anonymous), the entries under its run directory and berth's pod cgroups.

Usage: soak.py BERTH_BINARY [--minutes 30] [--period 60]    (exit 1 when something grew)
KEEP=1 keeps the scratch directory.
"""
import argparse, os, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlab import Daemon, add_netns, sh, workspace

SOAK = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: soak
spec:
  replicas: 2
  selector:
    matchLabels: {{app: soak}}
  template:
    metadata:
      labels: {{app: soak}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: host
          command: ["/bin/sh", "-c", "touch /tmp/alive; exec /bin/sleep 1000001"]
          env: [{{name: ROUND, value: "{round}"}}]
          livenessProbe:
            exec: {{command: ["/bin/sh", "-c", "test -e /tmp/alive"]}}
            periodSeconds: 2
          readinessProbe:
            exec: {{command: ["/bin/true"]}}
            periodSeconds: 2
"""

def children(pid):
    """(children, zombies) of pid."""
    kids = zombies = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = open("/proc/%s/stat" % name).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids += 1
            zombies += fields[0] == "Z"
    return kids, zombies

def anon_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0

SEEN = set()  # uids of every pod this daemon ran: their cgroups are the ones that may leak

def sample(d, tmp):
    kids, zombies = children(d.proc.pid)
    cg = "/sys/fs/cgroup/memory/berth"
    SEEN.update(os.listdir(tmp + "/run/pods"))
    return {
        "pods": len(d.get("/api/v1/pods")["items"]),
        "children": kids, "zombies": zombies,
        "fds": len(os.listdir("/proc/%d/fd" % d.proc.pid)),
        "rss_mib": round(d.rss_mib(), 1),
        # Anonymous memory alone: RSS also counts pages of the binary as new code paths run.
        "anon_mib": round(anon_kib(d.proc.pid) / 1024, 1),
        "run_pods": len(os.listdir(tmp + "/run/pods")),
        "run_containers": len(os.listdir(tmp + "/run/runtime")),
        "pod_cgroups": len([u for u in SEEN if os.path.isdir(cg + "/pod-" + u)]),
    }

def main():
    a = argparse.ArgumentParser()
    a.add_argument("binary")
    a.add_argument("--minutes", type=float, default=30)
    a.add_argument("--period", type=float, default=60)
    a.add_argument("--example", default=os.path.join(os.path.dirname(__file__), "..", "example-repo"))
    args = a.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-soak-")
    netns = "berth-soak-%d" % os.getpid()
    add_netns(netns)
    daemon = None
    failures = []
    try:
        git, bare, work = workspace(tmp, "soak")
        for name in os.listdir(args.example):
            src = os.path.join(args.example, name)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(work, name))
        open(work + "/soak.yaml", "w").write(SOAK.format(round=0))
        git("add", "-A", cwd=work)
        git("commit", "-qm", "soak", cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)
        daemon = Daemon(args.binary, bare, tmp, netns, "2s")
        daemon.wait("the first rollout", daemon.all_rolled_out, timeout=180)
        time.sleep(5)
        base = sample(daemon, tmp)
        print("start  ", base, flush=True)
        rounds = max(1, int(args.minutes * 60 / args.period))
        for i in range(1, rounds + 1):
            open(work + "/soak.yaml", "w").write(SOAK.format(round=i))
            git("commit", "-qam", "round %d" % i, cwd=work)
            git("push", "-q", "origin", "main", cwd=work)
            daemon.wait("round %d" % i, lambda: daemon.rolled_out("soak", 2, str(i)) and daemon.all_rolled_out(), timeout=180)
            # A pod's process dies: the agent restarts it.
            victims = sh("pgrep", "-f", "sleep 1000001", check=False).split()
            if victims:
                os.kill(int(victims[0]), signal.SIGKILL)
            time.sleep(max(0.0, args.period - 5))
            daemon.wait("round %d settled" % i, daemon.all_rolled_out, timeout=180)
            s = sample(daemon, tmp)
            print("round %d" % i, s, flush=True)
            if s["zombies"] > 0:
                # A child that exited a moment ago is a zombie until the daemon's next pass reaps it (≤ 1 s
                # when idle): only one still there 2 s later is a leak.
                time.sleep(2)
                kids, zombies = children(daemon.proc.pid)
                print("round %d: %d zombie(s) at the sample, %d two seconds later" % (i, s["zombies"], zombies), flush=True)
                if zombies > 0:
                    failures.append("round %d: %d zombie children" % (i, zombies))
        time.sleep(5)
        end = sample(daemon, tmp)
        print("end    ", end, flush=True)
        # Each fetch adds a pack to the mirror; libgit2 keeps up to 16 of them open (gitOpenPackLimit).
        limits = {"children": base["children"] + 2, "fds": base["fds"] + 16 + 10,
                  "rss_mib": base["rss_mib"] * 1.5 + 10, "anon_mib": base["anon_mib"] * 1.5 + 10,
                  "run_pods": base["run_pods"], "run_containers": base["run_containers"], "pod_cgroups": base["pod_cgroups"],
                  "zombies": 0}
        for k, limit in limits.items():
            if end[k] > limit:
                failures.append("%s grew: %s at the start, %s at the end (limit %s)" % (k, base[k], end[k], limit))
    finally:
        if daemon:
            daemon.stop()
        subprocess.run(["ip", "netns", "del", netns])
        if not os.environ.get("KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("soak: FAILED\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("soak: flat over %d rounds" % rounds)

main()
