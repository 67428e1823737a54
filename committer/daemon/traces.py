"""The daemon's side of a batch's trace (commit.trace): the state written after the commit, and the push
that carried it, then one `batch_trace` debug event. Main thread only; the push thread's word comes through
the state the reporter writes (the push snapshot) and the moment it asked for that write."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from committer.commit.trace import Trace
from committer.core import logs

log = logs.get(__name__)

PUSH_WAIT = 300.0  # a trace waits this long for its push, then goes out without it


class Traces:
    """At most one trace waits for its push: a new commit sends out the one before it."""

    def __init__(self, pushes: bool) -> None:
        self.pushes = pushes
        self._waiting: Trace | None = None
        self._seen: tuple[Any, ...] = ()  # the push snapshot when the commit landed
        self._batch = ""

    def committed(self, trace: Trace, batch: str, push: Mapping[str, Any] | None) -> None:
        """A batch's commit landed (ref updated); the push side as it was then."""
        self.flush("superseded")
        self._waiting, self._batch, self._seen = trace, batch, _key(push)

    def reported(self, push: Mapping[str, Any] | None, touched_at: float | None) -> None:
        """The state file was written (with the push snapshot in it); `touched_at`: when the push thread
        last asked for a write (monotonic), the end of its push when it just pushed."""
        trace = self._waiting
        if trace is None:
            return
        trace.mark("state_written")
        if not self.pushes or push is None:
            self.flush()
            return
        key = _key(push)
        if key == self._seen:
            if time.monotonic() - trace.moments["state_written"] > PUSH_WAIT:
                self.flush("push_not_seen")
            return
        seconds = push.get("last_push_seconds")
        if key[2] != self._seen[2] and push.get("consecutive_failures"):
            self.flush("push_failed")
            return
        if key[:2] == self._seen[:2] or not isinstance(seconds, (int, float)) or touched_at is None:
            self._seen = key
            return
        started = touched_at - seconds
        if started < trace.moments.get("ref_updated", started):
            self._seen = key  # a push that began before this commit: the next one carries it
            return
        trace.mark("push_started", started)
        trace.mark("push_done", touched_at)
        self.flush()

    def flush(self, push: str | None = None) -> None:
        """Log the waiting trace now (`push`: why it has no push steps)."""
        trace, self._waiting = self._waiting, None
        if trace is None:
            return
        log.debug("batch_trace", batch=self._batch, sha=trace.sha, **trace.fields(), **({"push": push} if push else {}))


def _key(push: Mapping[str, Any] | None) -> tuple[Any, ...]:
    push = push or {}
    return push.get("last_push_at"), push.get("last_push_seconds"), push.get("consecutive_failures")
