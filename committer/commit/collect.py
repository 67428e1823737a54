"""Turn candidate paths into exact changes against HEAD by reading the data directory, in bounded memory.

Two sorted streams are merged: the files below the candidates, walked in git's order (bytewise by full
path) relative to directory descriptors, never through a symlink; and HEAD's entries below the same
candidates, read from `git ls-tree` as it prints them. A path on disk only is an addition, in HEAD only a
deletion, in both a modification when its blob id or mode differs. Each changed file's content goes to
the blob sink as it is read (one file in memory at a time) and each change becomes one record in a list
that moves to a temporary file past a size (committer.records): a commit of a million files keeps no
per-path structure in memory but the deletions, which the mass-deletion guard must see whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from committer.commit.message import Counts
from committer.core import fsio
from committer.core.paths import COALESCE_ABOVE, coalesce, covered
from committer.core.records import Spill
from committer.git import index as gitindex
from committer.git.objects import MODE_EXEC, MODE_FILE, MODE_LINK, TreeEntry, blob_id
from committer.policy.filters import PathFilter

BlobSink = Callable[[bytes, str], None]
HeadStream = Callable[[list[str]], contextlib.AbstractContextManager[Iterator[tuple[str, TreeEntry]]]]
LfsStore = Callable[[int, int], bytes]
SecretFinder = Callable[[bytes], "str | None"]

ADDED, MODIFIED, DELETED = b"A", b"M", b"D"
SPECIAL = "not a regular file, directory or symlink (a FIFO, socket or device)"
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Skipped:
    """A path left as it is in history, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Limits:
    """What may go in by size and content; the defaults let everything through."""

    lfs_threshold: int = 0
    max_file_size: int = 0
    lfs_store: LfsStore | None = None
    find_secret: SecretFinder | None = None
    lfs_missing_reason: str = "git-lfs is not installed"
    # Whether HEAD stores this path through LFS: a file at or above lfs_threshold that HEAD holds as a
    # plain blob (it came in through a pull) stays plain while its content is unchanged.
    is_lfs: Callable[[str], bool] = lambda _path: False


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


def _hint_record(rel: str, hint: bytes) -> bytes:
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


def _under(path: str, roots: set[str]) -> bool:
    if "" in roots or path in roots:
        return True
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        if path in roots:
            return True
    return False


def _key(rel: str) -> bytes:
    return os.fsencode(rel)


# -- the disk side ----------------------------------------------------------------------------------


