"""The live stream's side in the daemon: a ring of the last RING events (for a client that resumes with
Last-Event-ID) and the clients reading it now. Publishing never waits for a client: each has a bounded
queue, and one that falls QUEUE events behind is dropped (it may reconnect and resume from the ring)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from committer.core import events, logs

log = logs.get(__name__)

RING = 1000
CLIENTS = 8  # clients at once; more are refused (503)
QUEUE = 1000  # events a client may fall behind before it is dropped


@dataclass(frozen=True)
class Item:
    """One event as the stream sends it."""

    id: str
    name: str
    data: str

    def frame(self) -> bytes:
        """The Server-Sent Events frame: event, id and data lines, then a blank line."""
        return f"event: {self.name}\nid: {self.id}\ndata: {self.data}\n\n".encode()


class Client:
    """One reader: what it has not read yet, `wake` called (from any thread) when there is more."""

    def __init__(self, stream: Stream, backlog: list[Item], wake: Callable[[], None]) -> None:
        self._stream = stream
        self._items: deque[Item] = deque(backlog)
        self._wake = wake
        self.dropped = False

    def take(self) -> list[Item]:
        """Everything that arrived since the last take."""
        with self._stream.lock:
            items = list(self._items)
            self._items.clear()
        return items

    def close(self) -> None:
        self._stream.leave(self)

    def _put(self, item: Item) -> bool:
        """Queue one item (stream lock held); False when the client is too far behind."""
        if len(self._items) >= QUEUE:
            self.dropped = True
            self._items.clear()
            return False
        self._items.append(item)
        return True


class Stream:
    """The ring and the clients; `publish` is an events listener."""

    def __init__(self, ring: int = RING, clients: int = CLIENTS) -> None:
        self.lock = threading.Lock()
        self._ring: deque[Item] = deque(maxlen=ring)
        self._clients: list[Client] = []
        self.max_clients = clients
        self.closed = False

    def publish(self, event: events.Event) -> None:
        item = Item(str(event["id"]), str(event["event"]), events.body(event).decode())
        with self.lock:
            self._ring.append(item)
            clients = list(self._clients)
            slow = [c for c in clients if not c._put(item)]
            for client in slow:
                self._clients.remove(client)
        for client in clients:
            client._wake()
        for _client in slow:
            log.warning("events_client_dropped", why=f"more than {QUEUE} events behind")

    def join(self, last_id: str | None, wake: Callable[[], None]) -> Client | None:
        """A new client, given what followed `last_id` in the ring (nothing before it when the ring no longer
        has it: all the ring); None when as many clients as allowed are reading."""
        with self.lock:
            if len(self._clients) >= self.max_clients or self.closed:
                return None
            ring = list(self._ring)
            backlog: list[Item] = []
            if last_id:
                ids = [item.id for item in ring]
                backlog = ring[ids.index(last_id) + 1 :] if last_id in ids else ring
            client = Client(self, backlog, wake)
            self._clients.append(client)
        return client

    def close(self) -> None:
        """The server is stopping: every client is woken to see `closed` and end its response."""
        with self.lock:
            self.closed = True
            clients, self._clients = list(self._clients), []
        for client in clients:
            client._wake()

    def leave(self, client: Client) -> None:
        with self.lock:
            if client in self._clients:
                self._clients.remove(client)

    @property
    def clients(self) -> int:
        with self.lock:
            return len(self._clients)
