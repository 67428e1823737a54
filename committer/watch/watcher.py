"""The only watchdog import: filesystem events become relative paths in a queue."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    EventsLostEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
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
from committer.watch.settle import Settling, looks_temporary

log = logs.get("committer.watcher")


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
        self._scanner: PollScanner | None = None
        self._poll_busy: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._overflow = False
        self._settling = Settling()  # guarded by _lock: the observer's thread feeds it, the loop reads it

    def start(self) -> str:
        """Start observing; returns the observer in use (inotify or poll)."""
        with self._lock:  # a restart: what the old observer said about open files may be stale
            self._settling.lost()
            self._poll_busy = frozenset()
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
            self._scanner = PollScanner(Path(self.root), self.pfilter)
            self._poller = PollThread(self._scanner, self.poll_interval, self._polled)
            self._poller.start()
            self.kind = "poll"
        return self.kind

    def _polled(self, paths: list[str]) -> None:
        assert self._scanner is not None
        changing = set(self._scanner.changing)
        with self._lock:
            self._poll_busy = frozenset(changing)  # changed since the last scan: waits one more round
            for path in paths:
                if looks_temporary(path):
                    (self._settling.written if path in changing else self._settling.deleted)(path)
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
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.stop(poller.join_timeout())
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def alive(self) -> bool:
        """Whether the observer and its emitter threads (or the poll thread) still run."""
        if self._poller is not None:
            return self._poller.alive()
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

    def busy(self) -> frozenset[str]:
        """The changed paths that are not ready to be committed yet (watch.settle)."""
        with self._lock:
            return self._settling.busy() | self._poll_busy

    def _on_overflow(self) -> None:
        with self._lock:
            self._overflow = True
            self._settling.lost()
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
        if isinstance(event, EventsLostEvent):  # the kernel's queue overflowed: only a full scan can tell
            self._on_overflow()
            return
        if isinstance(event, DirModifiedEvent):
            return
        src = self._relative(event.src_path) if event.src_path else None
        dest = self._relative(event.dest_path) if event.dest_path else None
        if self._settle(event, src, dest):
            return
        found = [rel for rel in (src, dest) if rel is not None and self._wanted(rel, event.is_directory)]
        if not found:
            return
        with self._lock:
            self._paths.update(found)
            if len(self._paths) > COALESCE_ABOVE:
                self._paths = coalesce(self._paths)
        self.notify()

    def _settle(self, event: FileSystemEvent, src: str | None, dest: str | None) -> bool:
        """Follow opens, closes, writes and renames (watch.settle); True for an event that changes no content."""
        if src is None and dest is None:
            return isinstance(event, (FileOpenedEvent, FileClosedNoWriteEvent))
        with self._lock:
            settling = self._settling
            if isinstance(event, FileOpenedEvent):
                if src is not None:
                    settling.opened(src)
                return True
            if isinstance(event, FileClosedNoWriteEvent):
                if src is None:
                    return True
                waited = settling.is_busy(src)
                settling.closed(src)
                return not (waited and not settling.is_busy(src))  # a wait that ended is news
            if isinstance(event, FileClosedEvent) and src is not None:
                settling.closed(src, wrote=True)
            elif isinstance(event, (FileCreatedEvent, FileModifiedEvent)) and src is not None:
                settling.written(src)
            elif isinstance(event, (FileMovedEvent, DirMovedEvent)):
                if src is not None and dest is not None:
                    settling.moved(src, dest)
                elif src is not None:
                    settling.deleted(src)
                elif dest is not None:
                    settling.written(dest)
            elif isinstance(event, (FileDeletedEvent, DirDeletedEvent)) and src is not None:
                settling.deleted(src)
        return False

    def _wanted(self, rel: str, is_dir: bool) -> bool:
        """Whether a path goes to the batch: not ignored, or kept out by a listed rule (so the commit step
        lists it in held_files); litter and what lies inside a folder kept out (listed once) do not."""
        if not self.pfilter.ignored(rel, is_dir=is_dir):
            return True
        found = self.pfilter.kept_out(rel, is_dir=is_dir)
        return found is not None and found[0] == rel


_INOTIFY_HINT = "raise fs.inotify.max_user_watches / max_user_instances, or set observer = poll"


def _inotify_observer() -> BaseObserver:
    from watchdog.observers.inotify import InotifyObserver

    return InotifyObserver()
