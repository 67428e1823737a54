"""uvicorn's HTTP/1.1 protocol with a deadline for the request head, so slow clients cannot fill the server.

uvicorn has no header timeout of its own: a connection that sends its header lines a byte a second is
kept for as long as it likes, and `limit_concurrency` counts it, so seventy such connections made every
request (health checks and signed webhooks included) a 503. Here a connection whose request head is not
complete HEADER_SECONDS after it opened (or after its previous answer) is closed; the connection limit
is high enough for hundreds of slow clients at once; and when it is reached anyway, the connection
that has waited longest for its head is closed to make room, so a flood of slow clients ends in a few
seconds instead of holding the server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from committer.core import logs
from committer.serve.web import H11Protocol

log = logs.get("committer.http")

HEADER_SECONDS = 5.0  # a request head (request line and headers) must arrive within this
CONNECTIONS = 500  # open connections; past this the slowest one still sending its head is closed


class HeadDeadlineProtocol(H11Protocol):
    """H11Protocol that closes a connection whose request head is late."""

    head_seconds = HEADER_SECONDS
    most_connections = CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_since: float | None = None  # monotonic time the head has been awaited since
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.most_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # h11 produced a whole request head
            self._head_arrived()

    def on_response_complete(self) -> None:
        # Armed before uvicorn looks at pipelined data, which may hold the next head already.
        self._await_head()
        super().on_response_complete()

    def _await_head(self) -> None:
        self._head_arrived()
        self.waiting_since = time.monotonic()
        self._head_timer = self.loop.call_later(self.head_seconds, self._head_late)

    def _head_arrived(self) -> None:
        self.waiting_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.waiting_since is not None and not self.transport.is_closing():
            client = self.client[0] if self.client else "-"
            log.debug("http_head_late", client=client, seconds=self.head_seconds)
            self.transport.close()

    def _make_room(self) -> None:
        """Close the connection that has waited longest for its head (often this one's kind: a slow client)."""
        slow = [c for c in self.connections if isinstance(c, HeadDeadlineProtocol) and c.waiting_since is not None]
        if not slow:
            return
        oldest = min(slow, key=lambda c: c.waiting_since or 0.0)
        log.warning("http_connections_full", connections=len(self.connections), action="closed the slowest")
        oldest.transport.close()
