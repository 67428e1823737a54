"""/healthz, /readyz, /metrics and POST /webhook from a background thread; no client can take the daemon down."""

from __future__ import annotations

import json
import os
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from committer import __version__
from committer.core import logs
from committer.core.errors import CommitterError
from committer.serve.metrics import Metrics

log = logs.get(__name__)

JSON = "application/json"
ALLOWED = "GET, HEAD"
MAX_WEBHOOK_BODY = 25 * 1024 * 1024  # GitHub caps a delivery at 25 MB
WEBHOOK_SLOTS = 2  # deliveries read at once; more are answered 503 (GitHub redelivers on request)
BODY_SECONDS = 30.0  # the longest a delivery's body may take to arrive


def _json(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, default=str, sort_keys=True) + "\n").encode()


Response = tuple[int, bytes, str]
Webhook = Callable[[Mapping[str, str], bytes], tuple[int, Mapping[str, Any]]]


def _health(app: HttpServer) -> Response:
    report = dict(app.health())
    return (200 if report.get("healthy") is True else 503), _json(report), JSON


def _ready(app: HttpServer) -> Response:
    ready = bool(app.ready())
    return (200 if ready else 503), _json({"ready": ready}), JSON


def _metrics(app: HttpServer) -> Response:
    return 200, app.metrics.render(), app.metrics.content_type


WEBHOOK = "/webhook"
ROUTES: dict[str, Callable[[HttpServer], Response]] = {
    "/healthz": _health,
    "/readyz": _ready,
    "/metrics": _metrics,
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = f"committer/{__version__}"
    timeout = 10.0  # a client that opens a connection and says nothing must not hold a thread forever

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _not_allowed(self) -> None:
        path = urlsplit(self.path).path
        if path in ROUTES:
            self._send(405, _json({"error": "method not allowed"}), JSON, allow=ALLOWED)
        elif path == WEBHOOK and self.server.app.webhook is not None:
            self._send(405, _json({"error": "method not allowed"}), JSON, allow="POST")
        else:
            self._send(404, _json({"error": "not found"}), JSON)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def do_POST(self) -> None:
        webhook = self.server.app.webhook
        if urlsplit(self.path).path != WEBHOOK or webhook is None:
            self._not_allowed()
            return
        self.close_connection = True  # one delivery per connection: nothing lingers on a thread
        # Unsigned requests are refused before a byte of their body is read: nobody can fill memory.
        if not self.headers.get("X-Hub-Signature-256") or not self.headers.get("X-GitHub-Event"):
            self._send(401, _json({"error": "missing X-Hub-Signature-256 or X-GitHub-Event"}), JSON)
            return
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()):
            self._send(411, _json({"error": "Content-Length required"}), JSON)
            return
        if int(length) > MAX_WEBHOOK_BODY:
            self._send(413, _json({"error": "payload too large"}), JSON)
            return
        if not self.server.webhook_slots.acquire(blocking=False):
            self._send(503, _json({"error": "busy; GitHub redelivers"}), JSON)
            return
        try:
            body = self._read_body(int(length))
        finally:
            self.server.webhook_slots.release()
        if body is None:
            self._send(408, _json({"error": "the body did not arrive in time"}), JSON)
            return
        try:
            status, answer = webhook(dict(self.headers.items()), body)
        except Exception:  # a failing handler is a 500 for this delivery, never a dead server
            log.error("http_handler_failed", path=WEBHOOK, exc_info=True)
            status, answer = 500, {"error": "internal error"}
        self._send(status, _json(answer), JSON)

    def _read_body(self, length: int) -> bytes | None:
        """The request body, or None when it is not all there within BODY_SECONDS (a slow client)."""
        deadline = time.monotonic() + BODY_SECONDS
        chunks, left = [], length
        while left > 0:
            if time.monotonic() > deadline:
                return None
            chunk = self.rfile.read1(min(left, 1 << 16))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _serve(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        route = ROUTES.get(path)
        if path == WEBHOOK and self.server.app.webhook is not None:
            self._send(405, _json({"error": "method not allowed"}), JSON, send_body=send_body, allow="POST")
            return
        if route is None:
            self._send(404, _json({"error": "not found"}), JSON, send_body=send_body)
            return
        try:
            status, body, content_type = route(self.server.app)
        except Exception:  # a failing health callable is a 500 for this request, never a dead server
            log.error("http_handler_failed", path=path, exc_info=True)
            status, body, content_type = 500, _json({"error": "internal error"}), JSON
        self._send(status, body, content_type, send_body=send_body)

    def _send(
        self, status: int, body: bytes, content_type: str, send_body: bool = True, allow: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def version_string(self) -> str:
        return self.server_version  # without the Python version the base class appends

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http_request", client=self.client_address[0], line=format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: HttpServer) -> None:
        self.app = app
        self.webhook_slots = threading.BoundedSemaphore(WEBHOOK_SLOTS)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for our fully qualified name: slow or hanging in a container.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-response; the default prints a traceback to stderr.
        log.debug("http_connection_error", client=str(client_address), exc_info=True)

    def serve_until(self, wake_fd: int) -> None:
        """Accept connections until wake_fd is readable. Unlike serve_forever(), which wakes every
        poll_interval to look for shutdown(), this sleeps in select() until a client or stop() comes."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(wake_fd, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj == wake_fd for key, _ in ready):
                    return
                self.handle_request()  # the socket is readable: accepts at once


class HttpServer:
    """Serves health, readiness, metrics and (given a handler) the webhook on one address until stop()."""

    def __init__(
        self,
        address: tuple[str, int],
        metrics: Metrics,
        health: Callable[[], Mapping[str, Any]],
        ready: Callable[[], bool],
        webhook: Webhook | None = None,
    ) -> None:
        self.address = address
        self.webhook = webhook
        self.port = address[1]
        self.metrics = metrics
        self.health = health
        self.ready = ready
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None

    def start(self) -> None:
        """Bind now (CommitterError when the address is unusable) and serve from a daemon thread."""
        if self._server is not None:
            return
        host, port = self.address
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            server = _Server((host, port), self)
        except OSError as exc:
            raise CommitterError(f"http: cannot listen on {shown}: {exc.strerror or exc}") from exc
        self._server = server
        self.port = int(server.server_address[1])
        self._wake = os.pipe()
        self._thread = threading.Thread(target=server.serve_until, args=(self._wake[0],), name="http", daemon=True)
        self._thread.start()
        log.info("http_listening", host=host, port=self.port)

    def stop(self) -> None:
        """Stop accepting requests and close the socket; safe to call twice or before start()."""
        server, self._server = self._server, None
        if server is None:
            return
        wake, self._wake = self._wake, None
        if wake is not None:
            os.write(wake[1], b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        server.server_close()
        if wake is not None:
            os.close(wake[0])
            os.close(wake[1])
