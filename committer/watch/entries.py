"""What the poll observer keeps of the tree between scans: per directory its entry names joined in one
string and one 64-bit fingerprint per entry (watch.scanner), and the figures of a scan."""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass

S_IFMT, S_IFDIR = 0o170000, 0o040000

# Fingerprints that are not stat hashes. File fingerprints are 64-bit tuple hashes; one of them
# equal to a marker is as likely as any other hash collision (2**-64).
DIR = hash(("committer.scanner", "dir"))
IGN_DIR = hash(("committer.scanner", "ignored dir"))
IGN_FILE = hash(("committer.scanner", "ignored file"))
IGNORED = (IGN_DIR, IGN_FILE)

EMPTY: frozenset[str] = frozenset()

Kid = tuple[str, "DirState"]


class Discard(list[str]):
    """Where the first scan's findings go: nowhere."""

    def append(self, _path: str, /) -> None:
        pass


class DirState:
    """What one directory held when it was last looked at."""

    __slots__ = ("checks", "children", "dirty", "fps", "gen", "ignored", "names", "nested", "racy", "relist",
                 "seen", "stamp", "wd")

    def __init__(self) -> None:
        self.names = ""  # entry names in listing order, joined by NUL
        self.fps: array[int] = array("q")  # one fingerprint per name
        self.ignored: frozenset[str] = EMPTY
        self.children: dict[str, DirState] = {}  # subdirectories that are not ignored
        self.racy: dict[str, bytes] | None = None  # name -> content digest, racy files only
        self.gen = -1  # generation of the ignore rules its decisions were made with
        self.nested = False  # a nested git repository: never descended
        self.relist = True  # its names must be read from the filesystem at the next visit
        self.stamp = 0  # hash of its own mtime and inode when it was last listed
        self.wd = -1  # its inotify watch (watch.hints), where it has one
        self.dirty = True  # an event came since its files were last statted (watch.hints)
        self.checks = 0  # scans since its files were last statted (watch.hints)
        self.seen = -1  # the last scan that visited it (watch.hints)

    def clear(self) -> None:
        self.names, self.fps, self.ignored, self.children, self.racy = "", array("q"), EMPTY, {}, None
        self.relist = True


@dataclass
class ScanStats:
    """Figures of the last scan, for logs and metrics."""

    files: int = 0
    dirs: int = 0
    listed: int = 0
    skipped: int = 0  # folders whose files were not statted: no event, mtime unchanged (watch.hints)
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
            (IGN_DIR if (st := lstat(n, dir_fd=fd)).st_mode & S_IFMT == S_IFDIR else IGN_FILE)
            if n in ignored
            else DIR if (st := lstat(n, dir_fd=fd)).st_mode & S_IFMT == S_IFDIR
            else hash((st.st_mtime_ns, st.st_size, st.st_mode))
            for n in names
        ])
    return array("q", [
        (IGN_DIR if (st := lstat(n, dir_fd=fd)).st_mode & S_IFMT == S_IFDIR else IGN_FILE)
        if n in ignored
        else DIR if (st := lstat(n, dir_fd=fd)).st_mode & S_IFMT == S_IFDIR
        else hash((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode))
        for n in names
    ])

def fingerprint(st: os.stat_result, minimal: bool) -> int:
    """The same as fingerprints, for one entry that is not ignored."""
    if st.st_mode & S_IFMT == S_IFDIR:
        return DIR
    if minimal:
        return hash((st.st_mtime_ns, st.st_size, st.st_mode))
    return hash((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode))
