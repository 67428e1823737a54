"""GET /events on the real server: frames, resume from Last-Event-ID, keep-alive, the client limit, slow
clients dropped, the token off loopback, and a stop that does not wait for open streams."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from committer.core import events
from committer.ops.stream import Stream
from committer.serve import app
from committer.serve import events as sse
from committer.serve.access import Access
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from tests.conftest import finishes, wait_for

TOKEN = "a token of more than sixteen characters"


class SSE:
    """A raw client: the request as written, the answer read as it comes."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        lines = [f"{k}: {v}" for k, v in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items()]
        self.sock.sendall(("GET /events HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.head = head.decode()

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        found, self.buffer = self.buffer.split(mark, 1)
        return found

    def frame(self) -> str:
        """The next SSE block (event or comment), chunked transfer framing stripped."""
        while True:
            text = self._dechunk()
            if "\n\n" in text:
                block, rest = text.split("\n\n", 1)
                self.pending = rest
                return block
            self._more()

    pending = ""

    def _dechunk(self) -> str:
        out, data = self.pending, self.buffer
        while b"\r\n" in data:
            size_line, rest = data.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(rest) < size + 2:
                break
            out += rest[:size].decode()
            data = rest[size + 2 :]
        self.buffer, self.pending = data, out
        return out

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.pending)
        self.buffer += chunk

    def event(self) -> dict[str, Any]:
        """The next event frame (comments skipped): its fields, with data parsed."""
        while True:
            block = self.frame()
            lines = [line for line in block.splitlines() if not line.startswith(":") and ": " in line]
            fields = dict(line.split(": ", 1) for line in lines)
            if "data" in fields:
                return {**fields, "data": json.loads(fields["data"])}

    def close(self) -> None:
        self.sock.close()


def serve(stream: Stream, access: Access | None = None) -> HttpServer:
    pages = Pages(None, access, dict, lambda op, args: {}) if access else None  # type: ignore[arg-type]
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages, events=stream)
    server.start()
    return server


@pytest.fixture
def stream() -> Iterator[tuple[Stream, HttpServer]]:
    found = Stream(clients=2)
    server = serve(found)
    yield found, server
    server.stop()


def commit_event(name: str) -> events.Event:
    lists = events.PathLists("added", "modified", "deleted", "renamed")
    lists.add("added", name)
    return events.git_commit(batch="b-" + name, sha="0" * 40, old=None, op=None, paths=lists)


def test_a_client_reads_events_then_resumes_from_last_event_id_without_missing_one(
    stream: tuple[Stream, HttpServer]
) -> None:
    found, server = stream
    client = SSE(server.port)
    assert client.status == 200 and "text/event-stream" in client.head
    assert client.frame().startswith(": committer events")
    first = commit_event("one.md")
    found.publish(first)
    got = client.event()
    assert got["event"] == "git_commit" and got["id"] == first["id"] and got["data"] == first
    client.close()
    wait_for(lambda: found.clients == 0, what="the client gone")
    missed = [commit_event(f"{n}.md") for n in ("two", "three")]
    for event in missed:
        found.publish(event)
    again = SSE(server.port, {"Last-Event-ID": first["id"]})
    assert [again.event()["id"] for _ in missed] == [e["id"] for e in missed]
    later = commit_event("four.md")
    found.publish(later)
    assert again.event()["id"] == later["id"]
    again.close()


def test_clients_beyond_the_limit_get_503(stream: tuple[Stream, HttpServer]) -> None:
    _found, server = stream
    held = [SSE(server.port), SSE(server.port)]
    extra = SSE(server.port)
    assert extra.status == 503 and "retry-after" in extra.head.lower()
    for client in [*held, extra]:
        client.close()


def test_a_keep_alive_comment_goes_out_when_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    found = Stream()
    monkeypatch.setattr(sse, "KEEPALIVE", 0.2)
    server = serve(found)
    try:
        client = SSE(server.port)
        client.frame()
        assert client.frame() == ": keep-alive"
        client.close()
    finally:
        server.stop()


BIG = ["x" * 200 + f"/{n}.md" for n in range(1000)]


def not_reading(server: HttpServer) -> socket.socket:
    """A client that asks for /events and then never reads (a small receive buffer, soon full)."""
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    return slow


def test_a_client_that_does_not_read_holds_up_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "SEND_SECONDS", 3600.0)  # the slow client stays for the whole test
    found = Stream()
    server = serve(found)
    try:
        slow = not_reading(server)
        wait_for(lambda: found.clients == 1, what="the slow client")
        reader = SSE(server.port)
        reader.frame()
        for n in range(60):  # far more than the slow client's socket holds
            found.publish(events.hold(action=events.SET, reason=f"r{n}", paths=BIG))
            assert reader.event()["data"]["reason"] == f"r{n}"  # the reader is never held up
        assert found.clients == 2  # the slow client is still there, stuck: nobody waited for it to go
        slow.close()
        reader.close()
    finally:
        server.stop()


def test_a_client_that_does_not_take_a_frame_within_send_seconds_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sse, "SEND_SECONDS", 0.5)
    found = Stream()
    server = serve(found)
    try:
        with capture_logs() as logs:
            slow = not_reading(server)
            wait_for(lambda: found.clients == 1, what="the slow client")

            def dropped() -> bool:
                found.publish(events.hold(action=events.SET, reason="more", paths=BIG))  # until its socket is full
                return found.clients == 0

            wait_for(dropped, timeout=60, what="the slow client dropped", interval=0.05)
        assert [e["why"] for e in logs if e["event"] == "events_client_dropped"] == [
            "a frame was not taken within 0.5s"]
        slow.close()
    finally:
        server.stop()


def test_off_loopback_the_stream_needs_the_ui_token(monkeypatch: pytest.MonkeyPatch) -> None:
    found = Stream()
    server = serve(found, Access.decide("0.0.0.0", lambda: TOKEN))
    try:
        for refused in (SSE(server.port), SSE(server.port, {"Authorization": "Bearer wrong"})):
            assert refused.status == 401
            refused.close()
        allowed = SSE(server.port, {"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status == 200
        allowed.close()
    finally:
        server.stop()
    found = Stream()
    server = serve(found, Access.decide("0.0.0.0", lambda: None))
    try:
        off = SSE(server.port)
        assert off.status == 404  # no token configured: off there, like the pages
        off.close()
    finally:
        server.stop()


def test_a_stop_ends_open_streams_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "STOP_SECONDS", 600.0)  # what an open stream would hold the stop for
    server = serve(Stream(clients=2))
    try:
        client = SSE(server.port)
        client.frame()
        finishes(server.stop, 60, "the server's stop")
        with pytest.raises((EOFError, OSError)):
            client.frame()
        client.close()
    finally:
        server.stop()
