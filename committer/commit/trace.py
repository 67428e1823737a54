"""Where one batch's time went: the moments from its first event to its push, logged as one `batch_trace`
debug event (each step's duration in ms, and the total), so a slow commit shows which step grew.

The steps, in order: `first_event` (the watcher's event reached the loop), `batch_closed` (the debounce
ended), `collected` (the change set read: files walked, read, hashed), `objects_written` (blobs and commit
streamed to fast-import), `ref_updated` (fast-import ended, the branch moved: the commit is visible),
`state_written` (the state file status reads), `push_started` and `push_done` (the push that carried the
commit, when there is a remote). A step that did not happen is left out.

Where the wait went, from the batch closing to the ref (Linux): `cpu_ms` and `waited_ms`, the daemon's main
thread's CPU time and its time runnable but waiting for a CPU another process held; `fast_import_cpu_ms`
and `fast_import_waited_ms` the same for the fast-import process(es) that wrote the commit, and
`fast_import_ahead` whether its process was started ahead (after the commit before)."""

from __future__ import annotations

import itertools
import threading
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
        self.sched: dict[str, tuple[int, int]] = {}  # step: the marking thread's (CPU, run-queue wait) in ns
        self.noted: dict[str, Any] = {}  # further fields (fast-import's usage)

    def mark(self, step: str, at: float | None = None) -> None:
        """This step happened now (or at `at`, a time.monotonic() value); a step is marked once."""
        if step in self.moments:
            return
        self.moments[step] = time.monotonic() if at is None else at
        if at is None and step in _SAMPLED:
            found = schedstat()
            if found is not None:
                self.sched[step] = found

    def note(self, **fields: Any) -> None:
        """Fields the batch's event carries beside the durations."""
        self.noted.update(fields)

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
        before, after = self.sched.get("batch_closed"), self.sched.get("ref_updated")
        if before is not None and after is not None:
            out["cpu_ms"] = round((after[0] - before[0]) / 1e6, 2)
            out["waited_ms"] = round((after[1] - before[1]) / 1e6, 2)
        out.update(self.noted)
        return out


# The steps at which the main thread's scheduler account is read: the path from the batch to the ref.
_SAMPLED = ("batch_closed", "ref_updated")


def schedstat() -> tuple[int, int] | None:
    """The calling thread's CPU time and time waiting for a CPU so far (ns, Linux), or None. The CPU time
    is the clock's (schedstat's own lags up to a scheduler tick for a running thread); the wait is
    complete whenever the thread runs."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat", "rb") as handle:
            _cpu, waited, _slices = handle.read().split()
        return time.thread_time_ns(), int(waited)
    except (OSError, ValueError):
        return None


def mark(trace: Trace | None, step: str) -> None:
    """Mark a step of a trace that may not be there (a commit outside the daemon's batches)."""
    if trace is not None:
        trace.mark(step)
