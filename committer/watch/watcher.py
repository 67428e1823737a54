"""The only watchdog import: filesystem events become relative paths in a queue."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirModifiedEvent,
    FileClosedNoWriteEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

from committer.core import logs
from committer.core.paths import COALESCE_ABOVE, coalesce
from committer.policy.filters import PathFilter
from committer.watch.mounts import POLLED_FILESYSTEMS, filesystem_type
from committer.watch.pollthread import PollThread
from committer.watch.scanner import PollScanner

log = logs.get("committer.watcher")

_NOISE = (DirModifiedEvent, FileOpenedEvent, FileClosedNoWriteEvent)
_WATCHDOG_INOTIFY_LOGGER = "watchdog.observers.inotify_c"


class _OverflowSpy(logging.Handler):
    """watchdog reports a kernel queue overflow only through its logger; we listen for it."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(level=logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow()


class Watcher(FileSystemEventHandler):
    """Watches the data directory recursively and queues the relative paths that changed."""

    def __init__(
        self,
        data_dir: Path,
        pfilter: PathFilter,
        notify: Callable[[], None],
        observer: str = "auto",
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.root = os.path.abspath(data_dir)
        self.pfilter = pfilter
        self.notify = notify
        self.requested = observer
        self.poll_interval = poll_interval
        self.kind = ""
        self._observer: BaseObserver | None = None
        self._poller: PollThread | None = None
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._overflow = False
        self._spy = _OverflowSpy(self._on_overflow)

    def start(self) -> str:
        """Start observing; returns the observer in use (inotify or poll)."""
        requested = self.requested
        if requested == "auto":
            kind = filesystem_type(self.root)
            if kind.startswith(POLLED_FILESYSTEMS):
                log.info("observer_auto", observer="poll", filesystem=kind, reason="inotify sees nothing there")
                requested = "poll"
        if requested in ("auto", "inotify"):
            try:
                self._observer = self._start(_inotify_observer())
                self.kind = "inotify"
            except OSError as exc:
                if requested == "inotify":
                    raise
                log.warning("observer_fallback", observer="poll", reason=str(exc), hint=_INOTIFY_HINT)
        if self._observer is None:
            self._poller = PollThread(PollScanner(Path(self.root), self.pfilter), self.poll_interval, self._polled)
            self._poller.start()
            self.kind = "poll"
        logging.getLogger(_WATCHDOG_INOTIFY_LOGGER).addHandler(self._spy)
        return self.kind

    def _polled(self, paths: list[str]) -> None:
        with self._lock:
            self._paths.update(paths)
            if len(self._paths) > COALESCE_ABOVE:
                self._paths = coalesce(self._paths)
        self.notify()

    def _start(self, observer: BaseObserver) -> BaseObserver:
        observer.daemon = True
        try:
            observer.schedule(self, self.root, recursive=True)
            observer.start()
        except BaseException:
            observer.stop()
            raise
        return observer

    def stop(self) -> None:
        """Stop observing and wait for the observer thread."""
        logging.getLogger(_WATCHDOG_INOTIFY_LOGGER).removeHandler(self._spy)
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.stop()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def alive(self) -> bool:
        """Whether the observer and its emitter threads (or the poll thread) still run."""
        if self._poller is not None:
            return self._poller.is_alive()
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        return all(emitter.is_alive() for emitter in observer.emitters)

    def drain(self) -> tuple[list[str], bool]:
        """The paths queued since the last call, and whether events were lost meanwhile."""
        with self._lock:
            paths, self._paths = self._paths, set()
            overflow, self._overflow = self._overflow, False
        return sorted(paths), overflow

    def _on_overflow(self) -> None:
        with self._lock:
            self._overflow = True
        self.notify()

    def _relative(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        if text == self.root:
            return None
        if not text.startswith(self.root + os.sep):
            return None
        return text[len(self.root) + 1 :]

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Called by watchdog's thread for every event."""
        if isinstance(event, _NOISE):
            return
        found = []
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            rel = self._relative(raw)
            if rel is None or self.pfilter.ignored(rel, is_dir=event.is_directory):
                continue
            found.append(rel)
        if not found:
            return
        with self._lock:
            self._paths.update(found)
            if len(self._paths) > COALESCE_ABOVE:
                self._paths = coalesce(self._paths)
        self.notify()


_INOTIFY_HINT = "raise fs.inotify.max_user_watches / max_user_instances, or set observer = poll"


def _inotify_observer() -> BaseObserver:
    from watchdog.observers.inotify import InotifyObserver

    return InotifyObserver()
