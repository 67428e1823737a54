"""Debounce with a maximum delay: pure, no threads, time is passed in."""

from __future__ import annotations

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

    def add(self, path: str, now: float, wall: float = 0.0) -> None:
        """Record one changed path seen at monotonic time `now` (and wall-clock time `wall`)."""
        if self._first is None:
            self._first = now
            self._first_wall = wall
        self._last = now
        if "" in self._paths:
            return  # the whole tree is already a candidate
        self._paths.add(path)
        if len(self._paths) > COALESCE_ABOVE:
            self._paths = coalesce(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def next_deadline(self) -> float | None:
        """The monotonic time at which the open batch becomes due, or None when empty."""
        if self._first is None:
            return None
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
        return batch
