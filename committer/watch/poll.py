"""The poll observer: a PollScanner's periodic stat walks on a PollThread, for filesystems where
inotify sees nothing (FUSE bucket mounts, network shares)."""

from __future__ import annotations

from pathlib import Path

from committer.watch.observer import Scope
from committer.watch.pollthread import PollThread
from committer.watch.scanner import PollScanner
from committer.watch.settle import looks_temporary

# A changed file written (by its own mtime or ctime) less than this long ago, or less than poll_interval if
# that is shorter, may still be being written: its batch waits. Also the racy margin (watch.scanner), so
# it covers a timestamp granularity up to 2 s; a writer pausing longer gets a partial version committed,
# completed by the next batch.
QUIET = 3.0
# Where inotify hints spare the stats of quiet folders (watch.hints), each folder's files are still all
# statted about this often, for the writes no event reports (mmap, a hard link in another folder).
VERIFY = 60.0


class PollObserver:
    """Scans the data directory every poll_interval seconds; a changed file last written (by its own
    mtime or ctime) less than QUIET seconds ago waits until it is not any more: it may still be written."""

    kind = "poll"

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        quiet = min(scope.poll_interval, QUIET)
        every = max(1, round(VERIFY / scope.poll_interval))
        self.scanner = PollScanner(Path(scope.root), scope.pfilter, quiet=quiet, verify_every=every)
        self._thread: PollThread | None = None

    def start(self) -> None:
        thread = PollThread(self.scanner, self.scope.poll_interval, self._polled)
        thread.start()  # primes the scanner first: what changes after this is found
        self._thread = thread

    def stop(self, timeout: float | None = None) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop(thread.join_timeout() if timeout is None else timeout)
            if not thread.alive():
                self.scanner.close()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.alive()

    @property
    def last_error(self) -> str | None:
        """What ended the poll thread, if it ended by a failure."""
        return self._thread.last_error if self._thread is not None else None

    def _polled(self, paths: list[str]) -> None:
        inbox = self.scope.inbox
        changing = frozenset(self.scanner.changing)
        inbox.hold(frozenset(self.scanner.fresh))  # before the paths: the loop never takes them unknowing
        with inbox.settling() as settling:
            for path in paths:
                if looks_temporary(path):
                    (settling.written if path in changing else settling.deleted)(path)
        inbox.changed(paths)