class _Walk:
    """The files below the candidates, in git's order, each with its directory's descriptor; what cannot
    be looked at is recorded as skipped and kept (HEAD's entries there are not deleted)."""

    def __init__(self, tree: fsio.Tree, pfilter: PathFilter) -> None:
        self.tree = tree
        self.pfilter = pfilter
        self.keep: set[str] = set()
        self.skipped: list[Skipped] = []
        self._nested: dict[str, bool] = {}

    def skip(self, rel: str, reason: str) -> None:
        if rel not in self.keep:
            self.skipped.append(Skipped(rel, reason))
            self.keep.add(rel)

    def roots(self, candidates: Iterable[str]) -> list[tuple[bytes, str, bool]]:
        """(order key, path, is a directory) of the candidates that exist, none inside another, in git's
        order; ignored ones and those inside nested repositories dropped (the latter skipped)."""
        wanted = {rel for rel in candidates if not (rel and self.pfilter.ignored(rel))}
        found = []
        for rel in sorted(wanted):
            if _under_other(rel, wanted):
                continue
            nested = self._inside_nested_repo(rel)
            if nested is not None:
                self.skip(nested, "nested git repository")
                continue
            try:
                st = self.tree.lstat(rel)
            except (FileNotFoundError, NotADirectoryError):
                continue  # gone, or behind a symlink now: whatever history has there is deleted
            except OSError as exc:
                self.skip(rel, f"cannot stat: {exc.strerror}")
                continue
            if stat.S_ISDIR(st.st_mode):
                if rel and self.pfilter.ignored(rel, is_dir=True):
                    continue
                found.append((_key(rel) + b"/" if rel else b"", rel, True))
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                found.append((_key(rel), rel, False))
            else:
                self.skip(rel, SPECIAL)
        found.sort()
        return found

    def _inside_nested_repo(self, rel: str) -> str | None:
        parent = rel
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            found = self._nested.get(parent)
            if found is None:
                found = self.tree.exists(f"{parent}/.git")
                self._nested[parent] = found
            if found:
                return parent
        return None

    def files(self, roots: list[tuple[bytes, str, bool]]) -> Iterator[tuple[str, int, str]]:
        """(path, descriptor of its directory, name) of every file and symlink, in git's order."""
        for _order, rel, is_dir in roots:
            if is_dir:
                yield from self._directory(rel)
                continue
            parent, name = fsio.split(rel)
            try:
                fd = self.tree.open_dir(parent)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.skip(rel, f"cannot stat: {exc.strerror}")
                continue
            try:
                yield rel, fd, name
            finally:
                os.close(fd)

    def _directory(self, rel: str) -> Iterator[tuple[str, int, str]]:
        try:
            fd = self.tree.open_dir(rel)
        except FileNotFoundError:
            return  # gone, or replaced by a symlink, since it was looked at: a later event says which
        except OSError as exc:
            self.skip(rel, f"cannot list directory: {exc.strerror}")
            return
        stack: list[tuple[int, str, Iterator[tuple[bytes, str, bool]]]] = []
        try:
            entries = self._list(fd, rel)
            if entries is None:
                os.close(fd)
                return
            stack.append((fd, rel, iter(entries)))
            while stack:
                dir_fd, prefix, pending = stack[-1]
                item = next(pending, None)
                if item is None:
                    os.close(dir_fd)
                    stack.pop()
                    continue
                _k, name, is_dir = item
                child = f"{prefix}/{name}" if prefix else name
                if not is_dir:
                    yield child, dir_fd, name
                    continue
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        continue  # replaced by a symlink or a file since the listing
                    self.skip(child, f"cannot list directory: {exc.strerror}")
                    continue
                listing = self._list(sub, child)
                if listing is None:
                    os.close(sub)
                    continue
                stack.append((sub, child, iter(listing)))
        finally:
            for dir_fd, _prefix, _pending in stack:
                os.close(dir_fd)

    def _list(self, fd: int, rel: str) -> list[tuple[bytes, str, bool]] | None:
        """The entries of one directory to visit, sorted as git orders paths; None when it is skipped."""
        try:
            with os.scandir(fd) as scan:
                raw = list(scan)
        except OSError as exc:
            self.skip(rel, f"cannot list directory: {exc.strerror}")
            return None
        if rel and any(entry.name == ".git" for entry in raw):
            self.skip(rel, "nested git repository")
            return None
        entries = []
        for entry in raw:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = is_dir is False and (entry.is_file(follow_symlinks=False) or entry.is_symlink())
            except OSError as exc:
                self.skip(child, f"cannot stat: {exc.strerror}")
                continue
            if self.pfilter.ignored(child, is_dir=is_dir):
                continue
            if is_dir or is_file:
                name = os.fsencode(entry.name)
                entries.append((name + b"/" if is_dir else name, entry.name, is_dir))
            else:
                self.skip(child, SPECIAL)
        entries.sort()
        return entries


def _under_other(rel: str, wanted: set[str]) -> bool:
    """Whether a directory above rel is a candidate too (its walk covers rel)."""
    if rel and "" in wanted:
        return True
    while "/" in rel:
        rel = rel.rsplit("/", 1)[0]
        if rel in wanted:
            return True
    return False


class Held(Exception):
    """A file that must stay out of this commit, with the reason."""


def read_entry(
    dir_fd: int, name: str, limits: Limits, plain: str | None = None
) -> tuple[str, bytes, bool, os.stat_result | None]:
    """(mode, blob content, stored through LFS, stat of a file) of a file or symlink in an open directory,
    never following a link: a symlink is read as its target text.

    `plain`: HEAD's plain blob id for this path; a large file with exactly that content stays a plain blob.
    """
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        # O_NOFOLLOW refused a symlink: its target text is the blob
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        target = os.readlink(os.fsencode(name), dir_fd=dir_fd)
        return MODE_LINK, target, False, st if stat.S_ISLNK(st.st_mode) and st.st_size == len(target) else None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(name)
        mode = MODE_EXEC if st.st_mode & stat.S_IXUSR else MODE_FILE
        if limits.lfs_threshold and st.st_size >= limits.lfs_threshold:
            if plain is not None and st.st_size <= (limits.max_file_size or st.st_size):
                data = fsio.read_all(fd)
                if blob_id(data) == plain:
                    return mode, data, False, st
                os.lseek(fd, 0, os.SEEK_SET)
            if limits.lfs_store is None:
                raise Held(f"{_mb(st.st_size)} is at or above lfs_threshold and {limits.lfs_missing_reason}")
            return mode, limits.lfs_store(fd, st.st_size), True, st
        if limits.max_file_size and st.st_size > limits.max_file_size:
            raise Held(f"{_mb(st.st_size)} is above max_file_size ({_mb(limits.max_file_size)})")
        data = fsio.read_all(fd)
    finally:
        os.close(fd)
    if limits.find_secret is not None:
        kind = limits.find_secret(data)
        if kind is not None:
            raise Held(f"looks like it contains a secret ({kind})")
    return mode, data, False, st


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


