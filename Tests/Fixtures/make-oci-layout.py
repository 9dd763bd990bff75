#!/usr/bin/env python3
"""Writes a small OCI image layout for berth's image tests: make-oci-layout.py KIND DIR
KIND: good (two layers, the second gzipped with whiteouts), dotdot, symlink-escape, bad-digest."""
import gzip, hashlib, io, json, os, sys, tarfile


def tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            info = tarfile.TarInfo(e["path"])
            info.mode = e.get("mode", 0o644)
            data = e.get("data", b"")
            if e["type"] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif e["type"] == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e["link"]
            elif e["type"] == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e["link"]
            else:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def main(kind, out):
    os.makedirs(out + "/blobs/sha256", exist_ok=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        open(f"{out}/blobs/sha256/{d}", "wb").write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    busybox = open("/bin/busybox", "rb").read()
    base = [
        {"path": "bin", "type": "dir"},
        {"path": "bin/busybox", "type": "file", "data": busybox, "mode": 0o755},
        {"path": "bin/sh", "type": "symlink", "link": "busybox"},
        {"path": "bin/cat", "type": "symlink", "link": "busybox"},
        {"path": "bin/ls", "type": "symlink", "link": "busybox"},
        {"path": "etc", "type": "dir"},
        {"path": "etc/hostname", "type": "file", "data": b"base\n"},
        {"path": "etc/motd", "type": "file", "data": b"hello\n"},
        {"path": "etc/motd-link", "type": "hardlink", "link": "etc/motd"},
        {"path": "data", "type": "dir"},
        {"path": "data/old.txt", "type": "file", "data": b"old\n"},
    ]
    second = [
        {"path": "etc/.wh.hostname", "type": "file"},
        {"path": "data/.wh..wh..opq", "type": "file"},
        {"path": "data/new.txt", "type": "file", "data": b"new\n"},
    ]
    layers = [(tar(base), False), (gzip.compress(tar(second), mtime=0), True)]
    if kind == "dotdot":
        layers.append((tar([{"path": "../../escaped-by-dotdot", "type": "file", "data": b"x"}]), False))
    if kind == "symlink-escape":
        target = os.environ["ESCAPE_TARGET"]
        layers.append((tar([{"path": "link", "type": "symlink", "link": target},
                            {"path": "link/evil", "type": "file", "data": b"x"}]), False))
    descriptors = []
    for data, gz in layers:
        d = put(data)
        d["mediaType"] = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else "")
        descriptors.append(d)
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": descriptors}).encode()
    m = put(manifest)
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    m["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    if kind == "bad-digest":
        path = f"{out}/blobs/sha256/{descriptors[0]['digest'][7:]}"
        data = bytearray(open(path, "rb").read())
        data[-1] ^= 1
        open(path, "wb").write(bytes(data))
    json.dump({"schemaVersion": 2, "manifests": [m]}, open(out + "/index.json", "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))


main(sys.argv[1], sys.argv[2])
