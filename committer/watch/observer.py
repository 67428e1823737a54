"""What an observer is: something that watches the data directory and tells the watcher's inbox what
changed. The watcher picks one from the registry in watch.observers (docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from committer.policy.filters import PathFilter
from committer.watch.inbox import Inbox


@dataclass(frozen=True)
class Scope:
    """What an observer is given: the directory, the ignore rules, where to report, and its settings."""

    root: str  # absolute
    pfilter: PathFilter
    inbox: Inbox  # changed(paths), lost(), settling(), hold(): from the observer's own thread
    poll_interval: float = 5.0


@runtime_checkable
class Observer(Protocol):
    """One way of seeing changes. It reports through its Scope's inbox: `changed(paths)` with paths
    relative to the root, and `lost()` when it cannot tell what changed (the caller then reconciles)."""

    kind: str  # its name in the registry and in logs, status and /healthz ("inotify", "poll")

    def start(self) -> None:
        """Start seeing changes made from now on; OSError when it cannot here (auto then tries the next)."""

    def stop(self, timeout: float | None = None) -> None:
        """Stop and wait for its threads, up to `timeout` seconds (None: its own bound)."""

    def alive(self) -> bool:
        """Whether it still sees changes (its threads run)."""
