"""Where one batch's time went: the moments from its first event to its push, logged as one `batch_trace`
debug event (each step's duration in ms, and the total), so a slow commit shows which step grew.

The steps, in order: `first_event` (the watcher's event reached the loop), `batch_closed` (the debounce
ended), `collected` (the change set read: files walked, read, hashed), `objects_written` (blobs and commit
streamed to fast-import), `ref_updated` (fast-import ended, the branch moved: the commit is visible),
`state_written` (the state file status reads), `push_started` and `push_done` (the push that carried the
commit, when there is a remote). A step that did not happen is left out."""

from __future__ import annotations

import itertools
import time
from typing import Any

STEPS = ("first_event", "batch_closed", "collected", "objects_written", "ref_updated", "state_written",
         "push_started", "push_done")


class Trace:
    """Monotonic moments of one batch; `fields()` gives the durations between them, in ms."""

    def __init__(self, first_event: float | None = None) -> None:
        self.moments: dict[str, float] = {}
        if first_event is not None:
            self.moments["first_event"] = first_event
        self.sha: str | None = None

    def mark(self, step: str, at: float | None = None) -> None:
        """This step happened now (or at `at`, a time.monotonic() value); a step is marked once."""
        self.moments.setdefault(step, time.monotonic() if at is None else at)

    def has(self, step: str) -> bool:
        return step in self.moments

    def fields(self) -> dict[str, Any]:
        """`<step>_ms`: the time from the step before (the last one that happened) to this one; `total_ms`:
        from the first to the last; `to_ref_ms`: from the first event to the ref being visible."""
        out: dict[str, Any] = {}
        marked = [(step, self.moments[step]) for step in STEPS if step in self.moments]
        if not marked:
            return out
        for (_before, then), (step, at) in itertools.pairwise(marked):
            out[f"{step}_ms"] = round((at - then) * 1000, 2)
        start = marked[0][1]
        if "ref_updated" in self.moments:
            out["to_ref_ms"] = round((self.moments["ref_updated"] - start) * 1000, 2)
        out["total_ms"] = round((marked[-1][1] - start) * 1000, 2)
        return out


def mark(trace: Trace | None, step: str) -> None:
    """Mark a step of a trace that may not be there (a commit outside the daemon's batches)."""
    if trace is not None:
        trace.mark(step)
