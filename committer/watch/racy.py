"""Racy files of the poll observer (git's idea, Documentation/technical/racy-git.txt): a stat taken in
the same timestamp tick as a file's last write cannot show a second write in that tick with the same
size, so such a file's content is hashed and compared again at every scan while it stays racy."""

from __future__ import annotations

import hashlib
import os
import stat

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ = 1 << 20
NO_DIGEST = b""  # a racy file that could not be hashed: report it again at the next scan


class Racy:
    """Which entries are racy in the current scan, and their content digests."""

    def __init__(self, minimal: bool, hash_limit: int) -> None:
        self.minimal = minimal
        self.hash_limit = hash_limit
        self.lo = self.hi = self.fresh_lo = 0
        self.hashed = 0

    def window(self, lo: int, hi: int, fresh_lo: int) -> None:
        """The scan's racy window: mtimes (and ctimes) in [lo, hi], nanoseconds; and its fresh window,
        [fresh_lo, hi]: files written so recently that they may still be being written."""
        self.lo, self.hi, self.fresh_lo, self.hashed = lo, hi, fresh_lo, 0

    def racy(self, st: os.stat_result) -> bool:
        if self.lo <= st.st_mtime_ns <= self.hi:
            return True
        return not self.minimal and self.lo <= st.st_ctime_ns <= self.hi

    def fresh(self, st: os.stat_result) -> bool:
        if self.fresh_lo <= st.st_mtime_ns <= self.hi:
            return True
        return not self.minimal and self.fresh_lo <= st.st_ctime_ns <= self.hi

    def recheck_all(self, fd: int, rel: str, known: dict[str, bytes], report: list[str]) -> dict[str, bytes] | None:
        """The racy files of a directory whose stats did not change; None if one is gone meanwhile."""
        prefix = f"{rel}/" if rel else ""
        racy: dict[str, bytes] = {}
        for name, digest in known.items():
            try:
                st = os.lstat(name, dir_fd=fd)
            except OSError:
                return None
            self.recheck(fd, prefix + name, name, st, digest, racy, report)
        return racy

    def recheck(self, fd: int, path: str, name: str, st: os.stat_result, digest: bytes,
                racy: dict[str, bytes], report: list[str]) -> None:
        """A racy file whose stat did not change: compare its content with the last scan's."""
        now = self.digest(fd, name, st)
        if now == NO_DIGEST or now != digest:
            report.append(path)
        if self.racy(st):
            racy[name] = now

    def digest(self, fd: int, name: str, st: os.stat_result) -> bytes:
        """Content digest of a file or symlink; NO_DIGEST when it cannot or should not be read."""
        self.hashed += 1
        try:
            if stat.S_ISLNK(st.st_mode):
                return b"l" + hashlib.blake2b(os.fsencode(os.readlink(name, dir_fd=fd)), digest_size=16).digest()
            if not stat.S_ISREG(st.st_mode) or st.st_size > self.hash_limit:
                return NO_DIGEST
            file_fd = os.open(name, _FILE_FLAGS, dir_fd=fd)
        except OSError:
            return NO_DIGEST
        try:
            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                return NO_DIGEST
            h = hashlib.blake2b(digest_size=16)
            while chunk := os.read(file_fd, _READ):
                h.update(chunk)
            return b"f" + h.digest()
        except OSError:
            return NO_DIGEST
        finally:
            os.close(file_fd)
