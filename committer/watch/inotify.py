"""The inotify observer, and the only watchdog import: watchdog's events become relative paths in the
watcher's inbox, with the opens and closes that say a file is still being written (watch.settle)."""

from __future__ import annotations

import os
from typing import Any

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

from committer.policy.filters import PathFilter
from committer.watch.inbox import Inbox
from committer.watch.observer import Scope

HINT = "raise fs.inotify.max_user_watches / max_user_instances, or set observer = poll"
STOP_WAIT = 5.0  # seconds a stop waits for watchdog's threads when not told otherwise


class InotifyObserver:
    """watchdog's inotify observer on the data directory, recursively."""

    kind = "inotify"

    def __init__(self, scope: Scope) -> None:
        self.root = scope.root
        self.handler = EventHandler(scope.root, scope.pfilter, scope.inbox)
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        observer = _native()
        observer.daemon = True
        try:
            observer.schedule(self.handler, self.root, recursive=True)
            observer.start()
        except BaseException:
            observer.stop()
            raise
        self._observer = observer

    def stop(self, timeout: float | None = None) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=STOP_WAIT if timeout is None else timeout)

    def alive(self) -> bool:
        """Whether the observer and its emitter threads still run."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        return all(emitter.is_alive() for emitter in observer.emitters)


class EventHandler(FileSystemEventHandler):
    """Called on watchdog's thread for every event under root; tells the inbox what matters."""

    def __init__(self, root: str, pfilter: PathFilter, inbox: Inbox) -> None:
        super().__init__()
        self.root = root
        self.pfilter = pfilter
        self.inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        """One event from watchdog's thread."""
        if isinstance(event, EventsLostEvent):  # IN_Q_OVERFLOW: the kernel dropped events, only a full scan can tell
            self.inbox.lost()
            return
        if isinstance(event, DirModifiedEvent):
            return
        src = self._relative(event.src_path) if event.src_path else None
        dest = self._relative(event.dest_path) if event.dest_path else None
        if self._settle(event, src, dest):
            return
        found = [rel for rel in (src, dest) if rel is not None and self._wanted(rel, event.is_directory)]
        if found:
            self.inbox.changed(found)

    def _relative(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        if text == self.root:
            return None
        if not text.startswith(self.root + os.sep):
            return None
        return text[len(self.root) + 1 :]

    def _settle(self, event: FileSystemEvent, src: str | None, dest: str | None) -> bool:
        """Follow opens, closes, writes and renames (watch.settle); True for an event that changes no content."""
        if src is None and dest is None:
            return isinstance(event, (FileOpenedEvent, FileClosedNoWriteEvent))
        with self.inbox.settling() as settling:
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


def _native() -> BaseObserver:
    # imported when first used: only a daemon that watches with inotify needs watchdog's inotify backend
    from watchdog.observers.inotify import InotifyEmitter
    from watchdog.observers.inotify import InotifyObserver as Native
    from watchdog.observers.inotify_c import InotifyConstants as Kernel

    folder_opens = frozenset({Kernel.IN_OPEN | Kernel.IN_ISDIR, Kernel.IN_CLOSE_NOWRITE | Kernel.IN_ISDIR})

    class Emitter(InotifyEmitter):
        """watchdog's emitter, but a folder opened or closed (as `git status`, `ls` or a backup's walk does,
        each on the folder's own watch and its parent's: 12,272 events for one `git status` of 2,000
        folders) is dropped where it is read. watchdog drops it too, after resolving its path and queueing
        it through two threads: a quarter of the daemon's CPU at start-up. A watchdog whose reader is laid
        out otherwise (6.x) keeps its own way."""

        def on_thread_start(self) -> None:
            super().on_thread_start()
            group = getattr(self, "_inotify", None)
            handle = getattr(group, "on_event", None)
            if group is None or handle is None:
                return

            def on_event(event: Any) -> None:
                if getattr(event, "mask", None) not in folder_opens:
                    handle(event)

            group.on_event = on_event  # what watchdog's reader calls for each event of this watch

    observer = Native()
    if getattr(observer, "_emitter_class", None) is InotifyEmitter:
        observer._emitter_class = Emitter
    return observer
