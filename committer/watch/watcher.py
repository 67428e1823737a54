"""The watcher: one observer at a time (watch.observers) on the data directory, its findings queued in
one inbox (watch.inbox) that the daemon's loop drains, and the restart after it died or the data
directory was replaced."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from committer.core import logs
from committer.policy.filters import PathFilter
from committer.watch import observers
from committer.watch.inbox import Inbox
from committer.watch.observer import Observer, Scope

log = logs.get("committer.watcher")


class Watcher:
    """Watches the data directory recursively and queues the relative paths that changed."""

    def __init__(
        self,
        data_dir: Path,
        pfilter: PathFilter,
        notify: Callable[[], None],
        observer: str = "auto",
        poll_interval: float = 5.0,
    ) -> None:
        self.root = os.path.abspath(data_dir)
        self.pfilter = pfilter
        self.notify = notify
        self.requested = observer
        self.poll_interval = poll_interval
        self.kind = ""
        self.restarts = 0
        self.inbox = Inbox(notify)  # outlives the observers: what one queued is drained after a restart
        self._observer: Observer | None = None

    def start(self) -> str:
        """Start observing; returns the observer in use (inotify or poll). OSError when none can start."""
        self.inbox.forget()  # a restart: what the old observer said about open files may be stale
        scope = Scope(self.root, self.pfilter, self.inbox, self.poll_interval)
        self._observer = observers.start(self.requested, scope)
        self.kind = self._observer.kind
        return self.kind

    def stop(self, timeout: float | None = None) -> None:
        """Stop observing and wait for the observer's threads."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop(timeout)

    def restart(self) -> str | None:
        """Stop the observer and start one afresh; the kind now in use, or None when none could start
        (logged; the next health check tries again). The caller reconciles: changes meanwhile were not seen."""
        self.restarts += 1
        self.stop()
        try:
            return self.start()
        except OSError as exc:
            log.error("watcher_restart_failed", error=str(exc))
            return None

    def alive(self) -> bool:
        """Whether the observer still sees changes (its threads run)."""
        return self._observer is not None and self._observer.alive()

    def drain(self) -> tuple[list[str], bool]:
        """The paths queued since the last call, and whether events were lost meanwhile."""
        return self.inbox.drain()

    def busy(self) -> frozenset[str]:
        """The changed paths that are not ready to be committed yet (watch.settle)."""
        return self.inbox.busy()
