#!/usr/bin/env python3
"""Servers the registry tests start on loopback ports beside Debian's docker-registry.

  registrylab.py token PORT KEY CERT ISSUER SERVICE USER PASSWORD [EXPIRES]
      A token server for the registry's `auth.token` mode: Basic credentials in, an RS256 JWT out (signed
      with `openssl dgst`, the certificate in its x5c header), granting the actions asked for to USER only.
      Anonymous requests get a token granting nothing, as Docker Hub's do for a private repository.

  registrylab.py hostile PORT
      A registry that misbehaves, one way per repository: wrong-digest, huge-manifest, gzip-bomb, dotdot,
      redirect-loop, stall, and good (a well-formed one-layer image, to show the rest of the server works);
      slow sends its 1 MiB layer at about 160 KiB/s (a pull of over 6 s, for progress reports);
      redirect-away asks for Basic credentials, then sends blobs to localhost (another host name), where it
      counts the requests that still carry them: GET /seen answers {"credentials_elsewhere": N}.
"""
import base64
import gzip
import hashlib
import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_server(port, key, cert, issuer, service, user, password, expires=300):
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True).stdout
    x5c = base64.b64encode(der).decode()
    counts = {"tokens": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if url.path == "/count":
                return self.reply(200, json.dumps(counts).encode())
            if url.path != "/token":
                return self.reply(404, b"{}")
            query = urllib.parse.parse_qs(url.query)
            granted = []
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                given = base64.b64decode(auth[6:]).decode(errors="replace")
                if given != f"{user}:{password}":
                    return self.reply(401, b'{"details":"bad credentials"}')
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":", 2)
                    granted.append({"type": kind, "name": name, "actions": actions.split(",")})
            now = int(time.time())
            header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
            claims = {"iss": issuer, "sub": user if granted else "", "aud": service, "exp": now + int(expires),
                      "nbf": now - 10, "iat": now, "jti": str(time.time_ns()), "access": granted}
            signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
            signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                                       check=True, capture_output=True).stdout
            token = signing_input + "." + b64url(signature)
            counts["tokens"] += 1
            self.reply(200, json.dumps({"token": token, "access_token": token, "expires_in": int(expires)}).encode())

        def reply(self, code, body):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    serve(port, Handler)


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(entries):
    """entries: (name, bytes) pairs, written as they are (names are not cleaned)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image(layer, gzipped=True):
    """A manifest, its config and its layer; returns (manifest bytes, {digest: blob})."""
    blob = gzip.compress(layer, 1) if gzipped else layer
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(blob), "size": len(blob)}],
    }).encode()
    return manifest, {sha(config): config, sha(blob): blob}


def random_bytes(n):
    return __import__("os").urandom(n)


def gzip_bomb(size):
    """A gzip stream of `size` zero bytes inside a tar entry, made without holding them in memory."""
    c = __import__("zlib").compressobj(9, 8, 31)
    header = tarfile.TarInfo("zeros")
    header.size = size
    parts = [c.compress(header.tobuf(format=tarfile.PAX_FORMAT))]
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        parts.append(c.compress(chunk))
    parts.append(c.flush())
    return b"".join(parts)


def hostile_server(port):
    repos = {}
    good_manifest, good_blobs = image(tar_of([("hello.txt", b"hello\n")]))
    repos["good"] = (good_manifest, good_blobs)
    wrong_manifest, wrong_blobs = image(tar_of([("a.txt", b"the real bytes\n")]))
    # Same size, other bytes: the digest cannot match.
    wrong_blobs = {d: (b if d == json.loads(wrong_manifest)["config"]["digest"] else bytes(len(b))) for d, b in wrong_blobs.items()}
    repos["wrong-digest"] = (wrong_manifest, wrong_blobs)
    repos["dotdot"] = image(tar_of([("ok.txt", b"fine\n"), ("../../escaped.txt", b"outside\n")]))
    bomb = gzip_bomb(64 << 20)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
    repos["gzip-bomb"] = (json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(bomb), "size": len(bomb)}],
    }).encode(), {sha(config): config, sha(bomb): bomb})
    stall_manifest, stall_blobs = image(bytes(1))
    big = bytes(1 << 20)
    stall_manifest = json.loads(stall_manifest)
    stall_manifest["layers"][0].update(digest=sha(big), size=len(big))
    stall_manifest = json.dumps(stall_manifest).encode()
    repos["stall"] = (stall_manifest, {**stall_blobs, sha(big): big})
    slow_layer = tar_of([("slow.bin", random_bytes(1 << 20))])
    repos["slow"] = image(slow_layer)

    seen = {"credentials_elsewhere": 0, "elsewhere": 0}
    repos["redirect-away"] = repos["good"]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_HEAD(self):
            self.do_GET(head=True)

        def do_GET(self, head=False):
            path = urllib.parse.urlparse(self.path).path
            if path == "/seen":
                return self.reply(200, json.dumps(seen).encode(), head=head)
            if path == "/v2/":
                return self.reply(200, b"{}", head=head)
            if path.startswith("/v2/redirect-away/"):
                if self.headers.get("Host", "").startswith("localhost"):
                    seen["elsewhere"] += 1
                    if self.headers.get("Authorization"):
                        seen["credentials_elsewhere"] += 1
                elif not self.headers.get("Authorization"):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="lab"')
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                elif "/blobs/" in path:
                    self.send_response(307)
                    self.send_header("Location", f"http://localhost:{port}{path}")
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
            parts = path.split("/")
            if len(parts) < 5 or parts[1] != "v2":
                return self.reply(404, b"{}", head=head)
            repo, kind, ref = "/".join(parts[2:-2]), parts[-2], parts[-1]
            if repo == "redirect-loop":
                self.send_response(307)
                self.send_header("Location", path + "x")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            if repo == "huge-manifest" and kind == "manifests":
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b" " * 65536
                try:
                    for _ in range(16 << 4):  # 16 MiB of spaces
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                return
            if repo not in repos:
                return self.reply(404, json.dumps({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}).encode(), head=head)
            manifest, blobs = repos[repo]
            if kind == "manifests":
                return self.reply(200, manifest, "application/vnd.oci.image.manifest.v1+json", head=head)
            blob = blobs.get(ref)
            if blob is None:
                return self.reply(404, json.dumps({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]}).encode(), head=head)
            if repo == "slow" and kind == "blobs" and len(blob) > 1 << 19 and not head:
                self.send_response(200)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                try:
                    for i in range(0, len(blob), 1 << 16):
                        self.wfile.write(blob[i:i + (1 << 16)])
                        self.wfile.flush()
                        time.sleep(0.4)
                except OSError:
                    pass
                return
            if repo == "stall" and len(blob) == 1 << 20:
                self.send_response(200)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                try:
                    self.wfile.write(blob[: len(blob) // 2])
                    self.wfile.flush()
                    time.sleep(60)
                except OSError:
                    pass
                return
            self.reply(200, blob, "application/octet-stream", head=head)

        def reply(self, code, body, ctype="application/json", head=False):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

    serve(port, Handler)


def serve(port, handler):
    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", int(port)), handler)
    # Stops by itself after an hour, whatever happens to the test that started it.
    threading.Timer(3600, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "token":
        token_server(*sys.argv[2:])
    elif sys.argv[1] == "hostile":
        hostile_server(sys.argv[2])
    else:
        sys.exit(__doc__)
