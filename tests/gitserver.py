"""A real smart-HTTP git server on 127.0.0.1: `git http-backend` behind ThreadingHTTPServer.

It answers as GitHub does for pushes with a token: Basic auth with user `x-access-token`,
401 otherwise. Modes make it misbehave on purpose: `503`, `429`, `hang` (accept and never
answer), `reject_gh001` and `reject_gh013` (a pre-receive hook prints GitHub's messages),
`redirect` (every git request is sent to another host with a 302), `endless_pack` (a fetch gets a pack
that never ends: valid objects, one after another, every `drip` seconds). `LFSStorage.endless` makes every
download an endless body.

Also a script, for a machine without pytest (the systemd container of tests/deploy/test_systemd_podman.py):
`python3 gitserver.py ROOT PORT TOKEN_FILE` serves every repository under ROOT until SIGTERM and
prints one line a request: `METHOD PATH auth=ok|wrong|none` (never the token itself).

Git LFS is served as GitHub serves it: the batch API (`POST /repo.git/info/lfs/objects/batch`,
authenticated like git) answers with upload and download actions on a separate storage host
(`LFSStorage`, another port, addressed as `localhost`), each carrying its own one-time
`Authorization` header. The storage host accepts a request only with exactly that header, once,
and records every `Authorization` it is sent.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:
    import pytest
except ModuleNotFoundError:  # run as a script where only the standard library is installed
    pytest = None  # type: ignore[assignment]

USER = "x-access-token"
MODES = ("normal", "503", "429", "hang", "reject_gh001", "reject_gh013", "redirect", "endless_pack")
_BATCH = re.compile(r"^/[^?]+\.git/info/lfs/objects/batch$")
_OBJECT = re.compile(r"^/objects/([0-9a-f]{64})$")

_HOOKS = {
    "reject_gh001": """\
echo "error: Trace: 3c1e1d0a8f2e4b6d9a7c5e3f1b2d4c6e" >&2
echo "error: See https://gh.io/lfs for more information." >&2
echo "error: File big.bin is 120.00 MB; this exceeds GitHub's file size limit of 100.00 MB" >&2
echo "error: GH001: Large files detected. You may want to try Git Large File Storage - \
https://git-lfs.github.com." >&2
""",
    "reject_gh013": """\
