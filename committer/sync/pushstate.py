"""What `status` shows of pushing: written by the push thread, read by the others as copies under one lock."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from committer.core import clock
from committer.sync.errors import PushError
from committer.sync.pending import Pending


class PushMetrics(Protocol):
    """What the push side reports (the daemon passes its metrics registry)."""

    def push_ok(self, seconds: float) -> None: ...
    def push_failed(self, kind: str, seconds: float) -> None: ...
    def set_pending(self, commits: int, oldest_at: float | None) -> None: ...
    def set_last_push(self, at: float) -> None: ...
    def set_diverged(self, diverged: bool) -> None: ...


class PushState:
    """Pending commits, the last push and its duration, failures in a row, the last error."""

    def __init__(self, metrics: PushMetrics | None = None) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {
            "pending_commits": 0,
            "oldest_pending_at": None,
            "last_push_at": None,
            "last_push_seconds": None,
            "consecutive_failures": 0,
            "last_error": None,
        }

    def seed(self, at: int, seconds: float) -> None:
        """The last recorded push (from the pushed ref's reflog), at start."""
        with self._lock:
            self._state.update(last_push_at=clock.iso(at), last_push_seconds=seconds)
        if self.metrics is not None:
            self.metrics.set_last_push(at)

    def pending(self, pending: Pending) -> bool:
        """Take what is pending now; True when the counts changed."""
        oldest = min(pending.times) if pending.times else None
        now = {"pending_commits": pending.count, "oldest_pending_at": clock.iso(oldest) if oldest else None}
        if self.metrics is not None:
            self.metrics.set_pending(pending.count, oldest)
        with self._lock:
            changed = any(self._state[key] != value for key, value in now.items())
            self._state.update(now)
        return changed

    def pushed(self, error: PushError | None, seconds: float) -> int:
        """One attempt ended; returns the failures in a row."""
        with self._lock:
            if error is None:
                self._state.update(last_push_at=clock.iso(clock.now()), last_push_seconds=round(seconds, 3),
                                   consecutive_failures=0, last_error=None)
            else:
                self._state["consecutive_failures"] += 1
                self._state["last_error"] = _error(error)
            failures = int(self._state["consecutive_failures"])
        if self.metrics is not None:
            if error is None:
                self.metrics.push_ok(seconds)
            else:
                self.metrics.push_failed(error.kind, seconds)
        return failures

    def error(self, error: PushError | None) -> None:
        """Show (or clear) an error found between pushes."""
        with self._lock:
            self._state["last_error"] = _error(error) if error is not None else None

    @property
    def error_kind(self) -> str | None:
        with self._lock:
            return (self._state["last_error"] or {}).get("kind")

    def snapshot(self) -> dict[str, Any]:
        """A copy, safe to keep and to show."""
        with self._lock:
            state = dict(self._state)
        if state["last_error"] is not None:
            state["last_error"] = dict(state["last_error"])
        return state


def _error(error: PushError) -> dict[str, str]:
    return {"kind": error.kind, "message": error.detail, "at": clock.iso(clock.now())}
