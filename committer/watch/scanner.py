"""The poll observer: finds changed paths under the data directory by periodic stat walks.

Used where inotify sees nothing (FUSE bucket mounts, network shares). Each scan lstat()s every
entry of every directory that is not ignored, relative to an open descriptor of its directory (no
path walk per file, no symlink ever followed), and compares one 64-bit fingerprint per entry with
the previous scan's. Nothing else is kept: per directory its entry names joined in one string and
an array of fingerprints, about 20 bytes per entry (~3 MB for 100k files).

Every file is stat()ed at every scan: rewriting a file in place changes its own mtime and ctime,
never its directory's, and no portable interface says "some file below here changed". What
directory mtimes can spare is the readdir: a directory whose mtime and inode are unchanged, and
were not racy when it was last listed, still holds the names it held, so they are statted from
memory. That is done only where directory mtimes are known to be kept honestly (local disk
filesystems and tmpfs, see TRUSTED_FS); on FUSE, NFS (whose attribute cache can serve a directory
mtime older than its listing), SMB and anything unknown every directory is listed at every scan,
which on FUSE also fills the kernel's attribute cache (READDIRPLUS) for the lstat() calls after it.

Racy entries (git's idea, Documentation/technical/racy-git.txt): a stat taken in the same
timestamp tick as the file's last write cannot show a second write in that tick with the same
size. An entry whose mtime (or ctime) is within `racy_margin` of the scan's start, or ahead of it,
is racy: its content is hashed when its stat is recorded and again at every later scan while the
stat stays the same, until a scan starts more than `racy_margin` after its mtime and ctime. A
same-size rewrite in the same tick is therefore reported by the first scan that starts after it.
Large (> racy_hash_limit) or unreadable racy files are not hashed but reported again at the next
scan (the daemon compares them with HEAD). Directories are racy the same way: one listed in the
tick of its last change is listed again at the next scan. `racy_margin` must cover the
filesystem's timestamp granularity (2 s on FAT, 1 s on many FUSE and SMB mounts) plus how far the
file server's clock may lag this host's.

Cost: on a local disk about 2.5 us of CPU per file per scan, most of it the kernel's lstat. On FUSE
each lstat of an entry whose cached attributes expired is a round trip to the FUSE daemon (about
20 us of this process's CPU), so there the cost is set by the mount's attr/entry timeouts: with
timeouts at least as long as the poll interval the stats are answered by the kernel's cache.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from committer.core import beneath, logs
from committer.policy.filters import PathFilter
from committer.watch.mounts import TRUSTED_FS, filesystem_type
from committer.watch.racy import Racy

log = logs.get("committer.scanner")

CheckStat = Literal["default", "minimal"]


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # the root itself may be a symlink to the mount
_S_IFMT, _S_IFDIR = 0o170000, 0o040000

# Fingerprints that are not stat hashes. File fingerprints are 64-bit tuple hashes; one of them
# equal to a marker is as likely as any other hash collision (2**-64).
_DIR = hash(("committer.scanner", "dir"))
_IGN_DIR = hash(("committer.scanner", "ignored dir"))
_IGN_FILE = hash(("committer.scanner", "ignored file"))
_IGNORED = (_IGN_DIR, _IGN_FILE)

_NS = 1_000_000_000
_FUTURE_NS = 3600 * _NS  # mtimes further ahead were set by hand: a write now would move them
_EMPTY: frozenset[str] = frozenset()

_Kid = tuple[str, "_Dir"]


class _Discard(list[str]):
    """Where the first scan's findings go: nowhere."""

    def append(self, _path: str, /) -> None:
        pass


class _Dir:
    """What one directory held when it was last looked at."""

    __slots__ = ("children", "fps", "gen", "ignored", "names", "nested", "racy", "relist", "stamp")

    def __init__(self) -> None:
        self.names = ""  # entry names in listing order, joined by NUL
        self.fps: array[int] = array("q")  # one fingerprint per name
        self.ignored: frozenset[str] = _EMPTY
        self.children: dict[str, _Dir] = {}  # subdirectories that are not ignored
        self.racy: dict[str, bytes] | None = None  # name -> content digest, racy files only
        self.gen = -1  # generation of the ignore rules its decisions were made with
        self.nested = False  # a nested git repository: never descended
        self.relist = True  # its names must be read from the filesystem at the next visit
        self.stamp = 0  # hash of its own mtime and inode when it was last listed

    def clear(self) -> None:
        self.names, self.fps, self.ignored, self.children, self.racy = "", array("q"), _EMPTY, {}, None
        self.relist = True


