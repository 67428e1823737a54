"""Turn candidate paths into exact changes against HEAD by reading the data directory, in bounded memory.

Two sorted streams are merged: the files below the candidates, walked in git's order (bytewise by full
path) relative to directory descriptors, never through a symlink; and HEAD's entries below the same
candidates, read from `git ls-tree` as it prints them. A path on disk only is an addition, in HEAD only a
deletion, in both a modification when its blob id or mode differs. Each changed file's content goes to
the blob sink as it is read (one file in memory at a time) and each change becomes one record in a list
that moves to a temporary file past a size (commit.changes): a commit of a million files keeps no
per-path structure in memory but the deletions, which the mass-deletion guard must see whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from committer.commit.changes import ADDED, DELETED, MODIFIED, Change, ChangeSet, hint_record
from committer.commit.walk import Walk, git_key, under
from committer.core import fsio
from committer.core.records import IN_MEMORY, Spill
from committer.git import index as gitindex
from committer.git.objects import MODE_EXEC, MODE_FILE, MODE_LINK, TreeEntry, blob_id
from committer.policy.filters import PathFilter

BlobSink = Callable[[bytes, str], None]
HeadStream = Callable[[list[str]], contextlib.AbstractContextManager[Iterator[tuple[str, TreeEntry]]]]
LfsStore = Callable[[int, int], bytes]
SecretFinder = Callable[[bytes], "str | None"]

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


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
    # Whether a path's content is scanned for secrets (false for the secret_allow patterns).
    scanned: Callable[[str], bool] = lambda _path: True


# -- one file -------------------------------------------------------------------------------------


class Held(Exception):
    """A file that must stay out of this commit, with the reason."""


def read_entry(
    dir_fd: int, name: str, limits: Limits, plain: str | None = None, scan: bool = True
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
    if scan and limits.find_secret is not None:
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
    # Paths a pull could not write here (see sync/apply.py): HEAD keeps the remote's version of each, so
    # neither their absence nor what is on disk in their place (a link over their folder) is committed.
    pinned: frozenset[str] = frozenset()
    in_memory: int = IN_MEMORY  # records a list keeps before it moves to disk


def collect(candidates: Iterable[str], job: Pass) -> ChangeSet:
    """Compare candidate paths (files or directories; '' is the whole tree) with HEAD.

    Paths that cannot be read are skipped and never deleted from history, nor are files the ignore rules
    exclude now (untracking them is a commit of its own); those a listed name rule keeps out are skipped
    with that rule (`name:<pattern>`), litter without a word. Nothing is read through a symlink: a directory
    replaced by a link is committed as that link, and what was under it is deleted.
    """
    wanted: set[str] = set()
    ignored: list[str] = []
    for rel in candidates:
        if rel and job.pfilter.ignored(rel):
            ignored.append(rel)
        else:
            wanted.add(rel)
    result = ChangeSet(records=Spill(job.spill_dir, job.in_memory))
    try:
        tree = fsio.Tree(job.data_dir)
    except (FileNotFoundError, NotADirectoryError):
        # No data directory: everything is gone (the mass-deletion guard holds such a batch).
        _Merge(job, result, set(), wanted).run(iter(()))
        result.pair_exact(job.spill_dir, job.in_memory)
        return result
    with tree:
        walk = Walk(tree, job.pfilter)
        walk.held_by_name(ignored)  # kept out by name: listed in held_files, never silently
        if job.on_change is not None:
            for rel in (*ignored, *wanted):
                if rel and not tree.exists(rel):
                    job.on_change(rel)  # gone: a held file that was here is held no more
        roots = walk.roots(wanted)
        _Merge(job, result, walk.keep, wanted, walk.skip).run(walk.files(roots))
        result.skipped = walk.skipped
    result.pair_exact(job.spill_dir, job.in_memory)  # moves of the same content, streamed
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
        result.stat_hints = Spill(job.spill_dir, job.in_memory)  # the stat data of every file read, for the index
        self.fresh_after = time.time_ns() - gitindex.RACY_NS
        self.pinned_dirs = {fsio.split(p)[0] for p in job.pinned}
        for folder in list(self.pinned_dirs):
            while folder:
                self.pinned_dirs.add(folder)
                folder = fsio.split(folder)[0]

    def pinned(self, rel: str) -> bool:
        """A path a pull could not write, a folder above one, or a path below one."""
        if not self.job.pinned:
            return False
        if rel in self.job.pinned or rel in self.pinned_dirs:
            return True
        parent = fsio.split(rel)[0]
        while parent:
            if parent in self.job.pinned:
                return True
            parent = fsio.split(parent)[0]
        return False

    def run(self, disk: Iterator[tuple[str, int, str]]) -> None:
        job = self.job
        scope = sorted(self.wanted)
        heads = job.head(scope) if job.head is not None and scope else contextlib.nullcontext(iter(()))
        with heads as entries:
            old = next(entries, None)
            new = next(disk, None)
            while old is not None or new is not None:
                if old is None or (new is not None and git_key(new[0]) < git_key(old[0])):
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
        if under(rel, self.keep) or not under(rel, self.wanted) or self.job.pfilter.ignored(rel) or self.pinned(rel):
            return
        assert self.records is not None
        self.records.append(Change(DELETED, rel, entry.mode, entry.sha).encode())
        self.changed(rel)

    def changed(self, rel: str) -> None:
        if self.job.on_change is not None:
            self.job.on_change(rel)

    def file(self, item: tuple[str, int, str], old: TreeEntry | None) -> None:
        """Read one file; record it when it differs from HEAD's entry `old` (None: an addition)."""
        rel, dir_fd, name = item
        job, result = self.job, self.result
        if self.pinned(rel):
            self.skip(rel, "a pull could not write the remote's version here (see unwritable_paths in status)")
            return
        limits = job.limits
        try:
            plain = old.sha if old is not None and not limits.is_lfs(rel) else None
            mode, data, through_lfs, st = read_entry(dir_fd, name, limits, plain, limits.scanned(rel))
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
            hints.append(hint_record(rel, gitindex.hint(st, mode, sha)))
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


