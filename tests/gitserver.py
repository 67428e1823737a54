"""A real smart-HTTP git server on 127.0.0.1: `git http-backend` behind ThreadingHTTPServer.

It answers as GitHub does for pushes with a token: Basic auth with user `x-access-token`,
401 otherwise. Modes make it misbehave on purpose: `503`, `429`, `hang` (accept and never
answer), `reject_gh001` and `reject_gh013` (a pre-receive hook prints GitHub's messages).

Also a script, for a machine without pytest (the systemd container of tests/test_systemd_podman.py):
`python3 gitserver.py ROOT PORT TOKEN_FILE` serves every repository under ROOT until SIGTERM and
prints one line a request: `METHOD PATH auth=ok|wrong|none` (never the token itself).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

try:
    import pytest
except ModuleNotFoundError:  # run as a script where only the standard library is installed
    pytest = None  # type: ignore[assignment]

USER = "x-access-token"
MODES = ("normal", "503", "429", "hang", "reject_gh001", "reject_gh013")

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


class GitHTTPServer:
    """Serves one bare repository at http://127.0.0.1:<port>/repo.git."""

    def __init__(self, root: Path, token: str, port: int = 0, log: bool = False) -> None:
        self.root = root
        self.log = log
        self.repo = root / "repo.git"
        self.token = token
        self.requests: list[Request] = []
        self.hanging = 0
        self._mode = "normal"
        self._stopped = False
        self._cond = threading.Condition()
        root.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.repo))
        git("--git-dir", str(self.repo), "config", "http.receivepack", "true")
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="gitserver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/repo.git"

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
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _hang(self) -> None:
        with self._cond:
            self.hanging += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._stopped or self._mode != "hang")

    def _record(self, request: Request) -> None:
        with self._cond:
            self.requests.append(request)
            expected = basic(USER, self.token)
        if self.log:
            auth = "none" if request.authorization is None else "ok" if request.authorization == expected else "wrong"
            print(f"{request.method} {request.path} auth={auth}", flush=True)

    def _expected_auth(self) -> str:
        with self._cond:
            return basic(USER, self.token)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

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
        try:
            if mode == "hang":
                owner._hang()
                return
            body = self._body()
            if mode in ("503", "429"):
                self._reply(int(mode), {"Retry-After": "1"}, b"busy\n")
            elif auth != owner._expected_auth():
                self._reply(401, {"WWW-Authenticate": 'Basic realm="test"'}, b"Unauthorized\n")
            else:
                self._cgi(owner, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed, as the deadline tests intend

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
        if self.headers.get("Git-Protocol"):
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

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


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
