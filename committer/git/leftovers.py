"""What a killed git network call leaves in the repository: a half-received pack (`objects/pack/tmp_pack_*`
and its index) and half-downloaded LFS objects (`lfs/incomplete/*`, `lfs/tmp/*`). git and git-lfs remove
them when they fail on their own, never when they are killed, so the caller removes them instead, however
the call ended: killed at a limit, by a signal that stops a command, or by a daemon's second signal (which
removes those of every call still under way, see `Call.track`).

Only files that appeared during the call and that no live process holds open are removed: a commit being
written at the same time (fast-import writes its pack as `tmp_pack_*` too) is never touched.

`Call.written` also measures what a call writes there, for max_transfer where /proc's `write_bytes` counts
nothing (tmpfs, kernels without I/O accounting).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from committer.core import logs
from committer.git.activity import wait_ended

log = logs.get("committer.remote")

# (folder inside the git dir, name prefix); committer's own LFS temporaries are cleaned by git/lfs.py.
_PLACES = (("objects/pack", "tmp_"), ("lfs/incomplete", ""), ("lfs/tmp", ""))
_OWN = "committer-"


def snapshot(git_dir: Path) -> frozenset[str]:
    """The temporary files there are now (paths relative to the git dir)."""
    found = set()
    for folder, prefix in _PLACES:
        try:
            with os.scandir(git_dir / folder) as entries:
                for entry in entries:
                    if entry.name.startswith(prefix) and not entry.name.startswith(_OWN):
                        found.add(f"{folder}/{entry.name}")
        except (FileNotFoundError, NotADirectoryError):
            continue
    return frozenset(found)


def remove(git_dir: Path, before: frozenset[str]) -> dict[str, int]:
    """Remove the temporaries that appeared since `before` and that nobody has open; {path: size} removed."""
    new = snapshot(git_dir) - before
    if not new:
        return {}
    held = _open_files()
    removed = {}
    for name in sorted(new):
        path = git_dir / name
        try:
            info = path.lstat()
            if (info.st_dev, info.st_ino) in held or not path.is_file():
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed[name] = info.st_size
    return removed


class Call:
    """One network git call's temporaries: those there before it started (never its own), the growth of
    those it writes, and their removal once it ended."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self.before = snapshot(git_dir)
        self._root = os.path.realpath(git_dir)
        self._start: dict[tuple[int, int], int] = {}
        for name in self.before:
            with contextlib.suppress(OSError):
                info = (git_dir / name).lstat()
                self._start[(info.st_dev, info.st_ino)] = info.st_size
        self._grown: dict[tuple[int, int], int] = {}
        self._pgid: int | None = None

    def track(self, pgid: int) -> None:
        """The call runs as process group `pgid`: until `untrack`, a daemon's second signal cleans up after it."""
        self._pgid = pgid
        _CALLS[pgid] = self

    def untrack(self) -> None:
        if self._pgid is not None:
            _CALLS.pop(self._pgid, None)

    def written(self, members: Iterable[int]) -> int:
        """Bytes the call's processes (`members`) have written to the git dir's temporary files (a pack being
        received, a quarantine, a loose object being written, an LFS partial): the growth since the call
        started of each such file one of them holds open for writing, at the largest size seen. A file
        another process writes (a commit's pack) is never counted."""
        for pid in members:
            for key, size in _writing(pid, self._root):
                grown = size - self._start.get(key, 0)
                if grown > self._grown.get(key, 0):
                    self._grown[key] = grown
        return sum(self._grown.values())

    def clean(self, wait: float = 5.0) -> dict[str, int]:
        """After the call was killed: wait (at most `wait` seconds) for its processes to end, so that none
        holds its temporaries open, then remove those that appeared since it started; {path: size} removed."""
        if self._pgid is not None:
            wait_ended(self._pgid, wait)
        removed = remove(self.git_dir, self.before)
        if removed:
            log.info("transfer_leftovers_removed", files=len(removed), bytes=sum(removed.values()))
        return removed


# The network calls under way, by process group: what a daemon's second signal cleans up before it exits.
_CALLS: dict[int, Call] = {}


def clean_all(wait: float) -> None:
    """Remove the temporaries of every network call under way (their processes were just killed), waiting
    at most `wait` seconds in all for those processes to end. Safe in any thread: no lock is taken."""
    deadline = time.monotonic() + wait
    for call in tuple(_CALLS.values()):
        with contextlib.suppress(OSError):
            call.clean(max(0.0, deadline - time.monotonic()))


def _temporary(rel: str) -> bool:
    """Whether a path inside the git dir is a temporary a network call writes."""
    parts = rel.split("/")
    if parts[0] == "lfs":
        return len(parts) >= 3 and parts[1] in ("incomplete", "tmp")
    return parts[0] == "objects" and len(parts) >= 3 and (
        parts[1].startswith("incoming-") or parts[-1].startswith("tmp_"))


def _writing(pid: int, root: str) -> Iterator[tuple[tuple[int, int], int]]:
    """((device, inode), size) of each temporary file under `root` that process `pid` has open for writing."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if not target.startswith(root + "/") or not _temporary(
                    target[len(root) + 1:].removesuffix(" (deleted)")):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as fh:
                flags = next(int(line.split()[1], 8) for line in fh if line.startswith(b"flags:"))
            if flags & os.O_ACCMODE == os.O_RDONLY:
                continue
            info = os.stat(f"/proc/{pid}/fd/{fd}")
        except (OSError, ValueError, IndexError, StopIteration):
            continue
        yield (info.st_dev, info.st_ino), info.st_size


def _open_files() -> set[tuple[int, int]]:
    """(device, inode) of every file a process we can see has open."""
    held = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    info = os.stat(f"/proc/{pid}/fd/{fd}")
                    held.add((info.st_dev, info.st_ino))
    return held