@dataclass
class ScanStats:
    """Figures of the last scan, for logs and metrics."""

    files: int = 0
    dirs: int = 0
    listed: int = 0
    reported: int = 0
    hashed: int = 0
    racy: int = 0
    unreadable: int = 0
    seconds: float = 0.0


def fingerprints(fd: int, names: list[str], ignored: frozenset[str], minimal: bool) -> array[int]:
    """lstat() every name (relative to fd) into one fingerprint: for a file or symlink a hash of
    its stat fields, for a directory its kind. One pass, no stat result kept: this is the loop
    every scan spends its time in. Raises OSError if any name cannot be statted."""
    lstat = os.lstat
    if minimal:
        return array("q", [
            (_IGN_DIR if (st := lstat(n, dir_fd=fd)).st_mode & _S_IFMT == _S_IFDIR else _IGN_FILE)
            if n in ignored
            else _DIR if (st := lstat(n, dir_fd=fd)).st_mode & _S_IFMT == _S_IFDIR
            else hash((st.st_mtime_ns, st.st_size, st.st_mode))
            for n in names
        ])
    return array("q", [
        (_IGN_DIR if (st := lstat(n, dir_fd=fd)).st_mode & _S_IFMT == _S_IFDIR else _IGN_FILE)
        if n in ignored
        else _DIR if (st := lstat(n, dir_fd=fd)).st_mode & _S_IFMT == _S_IFDIR
        else hash((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode))
        for n in names
    ])

def fingerprint(st: os.stat_result, minimal: bool) -> int:
    """The same as fingerprints, for one entry that is not ignored."""
    if st.st_mode & _S_IFMT == _S_IFDIR:
        return _DIR
    if minimal:
        return hash((st.st_mtime_ns, st.st_size, st.st_mode))
    return hash((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode))


