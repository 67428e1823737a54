"""The thread that runs the poll observer's scans at a fixed rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from committer.core import logs

if TYPE_CHECKING:
    from committer.watch.scanner import PollScanner

log = logs.get("committer.scanner")


class PollThread:
    """Runs scanner.scan() every `interval` seconds on a daemon thread and hands over what it finds.

    start() primes the scanner first if needed, synchronously: no change made after start()
    returns is missed. Scans start at a fixed rate; after one that overran the interval (logged)
    the next starts a quarter interval later. An exception in scan() or on_paths is logged and
    ends the thread, so is_alive() turns False for the owner's health check.
    """

    def __init__(self, scanner: PollScanner, interval: float, on_paths: Callable[[list[str]], None]) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.scanner = scanner
        self.interval = interval
        self.on_paths = on_paths
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("already started")
        if not self.scanner.primed:
            self.scanner.prime()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="committer-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, 2 * self.scanner.stats.seconds + 1))

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        slow = settling = False
        next_at = time.monotonic() + self.interval
        try:
            while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                paths = self.scanner.scan()
                # after a scan that saw files changing, a quiet one is news too: they have settled
                if (paths or settling) and not self._stop.is_set():
                    self.on_paths(paths)
                settling = bool(self.scanner.changing)
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
        except Exception:
            log.exception("poll_thread_failed")
