"""A real HTTP receiver of events on loopback: it checks every signature, answers what it is told to,
and keeps what it acknowledged."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import wait_for


class Receiver:
    """Deliveries as they came (`seen`, every attempt) and as they were acknowledged (`acked`, 2xx only).
    `answers` is a list of statuses to give first, in order; then `status` (204 unless changed).
    `hang` makes it read the request and never answer until released."""

    def __init__(self, secret: str | None, port: int = 0) -> None:
        self.secret = secret
        self.answers: list[int] = []
        self.status = 204
        self.headers: dict[str, str] = {}
        self.seen: list[dict[str, Any]] = []
        self.acked: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.hang = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._record(self, body)
                if receiver.hang.is_set():
                    receiver.release.wait(60)
                    return
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.status
                    if 200 <= status < 300:  # kept before the answer goes: the sender may look at once
                        receiver.acked.append(json.loads(body))
                self.send_response(status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        event = json.loads(body)
        sent = handler.headers.get("X-Committer-Signature-256")
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if sent is None or not hmac.compare_digest(sent, expected):
                self.bad_signatures += 1
        assert handler.headers.get("Content-Type") == "application/json"
        assert handler.headers.get("X-Committer-Event") == event["event"]
        assert handler.headers.get("X-Committer-Delivery") == event["id"]
        with self.lock:
            self.seen.append({**event, "_at": time.monotonic()})

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.acked if name is None or e["event"] == name]

    def wait(self, name: str, count: int = 1, timeout: float = 20.0, where: Any = None) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]] | None:
            items = [e for e in self.events(name) if where is None or where(e)]
            return items if len(items) >= count else None

        return wait_for(found, timeout, f"{count} {name} event(s) at the receiver")  # type: ignore[no-any-return]


@contextmanager
def receiving(secret: str | None = None, port: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(secret, port).start()
    try:
        yield receiver
    finally:
        receiver.close()
