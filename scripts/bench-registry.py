#!/usr/bin/env python3
"""Cold pull and unpack of a ~120 MiB, 10-layer image from a loopback docker-registry: berth vs containerd's
`ctr image pull` vs `skopeo copy` + `tar -xzf` of the layers, same image, same run; then a warm pull of the
unchanged tag (an `Always` check). Prints medians and ratios. Run through scripts/bench-registry."""
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
BERTH = sys.argv[1]


def sh(*args, stderr_to_stdout=False, **kw):
    if stderr_to_stdout:
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    else:
        r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def make_image(layout, seed=1):
    """10 layers of ~12 MiB compressed each: per layer 200 files, half random (incompressible), half text."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(4000)]
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", layout + ":1")
    bundle = layout + ".bundle"
    sh("umoci", "unpack", "--rootless", "--image", layout + ":1", bundle)
    for layer in range(10):
        d = f"{bundle}/rootfs/data/layer{layer}"
        os.makedirs(d)
        for f in range(200):
            path = f"{d}/file{f}"
            if f % 2 == 0:
                data = rng.randbytes(50_000)
            else:
                data = b" ".join(rng.choice(words) for _ in range(24_000))
            with open(path, "wb") as out:
                out.write(data)
        sh("umoci", "repack", "--refresh-bundle", "--image", layout + ":1", bundle)
    shutil.rmtree(bundle)


def median(xs):
    return statistics.median(xs)


def main():
    work = tempfile.mkdtemp(prefix="berth-bench-registry-")
    procs = []
    try:
        layout = work + "/layout"
        make_image(layout)
        port = free_port()
        host = f"127.0.0.1:{port}"
        with open(work + "/registry.yml", "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {work}/data\n"
                    f"http:\n  addr: {host}\n  secret: bench\n")
        procs.append(subprocess.Popen(["docker-registry", "serve", work + "/registry.yml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port)
        sh("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{host}/bench/big:1")
        ref = f"{host}/bench/big:1"
        with open(work + "/registries.yaml", "w") as f:
            f.write(f'mirrors:\n  "{host}":\n    endpoint: ["http://{host}"]\n')
        manifest = json.loads(sh("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"))
        compressed = sum(l["size"] for l in manifest["layers"])
        print(f"image: {len(manifest['layers'])} layers, {compressed / 1048576:.1f} MiB compressed")

        def drop_caches():
            subprocess.run(["sync"])

        # berth: a fresh store each run.
        berth, breakdown = [], []
        for i in range(RUNS):
            state = f"{work}/berth-{i}"
            drop_caches()
            t = time.monotonic()
            out = sh("/usr/bin/time", "-f", "rss %M", BERTH, "image", "pull", "--timings", "--state-dir", state, "--registries", work + "/registries.yaml", ref,
                     stderr_to_stdout=True)
            berth.append(time.monotonic() - t)
            lines = out.strip().split("\n")
            breakdown.append(lines[-2] + f", peak RSS {int(lines[-1].split()[1]) / 1024:.0f} MiB")
            if i < RUNS - 1:
                shutil.rmtree(state)
        # The warm check of an unchanged tag, in process (the CLI's own start-up is not part of a pull).
        warm = []
        for _ in range(5):
            out = sh(BERTH, "image", "pull", "--timings", "--state-dir", f"{work}/berth-{RUNS - 1}", "--registries", work + "/registries.yaml", ref)
            first, second = out.strip().split("\n")[-2:]
            warm.append((float(first.split()[-1].rstrip("s")), second.split(",")[0]))
        unpacked = sh("du", "-sb", f"{work}/berth-{RUNS - 1}/images/unpacked").split()[0]

        # containerd 1.6 (Debian's), its own root, state and socket; a fresh root each run.
        ctr = []
        for i in range(RUNS):
            root = f"{work}/containerd-{i}"
            os.makedirs(root)
            with open(root + "/config.toml", "w") as f:
                f.write(f'version = 2\nroot = "{root}/root"\nstate = "{root}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                        f'[grpc]\n  address = "{root}/sock"\n')
            p = subprocess.Popen(["containerd", "--config", root + "/config.toml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            deadline = time.time() + 15
            while not os.path.exists(root + "/sock") and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            drop_caches()
            t = time.monotonic()
            sh("ctr", "--address", root + "/sock", "-n", "bench", "image", "pull", "--plain-http", ref)
            ctr.append(time.monotonic() - t)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            procs.remove(p)
            subprocess.run(["umount", "-R", root + "/root"], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)

        # skopeo copy to an OCI layout, then tar -xzf of each layer in order.
        sk = []
        for i in range(RUNS):
            dest = f"{work}/skopeo-{i}"
            os.makedirs(dest)
            drop_caches()
            t = time.monotonic()
            sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest}/oci:1")
            index = json.load(open(f"{dest}/oci/index.json"))
            m = json.load(open(f"{dest}/oci/blobs/sha256/" + index["manifests"][0]["digest"][7:]))
            os.makedirs(f"{dest}/rootfs")
            for layer in m["layers"]:
                sh("tar", "-xzf", f"{dest}/oci/blobs/sha256/" + layer["digest"][7:], "-C", f"{dest}/rootfs")
            sk.append(time.monotonic() - t)
            shutil.rmtree(dest)

        print(f"machine: {os.cpu_count()} cores, {os.uname().release}")
        print(f"unpacked: {int(unpacked) / 1048576:.0f} MiB; runs: {RUNS} each, medians")
        print(f"{'':28}{'seconds':>10}{'vs containerd':>16}")
        c = median(ctr)
        for name, xs in [("berth image pull", berth), ("ctr image pull (containerd)", ctr), ("skopeo copy + tar -xzf", sk)]:
            print(f"{name:28}{median(xs):10.2f}{c / median(xs):15.2f}x")
        print("berth's split (last cold run): " + breakdown[-1])
        times = sorted(w[0] for w in warm)
        print(f"warm pull of the unchanged tag: median {median(times) * 1000:.1f} ms, {warm[-1][1]}")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        subprocess.run(["sh", "-c", f"grep -o ' {work}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