echo "error: GH013: Repository rule violations found for refs/heads/main." >&2
echo "" >&2
echo "- GITHUB PUSH PROTECTION" >&2
echo "  Resolve the following violations before pushing again" >&2
echo "" >&2
echo "  - Push cannot contain secrets" >&2
""",
}


def basic(user: str, password: str) -> str:
    """The Authorization header value git sends for user:password."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def git(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: bytes | None = None
) -> str:
    """Plain git for test set-up, with a pinned identity and no user config."""
    full = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        **(env or {}),
    }
    proc = subprocess.run(["git", *args], cwd=cwd, env=full, input=input, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode().strip()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until condition() is true, or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        # A short bounded wait between checks of state that has no notification of its own.
        event.wait(0.01)


@dataclass(frozen=True)
class Request:
    """One request the server saw."""

    method: str
    path: str
    authorization: str | None
    mode: str


class LFSStorage:
    """The LFS storage host: objects by oid, reached only with the one-time header the batch API gave out."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.endless = False  # downloads never end (no Content-Length, random bytes until the client leaves)
        self.sent = 0  # bytes of endless bodies sent
        self.authorizations: list[str | None] = []
        self.requests: list[tuple[str, str]] = []
        self._grants: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StorageHandler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="lfs-storage", daemon=True
        )

    @property
    def url(self) -> str:
        """Another origin than the git server's: same machine, another host name and port."""
        return f"http://localhost:{self._httpd.server_address[1]}"

    def grant(self, method: str, oid: str) -> dict[str, Any]:
        """An action for the batch answer: the href and a header valid for one request."""
        value = "RemoteAuth " + secrets.token_urlsafe(24)
        with self._lock:
            self._grants[(method, oid)] = value
        return {"href": f"{self.url}/objects/{oid}", "header": {"Authorization": value}, "expires_in": 3600}

    def has(self, oid: str) -> bool:
        with self._lock:
            return oid in self.objects

    def _take(self, method: str, oid: str, headers: list[str]) -> bool:
        with self._lock:
            expected = self._grants.get((method, oid))
            if expected is None or headers != [expected]:
                return False
            del self._grants[(method, oid)]
            return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class Replying(BaseHTTPRequestHandler):
    """A quiet handler that answers one request a connection."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


class _StorageHandler(Replying):
    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner: LFSStorage = self.server.owner  # type: ignore[attr-defined]
        self.close_connection = True
        headers = self.headers.get_all("Authorization") or []
        with owner._lock:
            owner.authorizations.extend(headers or [None])
            owner.requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = _OBJECT.match(self.path.split("?")[0])
        if match is None:
            # Anything else asks for credentials, as a host fishing for them would.
            self._reply(401, {"WWW-Authenticate": 'Basic realm="storage"'}, b"Unauthorized\n")
            return
        oid = match.group(1)
        if not owner._take(self.command, oid, headers):
            self._reply(403, {}, b"signature does not match\n")
        elif self.command == "PUT":
            if hashlib.sha256(body).hexdigest() != oid:
                self._reply(400, {}, b"content does not match its oid\n")
                return
            with owner._lock:
                owner.objects[oid] = body
            self._reply(200, {}, b"")
        elif self.command == "GET" and owner.has(oid) and owner.endless:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = os.urandom(1 << 16)
            with contextlib.suppress(OSError):
                while owner.endless:
                    self.wfile.write(chunk)
                    with owner._lock:
                        owner.sent += len(chunk)
        elif self.command == "GET" and owner.has(oid):
            with owner._lock:
                data = owner.objects[oid]
            self._reply(200, {"Content-Type": "application/octet-stream"}, data)
        else:
            self._reply(404, {}, b"no such object\n")


class GitHTTPServer:
    """Serves one bare repository at http://127.0.0.1:<port>/repo.git, and its LFS objects."""

    def __init__(
        self, root: Path, token: str, accept: Callable[[str], bool] | None = None, name: str = "repo.git",
        port: int = 0, log: bool = False,
    ) -> None:
        self.root = root
        self.log = log
        self.name = name
        self.repo = root / name
        self.token = token
        self.accept = accept  # when given, decides which passwords are live (GitHub App tokens)
        self.storage = LFSStorage()
        self.requests: list[Request] = []
        self.hanging = 0
        self.drip = 0.0  # endless_pack: seconds between objects
        self.sent = 0  # bytes of endless packs sent
        self.latency = 0.0  # seconds each request waits before its answer: a host across a network
        self._mode = "normal"
        self._stopped = False
        self._cond = threading.Condition()
        self.repo.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.repo))
        git("--git-dir", str(self.repo), "config", "http.receivepack", "true")
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="gitserver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{self.name}"

    @property
    def mode(self) -> str:
        with self._cond:
            return self._mode

    def set_mode(self, mode: str) -> None:
        """Switch behaviour; releases requests held by `hang`."""
        assert mode in MODES, mode
        hook = self.repo / "hooks" / "pre-receive"
        if mode in _HOOKS:
            hook.write_text("#!/bin/sh\n" + _HOOKS[mode] + "exit 1\n")
            hook.chmod(0o755)
        elif hook.exists():
            hook.unlink()
        with self._cond:
            self._mode = mode
            self._cond.notify_all()

    def set_token(self, token: str) -> None:
        """Accept only this token from now on."""
        with self._cond:
            self.token = token

    def head(self, branch: str = "main") -> str | None:
        """The served repository's branch, or None."""
        try:
            return git("--git-dir", str(self.repo), "rev-parse", "-q", "--verify", f"refs/heads/{branch}")
        except AssertionError:
            return None

    def start(self) -> None:
        self.storage.start()
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self.storage.stop()

    def _hang(self) -> None:
        with self._cond:
            self.hanging += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._stopped or self._mode != "hang")

    def _record(self, request: Request) -> None:
        with self._cond:
            self.requests.append(request)
        if self.log:
            given = request.authorization
            auth = "none" if given is None else "ok" if self.authorized(given) else "wrong"
            print(f"{request.method} {request.path} auth={auth}", flush=True)

    def authorized(self, header: str | None) -> bool:
        """Basic x-access-token:<token>, with the one token or a live one."""
        with self._cond:
            token, accept = self.token, self.accept
        if accept is None:
            return header == basic(USER, token)
        scheme, _, value = (header or "").partition(" ")
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return scheme == "Basic" and user == USER and accept(password)

    def lfs_batch(self, body: bytes) -> dict[str, Any]:
        """The batch API's answer: actions on the storage host, or a per-object error."""
        request = json.loads(body)
        objects = []
        for item in request.get("objects", []):
            oid, size = item["oid"], item["size"]
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if request.get("operation") == "upload":
                if not self.storage.has(oid):
                    entry["actions"] = {"upload": self.storage.grant("PUT", oid)}
            elif self.storage.has(oid):
                entry["actions"] = {"download": self.storage.grant("GET", oid)}
            else:
                entry["error"] = {"code": 404, "message": "Object does not exist"}
            objects.append(entry)
        return {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}


