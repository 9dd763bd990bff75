#!/usr/bin/env python3
"""Benchmark of `berth server` and `berth agent` (root). Everything lives in a scratch directory: one etcd
member on loopback ports, a bare repository, a "LAN" bridge in a network namespace of its own with the host
at 192.168.253.1, and per node a network namespace linked to it, where its agent runs (nsenter keeps the
host's /sys and cgroups). All of it is removed at the end.

1. join → Ready: an agent started with the join token, timed until the server's API shows its node Ready;
   repeated with wiped agent state (a new join each time).
2. node loss → replacement: a 6-replica Deployment over 3 nodes; the agent of the node with the most
   pods is killed (SIGKILL) and its link cut; timed until the API shows 6 ready pods, none on that node.
   The node is then restored (link up, agent started; it drops the replaced pods) before the next round.
   The agents keep the default 10 s lease.
3. idle: each agent's CPU time and RSS over a window, with 2 pods per node, from a minute after they started.
4. routes: a node removed (`berth node rm`), timed until the others have dropped the route to its pod
   CIDR; its agent then started afresh, timed until it and the others route to each other.

Usage: bench-cluster.py BERTH_BINARY [--joins 5] [--losses 10] [--idle-seconds 60] [--route-rounds 5]
                         [--pod-network routed|vxlan]
KEEP=1 keeps the scratch directory (logs, state) for a look afterwards.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemonlab import cpu_seconds, free_port, rss_mib, sh, wait_for, workspace

HOST = "192.168.253.1"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: spread
spec:
  replicas: 6
  selector:
    matchLabels:
      app: spread
  template:
    metadata:
      labels:
        app: spread
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: host
          command: ["/bin/busybox", "sleep", "100000"]
"""


