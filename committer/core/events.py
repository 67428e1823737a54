"""Events out: the schema of every event committer tells other programs about, in one place.

Paths in events are text as `core.paths.display_path` shows them: a name that is valid UTF-8 and has no
control character or backslash is itself; a byte that is not UTF-8 is `\\xNN` and a backslash `\\\\`, so
the JSON stays valid UTF-8 and `parse_display` gives the exact name back.

Each event is one JSON object: `event` (its name), a unique `id` (receivers de-duplicate on it), `at` (UTC,
ISO 8601) and `host`, then its own fields. The layers that know what happened (the commit step, the hold,
the push, the pull) build their event here and hand it to an `Emit` they were given; what is done with it
(the outbox, the live stream, the counters) is not their business. Pure: no I/O, no threads.
"""

from __future__ import annotations

import functools
import json
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from committer.core import clock
from committer.core.paths import display_path

GIT_COMMIT, GIT_PUSH, GIT_PULL, GIT_CONFLICT, HOLD, PUSH_FAILED, VERIFY = (
    "git_commit", "git_push", "git_pull", "git_conflict", "hold", "push_failed", "verify",
)
NAMES = (GIT_COMMIT, GIT_PUSH, GIT_PULL, GIT_CONFLICT, HOLD, PUSH_FAILED, VERIFY)
SET, RELEASED = "set", "released"
# Entries one path list carries at most; past it the list is cut and the event says `truncated: true`
# (the commit range, `old`..`sha`, is enough to get the rest from git).
LIMIT = 1000

Event = dict[str, Any]
Emit = Callable[[Event], None]


def nothing(_event: Event) -> None:
    """The Emit of a part nobody listens to."""


@functools.cache
def _host() -> str:
    return socket.gethostname()


def make(name: str, **fields: Any) -> Event:
    """A new event: the envelope (event, id, at, host), then its fields."""
    assert name in NAMES, name
    return {"event": name, "id": str(uuid.uuid4()), "at": clock.iso(clock.now(), ms=True), "host": _host(), **fields}


def body(event: Mapping[str, Any]) -> bytes:
    """The bytes a receiver gets (and a signature covers): compact JSON, ASCII, one line."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=True).encode()


class PathLists:
    """Named path lists, each cut at LIMIT entries while counting them all."""

    def __init__(self, *names: str, limit: int = LIMIT) -> None:
        self.limit = limit
        self.lists: dict[str, list[Any]] = {name: [] for name in names}
        self.counts: dict[str, int] = dict.fromkeys(names, 0)

    def add(self, name: str, item: Any) -> None:
        self.counts[name] += 1
        if len(self.lists[name]) < self.limit:
            self.lists[name].append(shown(item))

    def extend(self, name: str, items: Iterable[Any]) -> None:
        for item in items:
            self.add(name, item)

    @property
    def truncated(self) -> bool:
        return any(self.counts[name] > len(items) for name, items in self.lists.items())


def shown(item: Any) -> Any:
    """A path (or a list of paths, such as [old, new]) as events carry it."""
    if isinstance(item, str):
        return display_path(item)
    if isinstance(item, (list, tuple)):
        return [shown(part) for part in item]
    return item


def _capped(paths: Sequence[str]) -> tuple[list[str], bool]:
    return list(paths[:LIMIT]), len(paths) > LIMIT


def git_commit(*, batch: str, sha: str, old: str | None, op: str | None, paths: PathLists,
               commits: int = 1) -> Event:
    """A commit (or the commits one batch became): `paths` has added, modified, deleted, renamed ([old, new])."""
    return make(GIT_COMMIT, batch=batch, sha=sha, old=old, op=op or "batch", commits=commits,
                paths=paths.lists, counts=paths.counts, truncated=paths.truncated)


def git_push(*, remote: str, old: str | None, new: str | None, commits: int, tags: int,
             batches: Sequence[str]) -> Event:
    """A push the remote accepted: the range it now has, and the batches of the commits it took."""
    listed, cut = _capped(batches)
    return make(GIT_PUSH, remote=remote, old=old, new=new, commits=commits, tags=tags, batches=listed,
                truncated=cut)


def push_failed(*, remote: str, kind: str, message: str, permanent: bool, old: str | None, new: str | None,
                commits: int, consecutive_failures: int) -> Event:
    """A push failure worth telling: a permanent one, or the first after a success."""
    return make(PUSH_FAILED, remote=remote, kind=kind, message=message, permanent=permanent, old=old, new=new,
                commits=commits, consecutive_failures=consecutive_failures)


def git_pull(*, outcome: str, old: str | None, new: str | None, remote_head: str | None, written: PathLists,
             reason: str | None = None) -> Event:
    """A pull that changed something or was refused: `paths` has the files written and deleted."""
    return make(GIT_PULL, outcome=outcome, old=old, new=new, remote_head=remote_head, reason=reason,
                paths=written.lists, counts=written.counts, truncated=written.truncated)


def git_conflict(*, path: str, copy: str, why: str, remote_head: str | None) -> Event:
    """One conflict of a pull: the local version kept `path`, the remote's is in `copy` ('' when the remote
    deleted it)."""
    return make(GIT_CONFLICT, path=display_path(path), copy=display_path(copy), why=why, remote_head=remote_head)


def hold(*, action: str, reason: str, paths: Sequence[str], count: int | None = None,
         batch: str | None = None) -> Event:
    """A hold set or released: a mass deletion, a pull that would delete too much, files held back."""
    listed, cut = _capped(sorted(paths))
    listed = [display_path(p) for p in listed]
    return make(HOLD, action=action, reason=reason, count=len(paths) if count is None else count,
                paths=listed, truncated=cut, **({"batch": batch} if batch else {}))


def verify(*, remote: str, ok: bool, reason: str | None, message: str, commit: str | None,
           remote_head: str | None, lfs_objects: int, seconds: float) -> Event:
    """A verify of the remote copy: `result` ok or failed (then `reason`, one of a fixed list, and `message`)."""
    return make(VERIFY, remote=remote, result="ok" if ok else "failed", reason=reason, message=message,
                commit=commit, remote_head=remote_head, lfs_objects=lfs_objects, seconds=seconds)
