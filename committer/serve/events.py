"""GET /events: the live stream of events as Server-Sent Events (`event:`, `id:`, `data:` frames).

A client that sends Last-Event-ID gets what followed that event out of the ring first. A keep-alive
comment goes out after KEEPALIVE seconds without an event (a timer per connected client only: an idle
daemon without clients does not wake for this). A client that does not take a frame within SEND_SECONDS,
or falls too far behind, is dropped: its connection is closed and it may resume with Last-Event-ID.
Off loopback the stream needs the history pages' token; with the pages off there, it is off too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from committer.core import logs
from committer.ops.stream import Client, Stream
from committer.serve.access import OFF, Access
from committer.serve.web import Message, Receive, Request, Scope, Send

log = logs.get("committer.http")

KEEPALIVE = 15.0
SEND_SECONDS = 10.0  # the longest one frame may wait for a slow client before it is dropped
HELLO = b": committer events\nretry: 2000\n\n"
PING = b": keep-alive\n\n"


class EventsEndpoint:
    """The ASGI endpoint of /events (a raw ASGI app: a send that stalls can be given up on)."""

    def __init__(self, stream: Stream, access: Callable[[], Access | None]) -> None:
        self.stream = stream
        self.access = access
        self.keepalive = KEEPALIVE
        self.send_seconds = SEND_SECONDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refused = self._refused(request)
        if refused is not None:
            status, body, headers = refused
            await _plain(send, status, body, headers)
            return
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:  # any thread: the publisher's or the server's at stop
            with contextlib.suppress(RuntimeError):  # the loop has ended
                loop.call_soon_threadsafe(ready.set)

        client = self.stream.join(request.headers.get("last-event-id") or None, wake)
        if client is None:
            await _plain(send, 503, {"error": "too many /events clients; try again later"}, [(b"retry-after", b"5")])
            return
        try:
            await self._serve(client, ready, receive, send)
        finally:
            client.close()

    def _refused(self, request: Request) -> tuple[int, dict[str, str], list[tuple[bytes, bytes]]] | None:
        if request.method != "GET":
            return 405, {"error": "method not allowed"}, [(b"allow", b"GET")]
        access = self.access()
        if access is None:
            return None
        if access.mode == OFF:
            return 404, {"error": "/events is off on this address: no ui token is configured"}, []
        if not access.host_ok(request.headers):
            return 403, {"error": "this address is served under a loopback host name only"}, []
        if not access.authorized(request.headers, request.cookies):
            return 401, {"error": "the ui token is needed"}, [(b"www-authenticate", b'Bearer realm="committer"')]
        return None

    async def _serve(self, client: Client, ready: asyncio.Event, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(_disconnected(receive))
        out = asyncio.ensure_future(self._write(client, ready, send))
        try:
            await asyncio.wait({gone, out}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (gone, out):
                task.cancel()
            await asyncio.gather(gone, out, return_exceptions=True)

    async def _write(self, client: Client, ready: asyncio.Event, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
                   (b"x-accel-buffering", b"no")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if not await self._send(send, HELLO):
            return
        ready.set()  # the backlog of a resumed client, at once
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), self.keepalive)
            if not ready.is_set():
                if not await self._send(send, PING):
                    return
                continue
            ready.clear()
            if client.dropped or self.stream.closed:
                # Too far behind (it resumes from the ring), or the server is stopping: the response ends.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(send({"type": "http.response.body", "body": b"", "more_body": False}),
                                           1.0)
                return
            items = client.take()
            if items and not await self._send(send, b"".join(item.frame() for item in items)):
                return

    async def _send(self, send: Send, body: bytes) -> bool:
        """One chunk; False (the client is dropped) when it is not taken within SEND_SECONDS."""
        try:
            await asyncio.wait_for(send({"type": "http.response.body", "body": body, "more_body": True}),
                                   self.send_seconds)
        except TimeoutError:
            log.warning("events_client_dropped", why=f"a frame was not taken within {self.send_seconds:g}s")
            return False
        return True


async def _disconnected(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _plain(send: Send, status: int, data: dict[str, str], headers: list[tuple[bytes, bytes]]) -> None:
    body = (json.dumps(data, sort_keys=True) + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *headers]})
    await send({"type": "http.response.body", "body": body})