class _Handler(Replying):
    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner: GitHTTPServer = self.server.owner  # type: ignore[attr-defined]
        self.close_connection = True
        mode = owner.mode
        auth = self.headers.get("Authorization")
        owner._record(Request(self.command, self.path, auth, mode))
        if owner.latency:
            time.sleep(owner.latency)
        try:
            if mode == "hang":
                owner._hang()
                return
            body = self._body()
            if mode in ("503", "429"):
                self._reply(int(mode), {"Retry-After": "1"}, b"busy\n")
            elif mode == "redirect":
                self._reply(302, {"Location": owner.storage.url + self.path}, b"")
            elif not owner.authorized(auth):
                self._reply(401, {"WWW-Authenticate": 'Basic realm="test"'}, b"Unauthorized\n")
            elif mode == "endless_pack" and self.command == "POST" and self.path.endswith("/git-upload-pack"):
                self._endless_pack(owner)
            elif _BATCH.match(urlsplit(self.path).path):
                answer = json.dumps(owner.lfs_batch(body)).encode()
                self._reply(200, {"Content-Type": "application/vnd.git-lfs+json"}, answer)
            else:
                self._cgi(owner, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed, as the deadline tests intend

    def _endless_pack(self, owner: GitHTTPServer) -> None:
        """Protocol v0's answer to a fetch with no common commits: NAK, then on side band 1 a pack that
        announces a million objects and sends valid 64 KiB blobs (stored, not compressed) until the client goes."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-git-upload-pack-result")
        self.send_header("Connection", "close")
        self.end_headers()

        def pkt(payload: bytes) -> bytes:
            return f"{len(payload) + 4:04x}".encode() + payload

        self.wfile.write(pkt(b"NAK\n"))
        self.wfile.write(pkt(b"\x01PACK" + struct.pack(">II", 2, 1_000_000)))
        while owner.mode == "endless_pack" and not owner._stopped:
            data = os.urandom(1 << 16)
            size, header = len(data), bytearray()
            byte = (3 << 4) | (size & 0x0F)  # type 3: blob
            size >>= 4
            while size:
                header.append(byte | 0x80)
                byte, size = size & 0x7F, size >> 7
            header.append(byte)
            body = bytes(header) + zlib.compress(data, 0)
            for start in range(0, len(body), 65000):
                self.wfile.write(pkt(b"\x01" + body[start:start + 65000]))
            with owner._cond:
                owner.sent += len(body)
            if owner.drip:
                time.sleep(owner.drip)  # a slow sender: bytes keep flowing, just not many

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _cgi(self, owner: GitHTTPServer, body: bytes) -> None:
        url = urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            # Running as root, the served repository may belong to another user: no "dubious ownership".
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": USER,
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol") and owner.mode != "endless_pack":  # endless_pack speaks v0
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not payload and b"\n\n" in head:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name.strip()] = value.strip()
        self._reply(status, headers, payload)


def main(argv: list[str]) -> int:
    """Serve ROOT's repositories on 127.0.0.1:PORT, accepting the token in TOKEN_FILE, until SIGTERM."""
    root, port, token_file = Path(argv[1]), int(argv[2]), Path(argv[3])
    server = GitHTTPServer(root, token=token_file.read_text().strip(), port=port, log=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"serving {root} on {server.url.rsplit('/', 1)[0]}", flush=True)
    stop.wait()
    server.stop()
    return 0


if pytest is not None:

    @pytest.fixture
    def git_server(tmp_path: Path) -> Iterator[GitHTTPServer]:
        """A started smart-HTTP server with its own empty repository; stopped after the test."""
        server = GitHTTPServer(tmp_path / "served", token="ghp_TestToken0123456789abcdefABCDEF0000")
        server.start()
        try:
            yield server
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
