"""The thread that runs the poll observer's scans at a fixed rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from committer.core import logs
from committer.core.service import Worker

if TYPE_CHECKING:
    from committer.watch.scanner import PollScanner

log = logs.get("committer.scanner")

SETTLE_TICK = 0.25  # seconds at least between two looks at the files still being written


class PollThread(Worker):
    """Runs scanner.scan() every `interval` seconds on a daemon thread and hands over what it finds.

    start() primes the scanner first if needed, synchronously: no change made after start() returns is
    missed. While a scan's changed files were written less than `quiet` seconds ago (they may still be
    written, scanner.fresh), they are looked at again when the first of them may have been left alone
    that long (at least SETTLE_TICK seconds apart), and the owner is told (on_paths([])) as soon as some
    of them are left alone. Scans start at a fixed rate; after one that overran the interval (logged)
    the next starts a quarter interval later. An exception in scan() or on_paths is logged and ends the
    thread, so alive() turns False (and last_error says why) for the owner's health check.
    """

    name = "poll"

    def __init__(self, scanner: PollScanner, interval: float, on_paths: Callable[[list[str]], None]) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        super().__init__()
        self.scanner = scanner
        self.interval = interval
        self.on_paths = on_paths

    def start(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self.name} already started")
        if not self.scanner.primed:
            self.scanner.prime()
        super().start()

    def join_timeout(self) -> float:
        """How long a stop waits for a scan under way: twice the last one's duration, at least 5 s."""
        return max(5.0, 2 * self.scanner.stats.seconds + 1)

    def run(self) -> None:
        try:
            self._scans()
        except Exception as exc:  # ends the thread: the watcher's owner sees alive() False and restarts it
            self.failed(f"{type(exc).__name__}: {exc}")
            log.exception("poll_thread_failed")

    def _scans(self) -> None:
        slow = settling = False
        next_at = time.monotonic() + self.interval
        tick = min(self.interval, SETTLE_TICK)
        while True:
            scanner = self.scanner
            # not sooner than a file can be left alone, nor than twice what a look takes (a burst of files)
            wait = max(tick, scanner.settle_in, 2 * scanner.settle_seconds)
            wake = min(next_at, time.monotonic() + wait) if scanner.fresh else next_at
            if self.pause(wake - time.monotonic()):
                return
            if wake < next_at:  # a look at the files still being written, between two scans
                if self.scanner.settle() and not self.stopping:
                    self.on_paths([])  # some are ready: the held set shrank
                settling = bool(self.scanner.fresh)
                continue
            paths = self.scanner.scan()
            # after a scan that saw files being written, a quiet one is news too: they have settled
            if (paths or settling) and not self.stopping:
                self.on_paths(paths)
            settling = bool(self.scanner.fresh)
            now = time.monotonic()
            next_at += self.interval
            if next_at < now:
                next_at = now + self.interval / 4
                if not slow:
                    log.warning("poll_scan_slow", seconds=round(self.scanner.stats.seconds, 3),
                                interval=self.interval, files=self.scanner.stats.files)
                slow = True
            elif slow:
                slow = False
                log.info("poll_scan_in_time", seconds=round(self.scanner.stats.seconds, 3))
