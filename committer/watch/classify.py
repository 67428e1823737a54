"""One scan's comparison of the tree with what the poll observer kept of it (watch.entries): which
directories to list again, which entries changed, and which racy files to hash again (watch.racy)."""

from __future__ import annotations

import os
import stat
from array import array
from typing import TYPE_CHECKING

from committer.policy.filters import PathFilter
from committer.watch.entries import (
    DIR,
    EMPTY,
    IGN_DIR,
    IGN_FILE,
    IGNORED,
    S_IFDIR,
    S_IFMT,
    DirState,
    Discard,
    Kid,
    ScanStats,
    fingerprint,
    fingerprints,
)
from committer.watch.racy import Racy

if TYPE_CHECKING:
    from committer.watch.hints import Hints


class Scan:
    """One pass over the tree: compares each directory visited with its last state, updates that state,
    and collects the paths that changed (nothing on the first pass, which only sets the baseline)."""

    def __init__(self, pfilter: PathFilter, gen: int, minimal: bool, racy_check: Racy, *,
                 trusted: bool = False, root_dev: int = -1, report: bool = True, hints: Hints | None = None) -> None:
        self.pfilter = pfilter
        self.gen = gen  # generation of the ignore rules this pass decides with
        self.minimal = minimal
        self.racy_check = racy_check
        self.trusted = trusted  # directory mtimes are kept honestly here (watch.mounts)
        self.root_dev = root_dev
        self.hints = hints  # where set (trusted filesystems only): which folders had no event since
        self.number = 0  # this scan's number, for hints.prune()
        self.out: list[str] = [] if report else Discard()
        self.changing: list[str] = [] if report else Discard()  # files whose stat changed
        self.fresh: list[str] = [] if report else Discard()  # of those, written within `quiet`: may still be
        self.stats = ScanStats()

    def visit(self, fd: int, rel: str, d: DirState, st_dir: os.stat_result | None) -> list[Kid]:
        """Compare one directory with its last state; returns the subdirectories to descend into.
        `st_dir` is the directory's own stat (taken before it is listed), None where untrusted."""
        trusted = st_dir is not None and self.trusted and st_dir.st_dev == self.root_dev
        stamp = hash((st_dir.st_mtime_ns, st_dir.st_ino)) if st_dir is not None and trusted else 0
        listed = not trusted or d.relist or d.gen != self.gen or stamp != d.stamp
        self.stats.dirs += 1
        hints = self.hints if trusted else None
        if hints is not None:
            assert st_dir is not None
            d.seen = self.number
            if (not listed and not d.racy and not d.nested and not self.racy_check.racy(st_dir)
                    and hints.quiet(d)):
                # no entry came or went (mtime), none was written or touched (no event): nothing to stat
                self.stats.skipped += 1
                self.stats.files += len(d.fps) - len(d.children) - len(d.ignored)
                return list(d.children.items())
            hints.watch(fd, d)  # before the listing and the stats: any later change raises an event
        if listed:
            names = os.listdir(fd)
            joined = "\0".join(names)
            self.stats.listed += 1
        else:
            joined = d.names
            names = joined.split("\0") if joined else []
        if joined == d.names and d.gen == self.gen and not d.nested:
            try:
                same = fingerprints(fd, names, d.ignored, self.minimal) == d.fps
            except OSError:
                same = False  # one vanished or cannot be statted: the careful path sorts it out
            if same and (not d.racy or self.recheck_all(fd, rel, d)):
                self.stats.files += len(names) - len(d.children) - len(d.ignored)
                d.stamp, d.relist = stamp, st_dir is not None and trusted and self.racy_check.racy(st_dir)
                return list(d.children.items())
            if same:
                listed = False  # a racy file went away while it was rechecked: list afresh
        if not listed:
            names = os.listdir(fd)
            self.stats.listed += 1
        kids = self.reconcile(fd, rel, d, names)
        d.stamp, d.relist = stamp, d.relist or (st_dir is not None and trusted and self.racy_check.racy(st_dir))
        return kids

    def reconcile(self, fd: int, rel: str, d: DirState, listing: list[str]) -> list[Kid]:
        """The careful path, entry by entry, for a directory whose names or stats changed."""
        out = self.out
        if rel and ".git" in listing:
            if not d.nested:
                out.append(rel)  # became a nested repository (or a new one appeared): the daemon skips it
            d.clear()
            d.nested = True
            return []
        if d.nested:
            d.nested = False
            d.clear()  # no longer a nested repository: everything in it is new
        prefix = f"{rel}/" if rel else ""
        old = dict(zip(d.names.split("\0"), d.fps, strict=True)) if d.names else {}
        rules_same = d.gen == self.gen
        old_children, old_racy = d.children, d.racy or {}
        names: list[str] = []
        fps = array("q")
        ignored: set[str] = set()
        children: dict[str, DirState] = {}
        racy: dict[str, bytes] = {}
        kids: list[Kid] = []
        unsure = False

        def keep(name: str, prev: int) -> None:
            """An entry that cannot be looked at now: kept as it was, nothing reported."""
            names.append(name)
            fps.append(prev)
            if prev in IGNORED:
                ignored.add(name)
            elif name in old_children:
                children[name] = old_children[name]
            elif name in old_racy:
                racy[name] = old_racy[name]

        for name in listing:
            path = prefix + name
            prev = old.pop(name, None)
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                unsure = True
                if prev is not None and prev not in IGNORED:
                    out.append(path)  # gone since the listing
                continue
            except OSError:
                unsure = True
                if prev is not None:
                    keep(name, prev)
                continue
            is_dir = st.st_mode & S_IFMT == S_IFDIR
            was_dir = prev == IGN_DIR or (prev is not None and name in old_children)
            if rules_same and prev is not None and was_dir == is_dir:
                skip = prev in IGNORED
            else:
                skip = self.pfilter.ignored(path, is_dir=is_dir)
            if skip:
                fp = IGN_DIR if is_dir else IGN_FILE
                ignored.add(name)
                if (prev is None or prev not in IGNORED) and self.pfilter.rule(path, is_dir=is_dir) is not None:
                    out.append(path)  # kept out by a listed rule: the daemon lists it in held_files
            elif is_dir:
                fp = DIR
                child = old_children.get(name) if was_dir else None
                if child is None:
                    child = DirState()
                    if prev is not None and not was_dir and prev != IGN_FILE:
                        out.append(path)  # a file replaced by a directory
                children[name] = child
                kids.append((name, child))
            else:
                fp = fingerprint(st, self.minimal)
                if fp != prev:
                    out.append(path)  # new, modified, or a directory replaced by a file
                    self.changing.append(path)
                    if self.racy_check.fresh(st):
                        self.fresh.append(path)
                    if self.racy_check.racy(st) and st.st_mode & S_IFMT in (stat.S_IFREG, stat.S_IFLNK):
                        racy[name] = self.racy_check.digest(fd, name, st)
                elif name in old_racy:
                    self.racy_check.recheck(fd, path, name, st, old_racy[name], racy, out)
                self.stats.files += 1
            names.append(name)
            fps.append(fp)
        for name, prev in old.items():
            if prev not in IGNORED or self.pfilter.rule(prefix + name, is_dir=prev == IGN_DIR) is not None:
                out.append(prefix + name)  # deleted or renamed away; a directory as itself
        d.names = "\0".join(names)
        d.fps = fps
        d.ignored = frozenset(ignored) if ignored else EMPTY
        d.children = children
        d.racy = racy or None
        d.gen = self.gen
        d.relist = unsure
        self.stats.racy += len(racy)
        return kids

    def recheck_all(self, fd: int, rel: str, d: DirState) -> bool:
        """The racy files of a directory whose stats did not change; False if one is gone meanwhile."""
        assert d.racy is not None
        racy = self.racy_check.recheck_all(fd, rel, d.racy, self.out)
        if racy is None:
            return False
        d.racy = racy or None
        self.stats.racy += len(racy)
        return True
