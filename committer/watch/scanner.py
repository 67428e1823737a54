"""The poll observer: finds changed paths under the data directory by periodic stat walks.

Used where inotify sees nothing (FUSE bucket mounts, network shares). Each scan lstat()s the entries of
every directory that is not ignored (on a local disk, of those that may have changed), relative to an
open descriptor of its directory (no path walk per file, no symlink ever followed), and compares one
64-bit fingerprint per entry with the previous scan's. Nothing else is kept: per directory its entry
names joined in one string and an array of fingerprints, about 20 bytes per entry (~3 MB for 100k
files). That state is watch.entries; one pass comparing the tree with it is watch.classify; this module
walks the tree and owns the root.

Rewriting a file in place changes its own mtime and ctime, never its directory's, so a directory's mtime
alone cannot say its files are unchanged. What it spares is the readdir: a directory whose mtime and
inode are unchanged, and were not racy when it was last listed, still holds the names it held. Where
directory mtimes are known to be kept honestly (local disk filesystems and tmpfs, see TRUSTED_FS) the
lstat()s are spared too, by inotify (watch.hints): a folder with no event since its files were last
statted, and an unchanged mtime, is not looked into, but for one scan in `verify_every` (the poll
observer: about once a minute) that stats its files anyway, for the changes no event reports (a write
through mmap, or through a hard link in another folder). On FUSE, NFS (whose attribute cache can serve a
directory mtime older than its listing), SMB and anything unknown a change made elsewhere raises no
event here: every directory is listed and every file statted at every scan, which on FUSE also fills the
kernel's attribute cache (READDIRPLUS) for the lstat() calls after it.

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

Cost: on a local disk about 2.5-4 us of CPU per file statted, half of it the kernel's lstat; with the
hints a scan of an unchanged tree stats 1/verify_every of it (and opens every folder once). On FUSE
each lstat of an entry whose cached attributes expired is a round trip to the FUSE daemon (about
20 us of this process's CPU), so there the cost is set by the mount's attr/entry timeouts: with
timeouts at least as long as the poll interval the stats are answered by the kernel's cache.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Literal

from committer.core import beneath, logs
from committer.policy.filters import PathFilter
from committer.watch.classify import Scan
from committer.watch.entries import DirState, Kid, ScanStats
from committer.watch.hints import VERIFY_EVERY, Hints
from committer.watch.mounts import TRUSTED_FS, filesystem_type
from committer.watch.racy import Racy

log = logs.get("committer.scanner")

CheckStat = Literal["default", "minimal"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # the root itself may be a symlink to the mount
_NS = 1_000_000_000
_FUTURE_NS = 3600 * _NS  # mtimes further ahead were set by hand: a write now would move them


class PollScanner:
    """Finds changed paths under root by periodic scans; pure of threads: the caller calls scan().

    `check_stat` is git's core.checkStat: "default" compares mtime, ctime, size, inode and mode;
    "minimal" only mtime, size and mode, for filesystems whose inode numbers or ctimes are not
    stable (some FUSE mounts renumber inodes when their cache expires: every file would be
    reported once and compared with HEAD by the daemon, correct but costly).
    `trust_dir_mtime`: None decides from the filesystem type of root (TRUSTED_FS).
    `quiet`: a changed file last written (its own mtime or ctime) less than this many seconds ago is
    `fresh`, may still be written, and is held by the observer (the poll interval; racy_margin if None).
    `hints`, `verify_every`: inotify hints where directory mtimes are trusted (watch.hints).
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
        quiet: float | None = None,
        hints: bool = True,
        verify_every: int = VERIFY_EVERY,
    ) -> None:
        self.root = os.path.abspath(root)
        self.pfilter = pfilter
        self.minimal = check_stat == "minimal"
        self.racy_margin_ns = int(racy_margin * _NS)
        self.quiet_ns = int((racy_margin if quiet is None else quiet) * _NS)
        self._racy = Racy(self.minimal, racy_hash_limit)
        self.trust_dir_mtime = trust_dir_mtime
        self.use_hints = hints
        self.verify_every = verify_every
        self._hints: Hints | None = None
        self.stats = ScanStats()
        self._tree = DirState()
        self._primed = False
        self._have_state = False
        self._root_id: tuple[int, int] | None = None
        self._root_dev = -1
        self._trusted = False
        self._rules: object = self._rules_token()
        self._gen = 0
        self._count = 0  # scans made
        self._unreadable: set[str] = set()
        self._root_problem = ""
        self._pass = Scan(pfilter, 0, self.minimal, self._racy)  # the scan under way, or the last one
        self.changing: list[str] = []  # files whose stat changed in the last scan
        self.fresh: list[str] = []  # of those, the ones last written within `quiet`: may still be written
        self.settle_in = 0.0  # seconds until the first fresh file may have been left alone `quiet` long
        self.settle_seconds = 0.0  # how long the last settle() took
        self._soonest = 0

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
        self.close()
        self._tree = DirState()
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
        carried = self.fresh  # found by an earlier scan, perhaps written since: still fresh if so
        out = self._walk()
        self.settle_in = 0.0
        if carried:
            self.fresh = list(dict.fromkeys([*self.fresh, *carried]))
            self.settle()
        return out

    def settle(self) -> bool:
        """Look again at the fresh files: keep those still written within `quiet` seconds of now (by their
        own mtime or ctime), drop those since left alone, gone or unreadable. Whether any was dropped."""
        if not self.fresh:
            return False
        started, now = time.monotonic(), time.time_ns()
        self._window(now)
        self._soonest = now + self.quiet_ns
        by_folder: dict[str, list[str]] = {}
        for path in self.fresh:
            folder, _, name = path.rpartition("/")
            by_folder.setdefault(folder, []).append(name)
        still: list[str] = []
        try:
            root_fd = os.open(self.root, _ROOT_FLAGS)
        except OSError:
            self.fresh = []
            return True
        try:
            for folder, names in by_folder.items():
                still += self._still_written(root_fd, folder, names)
        finally:
            os.close(root_fd)
        dropped = len(still) < len(self.fresh)
        self.fresh = still
        # the next look is worth taking once the first of them can have been left alone that long
        self.settle_in = max(0.0, (self._soonest + self.quiet_ns - now) / _NS)
        self.settle_seconds = time.monotonic() - started
        return dropped

    def _window(self, now: int) -> None:
        self._racy.window(now - self.racy_margin_ns, now + _FUTURE_NS, now - self.quiet_ns)

    def _still_written(self, root_fd: int, folder: str, names: list[str]) -> list[str]:
        try:
            fd = beneath.open_beneath(root_fd, folder, _DIR_FLAGS)
        except OSError:
            return []  # gone or replaced: the next scan says what became of it
        prefix = f"{folder}/" if folder else ""
        out: list[str] = []
        try:
            for name in names:
                try:
                    st = os.lstat(name, dir_fd=fd)
                except OSError:
                    continue
                if self._racy.fresh(st):
                    out.append(prefix + name)
                    written = st.st_mtime_ns if self.minimal else max(st.st_mtime_ns, st.st_ctime_ns)
                    self._soonest = min(self._soonest, written)
        finally:
            os.close(fd)
        return out

    def close(self) -> None:
        """Let go of the inotify watches (watch.hints); a later scan makes new ones."""
        hints, self._hints = self._hints, None
        if hints is not None:
            hints.close()

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
        self._window(now)
        token = self._rules_token()
        if token != self._rules:
            self._rules = token
            self._gen += 1
        scan = self._pass = Scan(self.pfilter, self._gen, self.minimal, self._racy, report=self._have_state)
        self.changing, self.fresh, self.stats = scan.changing, scan.fresh, scan.stats
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
                scan.trusted, scan.root_dev = self._trusted, self._root_dev
                scan.hints = self._hinting()
                self._count += 1
                scan.number = self._count
                first = (fd, "", iter(scan.visit(fd, "", self._tree, st)))
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
        if scan.hints is not None:
            scan.hints.prune(scan.number)
        out = list(dict.fromkeys(scan.out))  # a path can come twice in a race
        report, self._have_state = self._have_state, True
        self.stats.reported = len(out) if report else 0
        self.stats.unreadable = len(self._unreadable)
        self.stats.hashed = self._racy.hashed
        self.stats.seconds = time.monotonic() - started
        return out if report else []

    def _hinting(self) -> Hints | None:
        """The scan's change hints, drained: only where directory mtimes are trusted and asked for."""
        if not (self._trusted and self.use_hints):
            return None
        if self._hints is None:
            try:
                self._hints = Hints(self.verify_every)
            except OSError as exc:
                log.warning("poll_hints_unavailable", error=exc.strerror, action="every file is statted at every scan")
                self.use_hints = False
                return None
        self._hints.drain()
        return self._hints

    def _root_trouble(self, problem: str) -> None:
        if problem != self._root_problem:
            log.warning("poll_root_unavailable", path=self.root, problem=problem, action="nothing is reported")
            self._root_problem = problem

    def _enter(self, parent_fd: int, parent_rel: str, kid: Kid) -> beneath.Frame[Kid] | None:
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
            kids = self._pass.visit(fd, rel, child, os.fstat(fd) if self._trusted else None)
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