class Lab:
    def __init__(self, binary, tmp, pod_network):
        self.binary, self.tmp, self.tag = binary, tmp, "bk%d" % (os.getpid() % 1000)
        self.pod_network = pod_network
        self.lan = self.tag + "-lan"
        self.procs = {}
        self.netns = []

    def start_etcd(self):
        client, peer = free_port(), free_port()
        self.etcd_url = "etcd://127.0.0.1:%d" % client
        log = open(self.tmp + "/etcd.log", "w")
        self.procs["etcd"] = subprocess.Popen(
            ["etcd", "--name", "bench", "--data-dir", self.tmp + "/etcd",
             "--listen-client-urls", "http://127.0.0.1:%d" % client, "--advertise-client-urls", "http://127.0.0.1:%d" % client,
             "--listen-peer-urls", "http://127.0.0.1:%d" % peer, "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
             "--initial-cluster", "bench=http://127.0.0.1:%d" % peer], stdout=log, stderr=log)
        self.wait("etcd", lambda: subprocess.run(["etcdctl", "--endpoints", "127.0.0.1:%d" % client, "endpoint", "health"],
                                                 capture_output=True).returncode == 0, 30)

    def make_lan(self):
        sh("ip", "netns", "add", self.lan)
        sh("ip", "-n", self.lan, "link", "add", "lan0", "type", "bridge")
        sh("ip", "-n", self.lan, "link", "set", "lan0", "up")
        sh("ip", "link", "add", self.tag + "h", "type", "veth", "peer", "name", "host", "netns", self.lan)
        sh("ip", "-n", self.lan, "link", "set", "host", "master", "lan0", "up")
        sh("ip", "addr", "add", HOST + "/24", "dev", self.tag + "h")
        sh("ip", "link", "set", self.tag + "h", "up")

    def make_node(self, i):
        ns = "%s-n%d" % (self.tag, i)
        sh("ip", "netns", "add", ns)
        self.netns.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.lan, "link", "add", "lan%d" % i, "type", "veth", "peer", "name", "eth1", "netns", ns)
        sh("ip", "-n", self.lan, "link", "set", "lan%d" % i, "master", "lan0", "up")
        sh("ip", "-n", ns, "addr", "add", "192.168.253.%d/24" % (10 + i), "dev", "eth1")
        sh("ip", "-n", ns, "link", "set", "eth1", "up")

    def link(self, i, up):
        sh("ip", "-n", self.lan, "link", "set", "lan%d" % i, "up" if up else "down")

    def start_server(self, repo):
        self.api = "http://127.0.0.1:%d" % free_port()
        self.node_api = "https://%s:%d" % (HOST, free_port())
        log = open(self.tmp + "/server.log", "a")
        self.procs["server"] = subprocess.Popen(
            [self.binary, "server", "--repo", repo, "--state-dir", self.tmp + "/server", "--interval", "1s",
             "--listen", self.api[7:], "--agent-listen", self.node_api[8:], "--store", self.etcd_url, "--pod-network", self.pod_network],
            stdout=log, stderr=log)
        self.token = self.tmp + "/server/server/node-token"
        self.wait("the server's join token", lambda: os.path.exists(self.token), 60)

    def start_agent(self, i):
        name, d = "n%d" % i, "%s/n%d" % (self.tmp, i)
        log = open(d + ".log", "a")
        self.procs[name] = subprocess.Popen(
            ["nsenter", "--net=/run/netns/%s-n%d" % (self.tag, i), "--", self.binary, "agent", "--server", self.node_api,
             "--token-file", self.token, "--state-dir", d + "/state", "--run-dir", d + "/run", "--node-name", name,
             "--node-ip", "192.168.253.%d" % (10 + i), "--network-namespace", "/run/netns/%s-n%d" % (self.tag, i),
             "--stop-workloads-on-exit"], stdout=log, stderr=log)

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name, None)
        if p is None:
            return
        p.send_signal(sig)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def routes_to(self, i, j):
        """Whether node i routes node j's pod CIDR: a route via j's address in i's namespace; with VXLAN, the
        forwarding entry to j's address (the agent writes it after the route and the neighbour entry)."""
        ns = "%s-n%d" % (self.tag, i)
        if self.pod_network == "vxlan":
            out = subprocess.run(["bridge", "-n", ns, "fdb", "show", "dev", "berth.vxlan"], capture_output=True, text=True).stdout
            return ("dst 192.168.253.%d " % (10 + j)) in out
        out = subprocess.run(["ip", "-n", ns, "route", "show"], capture_output=True, text=True).stdout
        return ("via 192.168.253.%d " % (10 + j)) in out

    def remove_node(self, name):
        token = open(self.tmp + "/server/api-token").read().strip()
        req = urllib.request.Request(self.api + "/api/v1/nodes/" + name, method="DELETE", headers={"Authorization": "Bearer " + token})
        urllib.request.urlopen(req, timeout=10).read()

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=5) as r:
            return json.loads(r.read())

    def ready_nodes(self):
        out = {}
        for n in self.get("/api/v1/nodes")["items"]:
            out[n["metadata"]["name"]] = any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        return out

    def pods(self, prefix):
        out = []
        for p in self.get("/api/v1/namespaces/default/pods")["items"]:
            if p["metadata"]["name"].startswith(prefix + "-"):
                ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
                out.append((p["metadata"]["name"], p["spec"].get("nodeName", ""), ready))
        return out

    def wait(self, what, cond, timeout=60):
        wait_for(what, cond, timeout, step=0.02)

    def cpu_rss(self, name):
        pid = self.procs[name].pid
        return cpu_seconds(pid), rss_mib(pid)

    def tear_down(self):
        # A node whose agent was killed still runs its pods: its agent comes back to adopt them, then
        # stops them (--stop-workloads-on-exit) with the rest.
        for i in (1, 2, 3):
            name = "n%d" % i
            pods = "%s/%s/state/node/pods" % (self.tmp, name)
            if name not in self.procs and os.path.isdir(pods) and os.listdir(pods):
                subprocess.run(["ip", "-n", self.lan, "link", "set", "lan%d" % i, "up"], capture_output=True)
                self.start_agent(i)
                time.sleep(5)
        for name in [n for n in self.procs if n.startswith("n")]:
            self.stop(name)
        for name in ["server", "etcd"]:
            self.stop(name)
        for ns in self.netns + [self.lan]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def summary(times):
    s = sorted(times)
    if not s:
        return "not run"
    p95 = s[min(len(s) - 1, int(round(len(s) * 0.95)) - 1)]
    return "p50 %.2f s, p95 %.2f s, min %.2f s, max %.2f s over %d" % (statistics.median(s), p95, s[0], s[-1], len(s))


