"""A `berth run` daemon driven from Python for the benchmark and the soak (root): started on a repository with its
own state and run directories and a network namespace, read through its HTTP API."""
import json, os, signal, socket, subprocess, time, urllib.request

def sh(*argv, cwd=None, check=True):
    return subprocess.run(argv, cwd=cwd, check=check, capture_output=True, text=True).stdout.strip()

def add_netns(name):
    """A network namespace for the daemon's pods, loopback up (the caller deletes it)."""
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")

def workspace(tmp, user):
    """A bare repository (the daemon's remote) and a clone of it; returns (git, bare, work)."""
    git = lambda *argv, cwd: sh("git", "-c", "user.name=" + user, "-c", "user.email=%s@berth.invalid" % user, *argv, cwd=cwd)
    bare, work = tmp + "/repo.git", tmp + "/work"
    git("init", "-q", "--bare", "-b", "main", bare, cwd=tmp)
    git("clone", "-q", bare, work, cwd=tmp)
    return git, bare, work

def wait_for(what, cond, timeout=60, step=0.01):
    """Polls cond until it holds (an OSError, such as an API not up yet, counts as not yet)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(step)
    raise SystemExit("timed out waiting for " + what)

def cpu_seconds(pid):
    """The process's CPU time so far (utime + stime)."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def rss_mib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, binary, repo, work_dir, netns, interval):
        self.api = "http://127.0.0.1:%d" % free_port()
        self.log = open(os.path.join(work_dir, "daemon.log"), "a")
        self.proc = subprocess.Popen([binary, "run", "--repo", repo, "--state-dir", work_dir + "/state",
                                      "--run-dir", work_dir + "/run", "--interval", interval,
                                      "--listen", self.api[7:], "--node-name", "bench",
                                      "--network-namespace", "/run/netns/" + netns, "--stop-workloads-on-exit"],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.get("/healthz", raw=True)
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("berth run did not start; see " + self.log.name)

    def get(self, path, raw=False):
        with urllib.request.urlopen(self.api + path, timeout=5) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def rolled_out(self, name, replicas, value=None):
        pods = [p for p in self.get("/api/v1/namespaces/default/pods")["items"]
                if p["metadata"]["name"].startswith(name + "-")]
        if len(pods) != replicas:
            return False
        for p in pods:
            if not any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])):
                return False
            if value is not None:
                env = p["spec"]["containers"][0].get("env", [])
                if not any(e.get("value") == value for e in env):
                    return False
        return True

    def all_rolled_out(self):
        items = self.get("/api/v1/deployments")["items"]
        return len(items) > 0 and all(
            any(c["type"] == "Progressing" and c["reason"] == "NewReplicaSetAvailable" for c in d["status"].get("conditions", []))
            and d["status"].get("readyReplicas") == d["status"].get("replicas") for d in items)

    def wait(self, what, cond, timeout=60):
        wait_for(what, cond, timeout)

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def rss_mib(self):
        return rss_mib(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)