# -- the merge ------------------------------------------------------------------------------------


@dataclass
class Pass:
    """What one collect() needs besides the candidates."""

    data_dir: Path
    pfilter: PathFilter
    head: HeadStream | None  # HEAD's entries below some paths ([''] for all), or None before the first commit
    sink: BlobSink  # (content, blob id) of every blob the commit needs
    spill_dir: Path  # where record lists go past their size
    limits: Limits = field(default_factory=Limits)
    progress: Callable[[int], None] | None = None
    on_change: Callable[[str], None] | None = None  # told each path that changes (held files leave the list)


def collect(candidates: Iterable[str], job: Pass) -> ChangeSet:
    """Compare candidate paths (files or directories; '' is the whole tree) with HEAD.

    Paths that cannot be read are skipped and never deleted from history, nor are files the ignore rules
    exclude now (untracking them is a commit of its own). Nothing is read through a symlink: a directory
    replaced by a link is committed as that link, and what was under it is deleted.
    """
    wanted = {rel for rel in candidates if not (rel and job.pfilter.ignored(rel))}
    result = ChangeSet(records=Spill(job.spill_dir))
    try:
        tree = fsio.Tree(job.data_dir)
    except (FileNotFoundError, NotADirectoryError):
        # No data directory: everything is gone (the mass-deletion guard holds such a batch).
        _Merge(job, result, set(), wanted).run(iter(()))
        return result
    with tree:
        walk = _Walk(tree, job.pfilter)
        roots = walk.roots(wanted)
        _Merge(job, result, walk.keep, wanted, walk.skip).run(walk.files(roots))
        result.skipped = walk.skipped
    return result


class _Merge:
    """One pass of the merge of the disk's sorted files with HEAD's sorted entries."""

    def __init__(
        self, job: Pass, result: ChangeSet, keep: set[str], wanted: set[str],
        skip: Callable[[str, str], None] | None = None,
    ) -> None:
        self.job = job
        self.result = result
        self.keep = keep
        self.wanted = wanted
        self.skip = skip or (lambda _rel, _reason: None)
        self.records = result.records
        assert self.records is not None
        result.stat_hints = Spill(job.spill_dir)  # the stat data of every file read, for the index
        self.fresh_after = time.time_ns() - gitindex.RACY_NS

    def run(self, disk: Iterator[tuple[str, int, str]]) -> None:
        job = self.job
        scope = sorted(self.wanted)
        heads = job.head(scope) if job.head is not None and scope else contextlib.nullcontext(iter(()))
        with heads as entries:
            old = next(entries, None)
            new = next(disk, None)
            while old is not None or new is not None:
                if old is None or (new is not None and _key(new[0]) < _key(old[0])):
                    assert new is not None
                    self.file(new, None)
                    new = next(disk, None)
                elif new is not None and new[0] == old[0]:
                    self.file(new, old[1])
                    new, old = next(disk, None), next(entries, None)
                else:
                    self.gone(*old)
                    old = next(entries, None)

    def gone(self, rel: str, entry: TreeEntry) -> None:
        """HEAD has it, the disk has not (or not any more): a deletion, unless it is kept."""
        if _under(rel, self.keep) or not _under(rel, self.wanted) or self.job.pfilter.ignored(rel):
            return
        assert self.records is not None
        self.records.append(Change(DELETED, rel, entry.mode, entry.sha).encode())
        self.result.deleted[rel] = entry.sha
        self.changed(rel)

    def changed(self, rel: str) -> None:
        if self.job.on_change is not None:
            self.job.on_change(rel)

    def file(self, item: tuple[str, int, str], old: TreeEntry | None) -> None:
        """Read one file; record it when it differs from HEAD's entry `old` (None: an addition)."""
        rel, dir_fd, name = item
        job, result = self.job, self.result
        limits = job.limits
        try:
            plain = old.sha if old is not None and not limits.is_lfs(rel) else None
            mode, data, through_lfs, st = read_entry(dir_fd, name, limits, plain)
        except (FileNotFoundError, NotADirectoryError):
            if old is not None:  # vanished since it was listed: a deletion
                self.gone(rel, old)
            return
        except Held as held:
            self.skip(rel, str(held))
            return
        except OSError as exc:
            self.skip(rel, f"cannot read: {exc.strerror or exc}")
            return
        result.bytes_read += len(data)
        if job.progress is not None:
            job.progress(len(data))
        sha = blob_id(data)
        hints = result.stat_hints
        if hints is not None and st is not None and max(st.st_mtime_ns, st.st_ctime_ns) < self.fresh_after:
            hints.append(_hint_record(rel, gitindex.hint(st, mode, sha)))
        if old is not None and old.sha == sha and old.mode == mode:
            return
        job.sink(data, sha)
        assert self.records is not None
        self.records.append(Change(ADDED if old is None else MODIFIED, rel, mode, sha, through_lfs).encode())
        if through_lfs:
            result.lfs.append(rel)
        if old is None:
            result.added += 1
        else:
            result.modified += 1
        self.changed(rel)


