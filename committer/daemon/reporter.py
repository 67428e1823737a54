"""What the daemon tells the outside: the state file (status reads it), systemd's STATUS= line, the hold
gauges. Written on the main thread only, from snapshots: other threads ask for a write with `touch()`."""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from committer.commit.committer import Committer
from committer.core import logs
from committer.ops.state import parts_state, write_state
from committer.serve.metrics import Metrics
from committer.serve.sdnotify import Notifier
from committer.sync.puller import Puller
from committer.sync.pullstate import PullRecord
from committer.sync.pusher import Pusher

log = logs.get(__name__)


class Reporter:
    """Builds the state from every part's snapshot and writes it; `touch()` (any thread) asks for it."""

    def __init__(self, git_dir: Any, metrics: Metrics, notifier: Notifier, wake: Callable[[], None],
                 fixed: dict[str, Any]) -> None:
        self.git_dir = git_dir
        self.metrics = metrics
        self.notifier = notifier
        self._wake = wake
        self.fixed = fixed  # what does not change while the daemon runs: started_at, settings
        self._dirty = threading.Event()
        self.line = ""  # the last STATUS= line
        self._written: dict[str, Any] | None = None  # the state last written: an idle daemon writes nothing
        self.touched_at: float | None = None  # when another thread first asked for the next write (monotonic)

    def touch(self) -> None:
        """Another thread changed what status shows (a push): the main loop writes the state soon."""
        if not self._dirty.is_set():
            self.touched_at = time.monotonic()
        self._dirty.set()
        self._wake()

    def last(self) -> dict[str, Any]:
        """A copy of the state last written (any thread); empty before the first write."""
        written = self._written
        return copy.deepcopy(written) if written is not None else {}

    def push(self) -> dict[str, Any] | None:
        """The push side in the state last written (main thread; not to be changed)."""
        return self._written.get("push") if self._written is not None else None

    def due(self) -> bool:
        """Whether a write was asked for since the last one (and forget the ask)."""
        if self._dirty.is_set():
            self._dirty.clear()
            return True
        return False

    def write(
        self, *, running: bool, ready: bool, observer: str | None, data_missing: bool,
        last_error: dict[str, str] | None, committer: Committer | None, record: PullRecord | None,
        pusher: Pusher | None, puller: Puller | None, events: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Write the whole state file (main thread)."""
        self._dirty.clear()
        state: dict[str, Any] = {
            **self.fixed,
            "pid": os.getpid() if running else None,
            "observer": observer,
            "ready": ready,
            "data_dir_missing": data_missing,
            "last_error": last_error,
            "last_commit_at": None, "head": None, "held_files": [], "held": None, "hold_record": None, "pull": {},
            "events": events,
        }
        if committer is not None and record is not None:
            state.update(parts_state(committer, record))
        if pusher is not None:
            state["push"] = pusher.snapshot()
            state["last_error"] = state["last_error"] or state["push"].get("last_error")
        if state["last_error"] is None and puller is not None:
            state["last_error"] = puller.fetch_error
        state.update(extra or {})  # what only a per-project daemon knows (a project folder that vanished)
        held = state["held"]
        self.metrics.set_holds(held["count"] if held else 0, len(state["held_files"]))
        self.line = status_line(state, pusher is not None)
        if state == self._written:
            return  # nothing changed: an idle daemon neither writes nor notifies
        if running and ready:
            self.notifier.status(self.line)
        try:
            write_state(self.git_dir, state)
        except OSError as exc:
            log.error("state_write_failed", error=str(exc))
            return
        self._written = copy.deepcopy(state)  # parts may hand out their own dicts


def status_line(state: dict[str, Any], remote: bool) -> str:
    """One line for systemd's STATUS=: what is pending, when the last push was, what is held."""
    push = state.get("push") or {}
    parts = []
    if remote:
        parts.append(f"{push.get('pending_commits') or 0} commits pending")
        parts.append(f"last push {push.get('last_push_at') or 'never'}")
    else:
        parts.append("local history only")
    if state.get("held"):
        parts.append(f"HOLD: {state['held']['count']} deletions held")
    if state.get("data_dir_missing"):
        parts.append("data directory missing")
    return ", ".join(parts)