def main():
    a = argparse.ArgumentParser()
    a.add_argument("binary")
    a.add_argument("--joins", type=int, default=5)
    a.add_argument("--losses", type=int, default=10)
    a.add_argument("--idle-seconds", type=int, default=60)
    a.add_argument("--route-rounds", type=int, default=5)
    a.add_argument("--pod-network", choices=["routed", "vxlan"], default="routed")
    args = a.parse_args()
    tmp = tempfile.mkdtemp(prefix="berth-bench-cluster-")
    lab = Lab(os.path.abspath(args.binary), tmp, args.pod_network)
    try:
        git, bare, work = workspace(tmp, "bench")
        with open(work + "/spread.yaml", "w") as f:
            f.write(DEPLOYMENT)
        git("add", "-A", cwd=work)
        git("commit", "-qm", "spread", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        lab.start_etcd()
        lab.make_lan()
        for i in (1, 2, 3):
            lab.make_node(i)
        lab.start_server(bare)

        # 1. join → Ready, each with a fresh join (state wiped).
        joins = []
        for round in range(args.joins):
            t0 = time.monotonic()
            lab.start_agent(1)
            lab.wait("n1 Ready", lambda: lab.ready_nodes().get("n1") is True, 60)
            joins.append(time.monotonic() - t0)
            if round < args.joins - 1:
                lab.stop("n1")
                shutil.rmtree(tmp + "/n1/state/agent")
        print("join → Ready (agent start to node Ready in the API): " + summary(joins))
        lab.start_agent(2)
        lab.start_agent(3)
        lab.wait("3 nodes Ready", lambda: lab.ready_nodes() == {"n1": True, "n2": True, "n3": True}, 60)
        settled = lambda: len(lab.pods("spread")) == 6 and all(r for _, _, r in lab.pods("spread"))
        lab.wait("6 pods ready", settled, 120)

        # 3 (measured before the losses disturb the nodes). Idle agents with 2 pods each.
        lab.wait("2 pods per node", lambda: sorted(n for _, n, _ in lab.pods("spread")) == ["n1", "n1", "n2", "n2", "n3", "n3"], 60)
        # The agents let go of the code pages they no longer use once a minute: the window opens after that.
        starting = {n: lab.cpu_rss(n)[1] for n in ("n1", "n2", "n3")}
        time.sleep(65)
        before = {n: lab.cpu_rss(n) for n in ("n1", "n2", "n3")}
        rss = {n: before[n][1] for n in before}
        end = time.monotonic() + args.idle_seconds
        while time.monotonic() < end:
            time.sleep(1)
            for n in rss:
                rss[n] = max(rss[n], lab.cpu_rss(n)[1])
        after = {n: lab.cpu_rss(n) for n in ("n1", "n2", "n3")}
        for n in ("n1", "n2", "n3"):
            print("idle agent %s, 2 pods, %d s: CPU %.2f%% of a core, RSS %.1f MiB (max; %.1f MiB as its pods started)" % (
                n, args.idle_seconds, 100 * (after[n][0] - before[n][0]) / args.idle_seconds, rss[n], starting[n]))

        # 4. Routes: n3 removed (`berth node rm`) until the others drop its route; then joined afresh
        # (new credential, pod CIDR given again) until every node routes to every other.
        gone, joined = [], []
        for round in range(args.route_rounds):
            t0 = time.monotonic()
            lab.remove_node("n3")
            lab.wait("n1 and n2 without a route to n3", lambda: not lab.routes_to(1, 3) and not lab.routes_to(2, 3), 30)
            gone.append(time.monotonic() - t0)
            lab.stop("n3")
            shutil.rmtree(tmp + "/n3/state/agent", ignore_errors=True)
            t0 = time.monotonic()
            lab.start_agent(3)
            lab.wait("routes between n3 and the others", lambda: all(lab.routes_to(i, j) for i, j in ((1, 3), (2, 3), (3, 1), (3, 2))), 30)
            joined.append(time.monotonic() - t0)
            lab.wait("n3 Ready", lambda: lab.ready_nodes().get("n3") is True, 60)
        print("routes (%s): node removed → its entries gone from the others: %s" % (args.pod_network, summary(gone)))
        print("routes (%s): agent start (a fresh join) → entries both ways with every node: %s" % (args.pod_network, summary(joined)))
        lab.wait("6 pods ready", settled, 120)

        # 2. Node loss → its pods Running elsewhere.
        losses = []
        for round in range(args.losses):
            placed = lab.pods("spread")
            counts = {n: sum(1 for _, node, _ in placed if node == n) for n in ("n1", "n2", "n3")}
            victim = max(counts, key=counts.get)
            i = int(victim[1:])
            t0 = time.monotonic()
            lab.stop(victim, signal.SIGKILL)
            lab.link(i, False)
            lab.wait("6 ready pods off %s" % victim, lambda: (lambda p: len(p) == 6 and all(r and n != victim for _, n, r in p))(lab.pods("spread")), 120)
            losses.append(time.monotonic() - t0)
            lab.link(i, True)
            lab.start_agent(i)
            lab.wait("%s Ready again" % victim, lambda: lab.ready_nodes().get(victim) is True, 60)
            lab.wait("%s's stale pods stopped" % victim, lambda: not os.listdir(tmp + "/%s/state/node/pods" % victim), 60)
        print("node loss → its pods ready on other nodes (10 s lease): " + summary(losses))
    finally:
        lab.tear_down()
        if os.environ.get("KEEP"):
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