def stale_paths(
    data_dir: Path, pfilter: PathFilter, index: gitindex.Index, head: Iterator[tuple[str, TreeEntry]],
    most: int = COALESCE_ABOVE,
) -> set[str]:
    """Paths where the data directory may differ from HEAD: what `git status` lists, in bounded memory
    (git holds the whole index and every change). HEAD's entries (`head`, in git's order), the index's and
    the files on disk are merged as three sorted streams; a path is listed unless HEAD and the index agree
    on its blob and mode and the file's stat data matches a trusted entry (not zero, older than the
    index). Past `most` paths they are folded into directories."""
    found: set[str] = set()
    folded = False

    def add(rel: str) -> None:
        nonlocal found, folded
        if folded and covered(rel, found):
            return
        found.add(rel)
        if len(found) > most:
            found, folded = coalesce(found, most // 2), True

    try:
        tree = fsio.Tree(data_dir)
    except (FileNotFoundError, NotADirectoryError):
        return {""}
    with tree:
        walk = _Walk(tree, pfilter)
        rows = _agreeing(index.entries(), head)
        row = next(rows, None)
        for rel, dir_fd, name in walk.files(walk.roots([""])):
            key = _key(rel)
            while row is not None and row[0] < key:
                add(os.fsdecode(row[0]))  # in HEAD or the index, not on disk (or not reached)
                row = next(rows, None)
            if row is not None and row[0] == key:
                entry = row[1]
                row = next(rows, None)
                if entry is not None:
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except OSError:
                        add(rel)
                        continue
                    if index.trusted(entry) and gitindex.same_stat(entry, st):
                        continue
            add(rel)
        while row is not None:
            add(os.fsdecode(row[0]))
            row = next(rows, None)
        for item in walk.skipped:
            add(item.path)  # looked at again by the commit step, which skips it again or takes it
    return found


def _agreeing(
    index: Iterator[tuple[bytes, bytes]], head: Iterator[tuple[str, TreeEntry]]
) -> Iterator[tuple[bytes, bytes | None]]:
    """(path, index entry) of every path in the index or HEAD, in git's order; the entry is None unless
    both have the path with the same blob and mode (only then can stat data tell that nothing changed)."""
    old = next(index, None)
    new = next(head, None)
    while old is not None or new is not None:
        new_key = _key(new[0]) if new is not None else None
        if old is not None and (new_key is None or old[0] < new_key):
            yield old[0], None  # in the index only
            old = next(index, None)
        elif new_key is not None and (old is None or new_key < old[0]):
            yield new_key, None  # in HEAD only
            new = next(head, None)
        elif old is not None and new is not None:
            entry = new[1]
            mode = int(entry.mode, 8).to_bytes(4, "big")
            same = old[1][40:60] == bytes.fromhex(entry.sha) and old[1][24:28] == mode
            yield old[0], old[1] if same else None
            old, new = next(index, None), next(head, None)


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
