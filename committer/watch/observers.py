"""The observers the watcher can use, one line each, in the order `auto` tries them.

An entry says how to make the observer, on which filesystems it sees nothing (`auto` skips it there,
watch.mounts), and what to tell the operator when it cannot start (`auto` then falls back to the next)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from committer.core import logs
from committer.watch import inotify
from committer.watch.mounts import POLLED_FILESYSTEMS, filesystem_type
from committer.watch.observer import Observer, Scope
from committer.watch.poll import PollObserver

log = logs.get("committer.watcher")


@dataclass(frozen=True)
class Entry:
    """How to make one kind of observer, and where it is of no use."""

    make: Callable[[Scope], Observer]
    blind: tuple[str, ...] = ()  # filesystem types (prefixes) where it sees nothing
    hint: str = ""  # for the operator when it cannot start


OBSERVERS: dict[str, Entry] = {
    "inotify": Entry(inotify.InotifyObserver, blind=POLLED_FILESYSTEMS, hint=inotify.HINT),
    "poll": Entry(PollObserver),
}


def start(requested: str, scope: Scope) -> Observer:
    """Start the requested observer; for "auto", the first one that sees this filesystem and starts.
    OSError when the requested one (or, for auto, the last one) cannot start."""
    if requested != "auto":
        if requested not in OBSERVERS:
            raise ValueError(f"unknown observer {requested!r} (known: auto, {', '.join(OBSERVERS)})")
        return _started(OBSERVERS[requested].make(scope))
    filesystem = filesystem_type(scope.root)
    usable = [name for name, entry in OBSERVERS.items() if not (entry.blind and filesystem.startswith(entry.blind))]
    if not usable:
        raise OSError(f"no observer sees a {filesystem} filesystem")
    for name in OBSERVERS:
        if name == usable[0]:
            break
        log.info("observer_auto", observer=usable[0], filesystem=filesystem, reason=f"{name} sees nothing there")
    for name, after in zip(usable, [*usable[1:], None], strict=True):
        observer = OBSERVERS[name].make(scope)
        try:
            return _started(observer)
        except OSError as exc:
            if after is None:
                raise
            log.warning("observer_fallback", observer=after, reason=str(exc), hint=OBSERVERS[name].hint)
    raise AssertionError("unreachable: the last usable observer returns or raises")


def _started(observer: Observer) -> Observer:
    observer.start()
    return observer