class PollScanner:
    """Finds changed paths under root by periodic scans; pure of threads: the caller calls scan().

    `check_stat` is git's core.checkStat: "default" compares mtime, ctime, size, inode and mode;
    "minimal" only mtime, size and mode, for filesystems whose inode numbers or ctimes are not
    stable (some FUSE mounts renumber inodes when their cache expires: every file would be
    reported once and compared with HEAD by the daemon, correct but costly).
    `trust_dir_mtime`: None decides from the filesystem type of root (TRUSTED_FS).
    """

    def __init__(
        self,
        root: Path | str,
        pfilter: PathFilter,
        *,
        check_stat: CheckStat = "default",
        racy_margin: float = 3.0,
        racy_hash_limit: int = 8 << 20,
        trust_dir_mtime: bool | None = None,
    ) -> None:
        self.root = os.path.abspath(root)
        self.pfilter = pfilter
        self.minimal = check_stat == "minimal"
        self.racy_margin_ns = int(racy_margin * _NS)
        self._racy = Racy(self.minimal, racy_hash_limit)
        self.trust_dir_mtime = trust_dir_mtime
        self.stats = ScanStats()
        self._tree = _Dir()
        self._primed = False
        self._have_state = False
        self._root_id: tuple[int, int] | None = None
        self._root_dev = -1
        self._trusted = False
        self._rules: object = self._rules_token()
        self._gen = 0
        self._unreadable: set[str] = set()
        self._root_problem = ""
        self._out: list[str] = []  # per scan
        self.changing: list[str] = []  # files whose stat changed in the last scan: may still be written

    # ---- public -----------------------------------------------------------------------------

    @property
    def primed(self) -> bool:
        return self._primed

    @property
    def racy_count(self) -> int:
        """Files whose content is compared at the next scan."""
        return self.stats.racy

    @property
    def dir_mtimes_trusted(self) -> bool:
        return self._trusted

    def prime(self) -> None:
        """First scan: remember the state, report nothing (racy files are hashed)."""
        self._tree = _Dir()
        self._root_id = None
        self._have_state = False
        self._primed = True
        self._walk()

    def scan(self) -> list[str]:
        """Relative paths added, modified, deleted or renamed since the last scan: both names of a
        rename, a deleted directory as the directory itself, a new directory as its files.

        Nothing is reported while the root is missing, unreadable or replaced by another directory
        (the owner restarts the watcher, which primes a new scanner). Called before prime(), primes.
        """
        if not self._primed:
            self.prime()
            return []
        return self._walk()

    def rules_changed(self) -> None:
        """Decide every ignore anew at the next scan (noticed by itself when .bmignore is re-read)."""
        self._gen += 1

    # ---- the walk ---------------------------------------------------------------------------

    def _rules_token(self) -> object:
        return self.pfilter.generation  # PathFilter.refresh() counts every change of its rules

    def _walk(self) -> list[str]:
        """One scan; what it found, or nothing when it only set the baseline."""
        started = time.monotonic()
        now = time.time_ns()
        self._racy.window(now - self.racy_margin_ns, now + _FUTURE_NS)
        token = self._rules_token()
        if token != self._rules:
            self._rules = token
            self._gen += 1
        self._out = [] if self._have_state else _Discard()
        self.changing = [] if self._have_state else _Discard()
        self.stats = ScanStats()
        try:
            fd = os.open(self.root, _ROOT_FLAGS)
        except OSError as exc:
            self._root_trouble(f"cannot open: {exc.strerror}")
            return []
        handed = False  # to the walk, which closes fd from then on
        try:
            try:
                st = os.fstat(fd)
                if self._root_id is None:
                    self._root_id, self._root_dev = (st.st_dev, st.st_ino), st.st_dev
                    trust = self.trust_dir_mtime
                    self._trusted = filesystem_type(self.root) in TRUSTED_FS if trust is None else trust
                elif (st.st_dev, st.st_ino) != self._root_id:
                    self._root_trouble("replaced by another directory (a remount?)")
                    return []
                first = (fd, "", iter(self._visit(fd, "", self._tree, st)))
            except OSError as exc:
                self._root_trouble(f"cannot list: {exc.strerror}")
                return []
            if self._root_problem:
                log.info("poll_root_back", path=self.root)
                self._root_problem = ""
            handed = True
            for _ in beneath.depth_first(first, self._enter):
                pass  # _enter did all there is to do
        finally:
            if not handed:
                os.close(fd)
        out, self._out = list(dict.fromkeys(self._out)), []  # a path can come twice in a race
        report, self._have_state = self._have_state, True
        self.stats.reported = len(out) if report else 0
        self.stats.unreadable = len(self._unreadable)
        self.stats.hashed = self._racy.hashed
        self.stats.seconds = time.monotonic() - started
        return out if report else []

    def _root_trouble(self, problem: str) -> None:
        if problem != self._root_problem:
            log.warning("poll_root_unavailable", path=self.root, problem=problem, action="nothing is reported")
            self._root_problem = problem

    def _enter(self, parent_fd: int, parent_rel: str, kid: _Kid) -> beneath.Frame[_Kid] | None:
        """Open and visit one subdirectory; None when there is nothing to descend into."""
        name, child = kid
        rel = f"{parent_rel}/{name}" if parent_rel else name
        if child.nested:
            try:
                os.lstat(f"{name}/.git", dir_fd=parent_fd)
                return None  # still a nested repository: not descended
            except FileNotFoundError:
                pass  # no longer one: its files are new to us
            except OSError:
                return None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            self._cannot_read(rel, exc)
            return None
        try:
            kids = self._visit(fd, rel, child, os.fstat(fd) if self._trusted else None)
        except OSError as exc:
            os.close(fd)
            self._cannot_read(rel, exc)
            return None
        if rel in self._unreadable:
            self._unreadable.discard(rel)
            log.info("poll_dir_readable", path=rel)
        if not kids:
            os.close(fd)
            return None
        return fd, rel, iter(kids)

    def _cannot_read(self, rel: str, exc: OSError) -> None:
        """Keep what we knew of the directory; the next scan tries again."""
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return  # gone or replaced since its parent was listed: the parent's next listing says so
        if rel not in self._unreadable:
            self._unreadable.add(rel)
            log.warning("poll_dir_unreadable", path=rel, error=exc.strerror, action="skipped; its state is kept")

    def _visit(self, fd: int, rel: str, d: _Dir, st_dir: os.stat_result | None) -> list[_Kid]:
        """Compare one directory with its last state; returns the subdirectories to descend into.
        `st_dir` is the directory's own stat (taken before it is listed), None where untrusted."""
        trusted = st_dir is not None and self._trusted and st_dir.st_dev == self._root_dev
        stamp = hash((st_dir.st_mtime_ns, st_dir.st_ino)) if st_dir is not None and trusted else 0
        listed = not trusted or d.relist or d.gen != self._gen or stamp != d.stamp
        self.stats.dirs += 1
        if listed:
            names = os.listdir(fd)
            joined = "\0".join(names)
            self.stats.listed += 1
        else:
            joined = d.names
            names = joined.split("\0") if joined else []
        if joined == d.names and d.gen == self._gen and not d.nested:
            try:
                same = fingerprints(fd, names, d.ignored, self.minimal) == d.fps
            except OSError:
                same = False  # one vanished or cannot be statted: the careful path sorts it out
            if same and (not d.racy or self._recheck_all(fd, rel, d)):
                self.stats.files += len(names) - len(d.children) - len(d.ignored)
                d.stamp, d.relist = stamp, st_dir is not None and trusted and self._racy.racy(st_dir)
                return list(d.children.items())
            if same:
                listed = False  # a racy file went away while it was rechecked: list afresh
        if not listed:
            names = os.listdir(fd)
            self.stats.listed += 1
        kids = self._reconcile(fd, rel, d, names)
        d.stamp, d.relist = stamp, d.relist or (st_dir is not None and trusted and self._racy.racy(st_dir))
        return kids

    def _reconcile(self, fd: int, rel: str, d: _Dir, listing: list[str]) -> list[_Kid]:
        """The careful path, entry by entry, for a directory whose names or stats changed."""
        out = self._out
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
        rules_same = d.gen == self._gen
        old_children, old_racy = d.children, d.racy or {}
        names: list[str] = []
        fps = array("q")
        ignored: set[str] = set()
        children: dict[str, _Dir] = {}
        racy: dict[str, bytes] = {}
        kids: list[_Kid] = []
        unsure = False

        def keep(name: str, prev: int) -> None:
            """An entry that cannot be looked at now: kept as it was, nothing reported."""
            names.append(name)
            fps.append(prev)
            if prev in _IGNORED:
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
                if prev is not None and prev not in _IGNORED:
                    out.append(path)  # gone since the listing
                continue
            except OSError:
                unsure = True
                if prev is not None:
                    keep(name, prev)
                continue
            is_dir = st.st_mode & _S_IFMT == _S_IFDIR
            was_dir = prev == _IGN_DIR or (prev is not None and name in old_children)
            if rules_same and prev is not None and was_dir == is_dir:
                skip = prev in _IGNORED
            else:
                skip = self.pfilter.ignored(path, is_dir=is_dir)
            if skip:
                fp = _IGN_DIR if is_dir else _IGN_FILE
                ignored.add(name)
                if (prev is None or prev not in _IGNORED) and self.pfilter.rule(path, is_dir=is_dir) is not None:
                    out.append(path)  # kept out by a listed rule: the daemon lists it in held_files
            elif is_dir:
                fp = _DIR
                child = old_children.get(name) if was_dir else None
                if child is None:
                    child = _Dir()
                    if prev is not None and not was_dir and prev != _IGN_FILE:
                        out.append(path)  # a file replaced by a directory
                children[name] = child
                kids.append((name, child))
            else:
                fp = fingerprint(st, self.minimal)
                if fp != prev:
                    out.append(path)  # new, modified, or a directory replaced by a file
                    self.changing.append(path)
                    if self._racy.racy(st) and st.st_mode & _S_IFMT in (stat.S_IFREG, stat.S_IFLNK):
                        racy[name] = self._racy.digest(fd, name, st)
                elif name in old_racy:
                    self._racy.recheck(fd, path, name, st, old_racy[name], racy, out)
                self.stats.files += 1
            names.append(name)
            fps.append(fp)
        for name, prev in old.items():
            if prev not in _IGNORED or self.pfilter.rule(prefix + name, is_dir=prev == _IGN_DIR) is not None:
                out.append(prefix + name)  # deleted or renamed away; a directory as itself
        d.names = "\0".join(names)
        d.fps = fps
        d.ignored = frozenset(ignored) if ignored else _EMPTY
        d.children = children
        d.racy = racy or None
        d.gen = self._gen
        d.relist = unsure
        self.stats.racy += len(racy)
        return kids

    def _recheck_all(self, fd: int, rel: str, d: _Dir) -> bool:
        """The racy files of a directory whose stats did not change; False if one is gone meanwhile."""
        assert d.racy is not None
        racy = self._racy.recheck_all(fd, rel, d.racy, self._out)
        if racy is None:
            return False
        d.racy = racy or None
        self.stats.racy += len(racy)
        return True
