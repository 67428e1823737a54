"""A change in commits of at most max_batch_files paths (moves first), and the counts of each."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from committer.commit.changes import ADDED, DELETED, MODIFIED, Change, ChangeSet, count_renames
from committer.commit.message import Counts
from committer.core.events import PathLists
from committer.git.objects import MODE_FILE


def count(changes: ChangeSet, most: int) -> int:
    """How many commits `split` makes."""
    units = changes.size - changes.moved - 2 * len(changes.renames)
    return max(1, -(-units // most))


def split(changes: ChangeSet, most: int) -> Iterator[list[Change]]:
    """The changes in commits of at most `most` paths each: moves of the same content first, in the order
    of their new paths, each counting once (both of its paths go in one commit), then the rest in path
    order. Both sides of every other rename (a move with edits, a held deletion's content back) ride
    along in the first commit and do not count."""
    moved = {*changes.renames, *changes.renames.values()}
    part = [c for c in changes.changes() if c.path in moved]
    part += [Change(DELETED, p, MODE_FILE, sha) for p, sha in sorted(changes.kept_deleted.items())]
    size = 0
    for unit in _units(changes, moved):
        if size >= most:
            yield sorted(part, key=_order)
            part, size = [], 0
        part += unit
        size += 1
    if part:
        yield sorted(part, key=_order)


def _units(changes: ChangeSet, moved: set[str]) -> Iterator[tuple[Change, ...]]:
    yield from changes.moved_pairs()
    for change in changes.changes():
        if change.path not in moved:
            yield (change,)


def _order(change: Change) -> bytes:
    return os.fsencode(change.path)


def counts(part: list[Change], renames: Mapping[str, str] | None = None) -> Counts:
    """Added, modified, deleted and renamed paths of one commit: a pair of `renames` (a move, with or
    without edits) whose both sides are in it is a rename, and so is a deletion and an addition of the
    same content."""
    added = {c.path: c.sha for c in part if c.kind == ADDED}
    deleted = {c.path: c.sha for c in part if c.kind == DELETED}
    paired = {old: new for old, new in (renames or {}).items() if old in deleted and new in added}
    targets = set(paired.values())
    renamed = len(paired) + count_renames({p: s for p, s in added.items() if p not in targets},
                                          {p: s for p, s in deleted.items() if p not in paired})
    modified = sum(1 for c in part if c.kind == MODIFIED)
    return Counts(added=len(added) - renamed, modified=modified, deleted=len(deleted) - renamed, renamed=renamed)


def renamed_pairs(part: list[Change], renames: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The renames of one commit as (old, new), paired as `counts` pairs them, in path order."""
    added = {c.path: c.sha for c in part if c.kind == ADDED}
    deleted = {c.path: c.sha for c in part if c.kind == DELETED}
    pairs = {old: new for old, new in (renames or {}).items() if old in deleted and new in added}
    gone: dict[str, list[str]] = {}
    for path, sha in sorted(deleted.items(), reverse=True):
        if path not in pairs:
            gone.setdefault(sha, []).append(path)  # last first: pop() takes the first in path order
    targets = set(pairs.values())
    for path, sha in sorted(added.items()):
        if path not in targets and gone.get(sha):
            pairs[gone[sha].pop()] = path
    return sorted(pairs.items())


_KINDS = {ADDED: "added", MODIFIED: "modified", DELETED: "deleted"}


def path_lists(changes: ChangeSet) -> PathLists:
    """The paths of a change for its event: added, modified, deleted and renamed ([old, new]), each cut at
    the event's limit, in path order."""
    lists = PathLists("added", "modified", "deleted", "renamed")
    moved = {*changes.renames, *changes.renames.values()}
    for change in changes.changes():
        if change.path not in moved:
            lists.add(_KINDS[change.kind], change.path)
    lists.extend("renamed", ([old.path, new.path] for old, new in changes.moved_pairs()))
    lists.extend("renamed", ([old, new] for old, new in sorted(changes.renames.items())))
    return lists
