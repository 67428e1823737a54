"""What a commit pass found: one record per changed path (in a list that spills to disk past a size),
counts, and the paths it skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from committer.commit.message import Counts
from committer.core.records import Spill
from committer.git import index as gitindex

ADDED, MODIFIED, DELETED = b"A", b"M", b"D"


@dataclass(frozen=True)
class Skipped:
    """A path left as it is in history, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Change:
    """One changed path: A(dded), M(odified) or D(eleted); mode and blob id of the new entry (of the old
    one for a deletion); whether the blob is an LFS pointer."""

    kind: bytes
    path: str
    mode: str
    sha: str
    lfs: bool = False

    def encode(self) -> bytes:
        flag = b"L" if self.lfs else b"-"
        return self.kind + self.mode.encode() + bytes.fromhex(self.sha) + flag + os.fsencode(self.path)

    @staticmethod
    def decode(raw: bytes) -> Change:
        return Change(raw[:1], os.fsdecode(raw[28:]), raw[1:7].decode(), raw[7:27].hex(), raw[27:28] == b"L")


def hint_record(rel: str, hint: bytes) -> bytes:
    return hint + os.fsencode(rel)


@dataclass
class ChangeSet:
    """What one pass found: the changes (a record list, in path order), counts, what was skipped.

    Additions, modifications and deletions are counted as found; `renames` (deleted path -> added path
    of the same content) is set by the commit step once it has paired them, before the guard counts.
    """

    records: Spill | None = None
    added: int = 0
    modified: int = 0
    deleted: dict[str, str] = field(default_factory=dict)  # path -> blob id: the guard needs them whole
    skipped: list[Skipped] = field(default_factory=list)
    lfs: list[str] = field(default_factory=list)
    bytes_read: int = 0
    # Index entries' stat data of a whole-tree read (committer.gitindex), in path order, for the index.
    stat_hints: Spill | None = None
    renames: dict[str, str] = field(default_factory=dict)
    kept_deleted: dict[str, str] = field(default_factory=dict)  # held deletions of a standing hold, now moves

    @property
    def counts(self) -> Counts:
        """Counts of what the commit carries (after the guard: deletions it holds are not counted)."""
        renamed = len(self.renames)
        return Counts(added=self.added - renamed, modified=self.modified,
                      deleted=len(self.deleted) + len(self.kept_deleted) - renamed, renamed=renamed)

    @property
    def empty(self) -> bool:
        return not self.added and not self.modified and not self.deleted and not self.kept_deleted

    def changes(self) -> Iterator[Change]:
        """Every change in path order: additions and modifications as found, deletions still allowed."""
        if self.records is not None:
            for raw in self.records:
                change = Change.decode(raw)
                if change.kind != DELETED or change.path in self.deleted:
                    yield change

    def hints(self) -> Iterator[tuple[str, bytes]] | None:
        """(path, index entry head) of the stat data a whole-tree pass took, in path order; None otherwise."""
        if self.stat_hints is None:
            return None
        return ((os.fsdecode(raw[gitindex.HINT_SIZE :]), raw[: gitindex.HINT_SIZE]) for raw in self.stat_hints)

    def additions(self, shas: set[str]) -> dict[str, str]:
        """Added path -> blob id, for the added blobs among `shas` (a pass over the records)."""
        found = {}
        for change in self.changes():
            if change.kind == ADDED and change.sha in shas:
                found[change.path] = change.sha
        return found

    def keep_deletions(self, allowed: frozenset[str]) -> None:
        """Drop every deletion not in `allowed` (the guard holds them)."""
        self.deleted = {p: sha for p, sha in self.deleted.items() if p in allowed}

    def close(self) -> None:
        for spill in (self.records, self.stat_hints):
            if spill is not None:
                spill.close()


def count_renames(added: Mapping[str, str], deleted: Mapping[str, str]) -> int:
    """How many deletions an addition of the same content pairs with (the trailer's `renamed`)."""
    gone: dict[str, int] = {}
    for sha in deleted.values():
        gone[sha] = gone.get(sha, 0) + 1
    renamed = 0
    for sha in added.values():
        if gone.get(sha, 0) > 0:
            gone[sha] -= 1
            renamed += 1
    return renamed
