"""The two receivers of events: an HTTP endpoint (one signed POST per event) and an exec hook (one run per
event, the JSON on its stdin). Each delivers one event per call and says how it went: returns when the event
arrived, raises Failed otherwise (retried, or dropped when the receiver refused it for good).
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from committer import __version__
from committer.core import secret
from committer.core.secret import SecretUnreadable
from committer.core.settings import Settings
from committer.core.values import shown_url
from committer.git.runner import clean_env, kill_group, run_capped
from committer.ops.outbox import Entry

STDERR_SHOWN = 1000  # characters of a failed hook's stderr that are logged (its end)


class Failed(Exception):
    """An event that did not arrive: retried with backoff, unless `drop` (the receiver refused it for good)."""

    def __init__(self, message: str, *, drop: bool = False, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.drop = drop
        self.details = details


class HttpReceiver:
    """POSTs each event to `notify_url`: the JSON body, X-Committer-Event, X-Committer-Delivery and (with a
    secret) X-Committer-Signature-256. Any 2xx is success; 4xx other than 429 is dropped; the rest is retried.
    Redirects are never followed (a signed body goes nowhere but the configured address); the answer's
    body is never read; the whole attempt, connection to answer, is bounded by `notify_timeout`."""

    name = "http"

    def __init__(self, settings: Settings) -> None:
        self.url = settings.notify_url
        self.shown = shown_url(self.url)
        self.timeout = settings.notify_timeout
        self._secret_file = settings.notify_secret_file
        from committer.core.web import Client, Limits  # the HTTP client only where a URL is set: faster starts

        self._client = Client(timeout=self.timeout, follow_redirects=False,
                                    limits=Limits(max_keepalive_connections=0),
                                    headers={"User-Agent": f"committer/{__version__}"})
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._cut = False

    def send(self, entry: Entry, body: bytes) -> None:
        from committer.core.web import HTTPError, TimeoutException

        headers = {"Content-Type": "application/json", "X-Committer-Event": entry.name,
                   "X-Committer-Delivery": entry.id}
        try:
            key = secret.read(secret.NOTIFY, self._secret_file)
        except SecretUnreadable as exc:  # never sent unsigned when a secret is configured
            raise Failed(f"the notify secret cannot be read ({exc.path})") from None
        if key is not None:
            headers["X-Committer-Signature-256"] = secret.signature(key[1], body)
        with self._lock:
            self._cut = False
        timer = threading.Timer(self.timeout, self.cancel)  # one bound on the whole attempt
        timer.daemon = True
        timer.start()
        try:
            with self._client.stream("POST", self.url, content=body, headers=headers,
                                     extensions={"trace": self._trace}) as response:
                status = response.status_code
        except HTTPError as exc:
            with self._lock:  # the deadline's timer or the client's own timeout (the same bound) came first
                cut = self._cut or isinstance(exc, TimeoutException)
            why = f"no answer within {self.timeout:g}s" if cut else f"{type(exc).__name__}: {exc}"
            raise Failed(why.replace(self.url, self.shown)) from None
        finally:
            timer.cancel()
            with self._lock:
                self._socket = None
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            raise Failed(f"HTTP {status}: redirects are not followed; set notify_url to the final address",
                         status=status)
        raise Failed(f"HTTP {status}", drop=400 <= status < 500 and status != 429, status=status)

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        """Keep the connection's socket, so the deadline (or a stop) can cut a receiver that trickles."""
        if name == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            with self._lock:
                self._socket = sock if isinstance(sock, socket.socket) else None
                cut = self._cut
            if cut:
                self.cancel()

    def cancel(self) -> None:
        """Cut the attempt under way (from another thread): its socket is shut down."""
        with self._lock:
            self._cut = True
            sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._client.close()


class HookReceiver:
    """Runs `exec_hook` once per event: no shell, the JSON on stdin, COMMITTER_EVENT and COMMITTER_EVENT_ID in
    its environment (committer's own secrets are not), in the data directory's parent, its process group
    killed at `exec_hook_timeout`. Exit code 0 is success; anything else is retried."""

    name = "exec"

    def __init__(self, settings: Settings) -> None:
        self.argv = shlex.split(settings.exec_hook)
        self.shown = self.argv[0]
        self.timeout = settings.exec_hook_timeout
        self.cwd = hook_dir(settings.data_dir)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def send(self, entry: Entry, body: bytes) -> None:
        env = {k: v for k, v in clean_env().items() if k != "CREDENTIALS_DIRECTORY"}
        env.update(COMMITTER_EVENT=entry.name, COMMITTER_EVENT_ID=entry.id)
        try:
            done = run_capped(self.argv, cwd=self.cwd, env=env, input=body, timeout=self.timeout,
                              started=self._started)
        except OSError as exc:
            raise Failed(f"cannot start {self.shown}: {exc.strerror or exc}") from None
        finally:
            with self._lock:
                self._proc = None
        if done.returncode == 0:
            return
        stderr = done.stderr.decode("utf-8", "replace").strip()[-STDERR_SHOWN:]
        if done.returncode is None:
            raise Failed(f"{self.shown} did not finish within {self.timeout:g}s; its process group was killed",
                         stderr=stderr)
        raise Failed(f"{self.shown} exited with code {done.returncode}", exit_code=done.returncode, stderr=stderr)

    def _started(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._proc = proc

    def cancel(self) -> None:
        """Kill the hook under way and its group (from another thread)."""
        with self._lock:
            proc = self._proc
        if proc is not None:
            kill_group(proc)

    def close(self) -> None:
        pass


def hook_dir(data_dir: Path) -> Path:
    """Where the hook runs: the data directory's parent, never the data directory itself."""
    return data_dir.absolute().parent


Receiver = HttpReceiver | HookReceiver
