"""Debounce with a maximum delay: pure, no threads, time is passed in.

A batch that holds a path not ready yet (open for writing, changing between two polls, a temp file its
writer has not renamed away: watch.settle) waits for it, up to `max_delay` after its first event.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from committer.core.paths import COALESCE_ABOVE, coalesce


@dataclass
class Batch:
    """The paths gathered since the batch opened, and when it opened."""

    paths: set[str]
    first_event: float
    first_event_wall: float


@dataclass
class Batcher:
    """Gathers paths; a batch is due `debounce` after its last event, or `max_delay` after its first."""

    debounce: float
    max_delay: float
    _paths: set[str] = field(default_factory=set)
    _first: float | None = None
    _first_wall: float = 0.0
    _last: float = 0.0
    _busy: frozenset[str] = frozenset()
    _waits: bool | None = None  # whether the batch holds a busy path; None: not known since the last change

    def add(self, path: str, now: float, wall: float = 0.0) -> None:
        """Record one changed path seen at monotonic time `now` (and wall-clock time `wall`)."""
        if self._first is None:
            self._first = now
            self._first_wall = wall
        self._last = now
        self._waits = None
        if "" in self._paths:
            return  # the whole tree is already a candidate
        self._paths.add(path)
        if len(self._paths) > COALESCE_ABOVE:
            self._paths = coalesce(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def settle(self, busy: Collection[str]) -> None:
        """The paths that are not ready to be committed now (the watcher's latest word on them)."""
        busy = frozenset(busy)
        if busy != self._busy:
            self._busy = busy
            self._waits = None

    def waiting(self) -> bool:
        """Whether the open batch holds a path that is not ready (a folder in the batch holds its files)."""
        if self._first is None or not self._busy:
            return False
        if self._waits is None:
            self._waits = any(_within(path, self._paths) for path in self._busy)
        return self._waits

    def next_deadline(self) -> float | None:
        """The monotonic time at which the open batch becomes due, or None when empty."""
        if self._first is None:
            return None
        if self.waiting():
            return self._first + self.max_delay
        return min(self._last + self.debounce, self._first + self.max_delay)

    def due(self, now: float) -> bool:
        """Whether the open batch should be committed now."""
        deadline = self.next_deadline()
        return deadline is not None and now >= deadline

    def take(self) -> Batch | None:
        """Close the open batch and hand it over; None when nothing is pending."""
        if self._first is None:
            return None
        batch = Batch(self._paths, self._first, self._first_wall)
        self._paths = set()
        self._first = None
        self._waits = None
        return batch


def _within(path: str, paths: set[str]) -> bool:
    """Whether path or a folder above it is in paths ("" is the whole tree)."""
    if path in paths or "" in paths:
        return True
    while "/" in path:
        path = path.rpartition("/")[0]
        if path in paths:
            return True
    return False
