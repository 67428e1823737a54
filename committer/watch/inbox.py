"""Where observers leave what they found until the daemon's loop takes it: the changed paths, whether
events were lost, and which paths are not ready to be committed yet. Observers' threads write, the
loop reads; one lock guards it all."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from committer.core.paths import COALESCE_ABOVE, coalesce
from committer.watch.settle import Settling


class Inbox:
    """The watcher's one queue, shared by whichever observer runs (it outlives an observer's restart)."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self.notify = notify
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._lost = False
        self._settling = Settling()
        self._held: frozenset[str] = frozenset()

    # -- what an observer says -------------------------------------------------------------------

    def changed(self, paths: Iterable[str]) -> None:
        """These paths (relative to the data directory) changed; wakes the loop even for none."""
        with self._lock:
            self._paths.update(paths)
            if len(self._paths) > COALESCE_ABOVE:
                self._paths = coalesce(self._paths)
        self.notify()

    def lost(self) -> None:
        """Events were lost (a queue overflow): only a full reconcile can tell what changed."""
        with self._lock:
            self._lost = True
            self._settling.lost()
        self.notify()

    @contextmanager
    def settling(self) -> Iterator[Settling]:
        """The open-for-write and temp-file bookkeeping (watch.settle), under the lock."""
        with self._lock:
            yield self._settling

    def hold(self, paths: frozenset[str]) -> None:
        """The observer's own not-ready paths (poll: changed since the scan before), in place of the last."""
        with self._lock:
            self._held = paths

    def forget(self) -> None:
        """A new observer starts: what the old one said about open files may be stale."""
        with self._lock:
            self._settling.lost()
            self._held = frozenset()

    # -- what the loop takes ---------------------------------------------------------------------

    def drain(self) -> tuple[list[str], bool]:
        """The paths queued since the last call, and whether events were lost meanwhile."""
        with self._lock:
            paths, self._paths = self._paths, set()
            lost, self._lost = self._lost, False
        return sorted(paths), lost

    def busy(self) -> frozenset[str]:
        """The changed paths that are not ready to be committed yet."""
        with self._lock:
            return self._settling.busy() | self._held
