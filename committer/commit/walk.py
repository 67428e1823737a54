"""The disk side of a commit pass: the files below some paths, in git's order (bytewise by full path),
each with its directory's descriptor, never through a symlink; what cannot be looked at is recorded as
skipped (and its history kept)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator

from committer.commit.changes import Skipped
from committer.core import beneath, fsio
from committer.policy.filters import PathFilter

SPECIAL = "not a regular file, directory or symlink (a FIFO, socket or device)"
_Entry = tuple[bytes, str, bool]  # (order key, name, is a directory)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def under(path: str, roots: set[str]) -> bool:
    """Whether path is one of roots or below one ("" is the whole tree)."""
    if "" in roots or path in roots:
        return True
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        if path in roots:
            return True
    return False


def git_key(rel: str) -> bytes:
    """The key git sorts paths by: their bytes."""
    return os.fsencode(rel)


class Walk:
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
            if under_other(rel, wanted):
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
                    self.held_by_name([rel])
                    continue
                found.append((git_key(rel) + b"/" if rel else b"", rel, True))
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                found.append((git_key(rel), rel, False))
            else:
                self.skip(rel, SPECIAL)
        found.sort()
        return found

    def held_by_name(self, candidates: Iterable[str]) -> None:
        """Record the ignored candidates that are there and that a listed name rule keeps out (the path, or
        the highest folder above it that such a rule keeps out); litter is left out without a word."""
        for rel in candidates:
            try:
                st = self.tree.lstat(rel)
            except OSError:
                continue  # gone: nothing to list
            found = self.pfilter.kept_out(rel, is_dir=stat.S_ISDIR(st.st_mode))
            if found is not None:
                self.skip(*found)

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
        entries = self._list(fd, rel)
        if entries is None:
            os.close(fd)
            return
        for dir_fd, prefix, (_k, name, is_dir) in beneath.depth_first((fd, rel, iter(entries)), self._descend):
            if not is_dir:  # a directory here is one that could not be entered
                yield f"{prefix}/{name}" if prefix else name, dir_fd, name

    def _descend(self, dir_fd: int, prefix: str, item: tuple[bytes, str, bool]) -> beneath.Frame[_Entry] | None:
        """Open and list a subdirectory; None for a file, or a directory that cannot be entered."""
        _k, name, is_dir = item
        if not is_dir:
            return None
        child = f"{prefix}/{name}" if prefix else name
        try:
            sub = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):  # else replaced by a symlink or a file since
                self.skip(child, f"cannot list directory: {exc.strerror}")
            return None
        listing = self._list(sub, child)
        if listing is None:
            os.close(sub)
            return None
        return sub, child, iter(listing)

    def _list(self, fd: int, rel: str) -> list[_Entry] | None:
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
                rule = self.pfilter.rule(child, is_dir=is_dir)
                if rule is not None:  # kept out by a rule that is listed; litter is left out without a word
                    self.skip(child, rule)
                continue
            if is_dir or is_file:
                name = os.fsencode(entry.name)
                entries.append((name + b"/" if is_dir else name, entry.name, is_dir))
            else:
                self.skip(child, SPECIAL)
        entries.sort()
        return entries


def under_other(rel: str, wanted: set[str]) -> bool:
    """Whether a directory above rel is a candidate too (its walk covers rel)."""
    return bool(rel) and under(rel.rpartition("/")[0], wanted)
