"""What a commit pass found: one record per changed path (in a list that spills to disk past a size),
counts, and the paths it skipped."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from committer.commit.message import Counts
from committer.core import records as spills
from committer.core.records import IN_MEMORY, Spill
from committer.git import index as gitindex
from committer.policy import guard

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

    Moves of the same content are paired as the pass ends (`pair_exact`): both sides leave the records
    for `moves`, a record list of pairs in the order of their new paths, and count in `moved`. Additions
    (moves included) and modifications are counted as found; `deleted` holds the deletions no addition
    of the same content pairs, which the guard must see whole; `renames` (deleted path -> added path of
    the rest: a similar content, or a held deletion's) is set by the commit step before the guard counts.
    """

    records: Spill | None = None
    added: int = 0
    modified: int = 0
    deleted: dict[str, str] = field(default_factory=dict)  # path -> blob id of the unpaired deletions
    skipped: list[Skipped] = field(default_factory=list)
    lfs: list[str] = field(default_factory=list)
    bytes_read: int = 0
    # Index entries' stat data of a whole-tree read (committer.gitindex), in path order, for the index.
    stat_hints: Spill | None = None
    renames: dict[str, str] = field(default_factory=dict)
    kept_deleted: dict[str, str] = field(default_factory=dict)  # held deletions of a standing hold, now moves
    moves: Spill | None = None  # pairs of (deletion, addition) records of the same content, by new path
    moved: int = 0

    @property
    def counts(self) -> Counts:
        """Counts of what the commit carries (after the guard: deletions it holds are not counted)."""
        renamed = len(self.renames) + self.moved
        return Counts(added=self.added - renamed, modified=self.modified,
                      deleted=len(self.deleted) + len(self.kept_deleted) - len(self.renames), renamed=renamed)

    @property
    def size(self) -> int:
        """Changed paths the commits carry: both sides of every move."""
        return self.added + self.modified + len(self.deleted) + len(self.kept_deleted) + self.moved

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

    def moved_pairs(self) -> Iterator[tuple[Change, Change]]:
        """(deletion, addition) of every move of the same content, in the order of the new paths."""
        if self.moves is not None:
            for raw in self.moves:
                (size,) = _LENGTH.unpack_from(raw)
                end = _LENGTH.size + size
                yield Change.decode(raw[_LENGTH.size : end]), Change.decode(raw[end:])

    def every(self) -> Iterator[Change]:
        """Every change: those in path order, then both sides of each move."""
        yield from self.changes()
        for old, new in self.moved_pairs():
            yield old
            yield new

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
        for spill in (self.records, self.stat_hints, self.moves):
            if spill is not None:
                spill.close()

    def pair_exact(self, directory: Path, keep: int = IN_MEMORY) -> None:
        """Pair each deletion with an addition of the same content (guard.pair_renames within each content),
        in bounded memory: deletions and additions sorted by blob id in record lists, then merged; the pairs'
        records move from `records` to `moves`, and the unpaired deletions go into `deleted`."""
        if self.records is None:
            return
        if not self.added:
            for raw in self.records:
                if raw[:1] == DELETED:
                    self.deleted[os.fsdecode(raw[_PATH:])] = raw[_SHA].hex()
            return
        olds = spills.sort((raw[_SHA] + raw for raw in self.records if raw[:1] == DELETED), directory, keep)
        news = spills.sort((raw[_SHA] + raw for raw in self.records if raw[:1] == ADDED), directory, keep)
        ends = spills.sort(self._pairs(olds, news), directory, keep)  # both ends of every pair, by path
        try:
            end = next(ends, None)
            if end is None:
                return
            records, moves = Spill(directory, keep), Spill(directory, keep)
            for raw in self.records:
                if end is not None and end[: end.index(b"\0")] == raw[_PATH:]:
                    tag = end.index(b"\0") + 1
                    if end[tag : tag + 1] == ADDED:
                        moves.append(end[tag + 1 :])
                        self.moved += 1
                    end = next(ends, None)
                    continue
                records.append(raw)
        finally:
            for stream in (olds, news, ends):
                stream.close()  # their temporary files with them
        assert end is None, "records out of path order"
        self.records.close()
        self.records, self.moves = records, moves

    def _pairs(self, olds: Iterator[bytes], news: Iterator[bytes]) -> Iterator[bytes]:
        """For each pair: its old path's end (path, NUL, D) and its new path's end (path, NUL, A, the pair);
        the deletions no addition pairs go into `deleted`."""
        gone, came = _by_content(olds), _by_content(news)
        old, new = next(gone, None), next(came, None)
        while old is not None:
            if new is None or old[0] < new[0]:
                self.deleted.update((os.fsdecode(raw[_PATH:]), old[0].hex()) for raw in old[1])
                old = next(gone, None)
                continue
            if new[0] < old[0]:
                new = next(came, None)
                continue
            sha = old[0].hex()
            deletions = {os.fsdecode(raw[_PATH:]): raw for raw in old[1]}
            additions = {os.fsdecode(raw[_PATH:]): raw for raw in new[1]}
            pairs = guard.pair_renames(dict.fromkeys(additions, sha), dict.fromkeys(deletions, sha))
            for path, raw in deletions.items():
                if path in pairs:
                    target = additions[pairs[path]]
                    yield raw[_PATH:] + b"\0" + DELETED
                    yield target[_PATH:] + b"\0" + ADDED + _LENGTH.pack(len(raw)) + raw + target
                else:
                    self.deleted[path] = sha
            old, new = next(gone, None), next(came, None)


_SHA = slice(7, 27)  # of an encoded Change
_PATH = 28
_LENGTH = struct.Struct(">I")


def _by_content(keyed: Iterator[bytes]) -> Iterator[tuple[bytes, list[bytes]]]:
    """(blob id, records) of records sorted by their blob id prefix, one group per blob id."""
    sha: bytes | None = None
    group: list[bytes] = []
    for record in keyed:
        if record[:20] != sha:
            if sha is not None:
                yield sha, group
            sha, group = record[:20], []
        group.append(record[20:])
    if sha is not None:
        yield sha, group


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
