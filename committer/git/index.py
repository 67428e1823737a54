"""Git's index, read and written by committer itself as a stream: it is only a stat cache here.

The index tells which files may have changed since they were last read (their stat data differs from
what it recorded), so a reconcile reads only those. git keeps the whole index in memory to answer
`git status` (186 MB for 300,000 files, all of them changed), and `read-tree` + `update-index
--refresh` hash every file again to fill it; committer reads and writes git's version 2 format entry
by entry instead, in path order, next to HEAD's tree as `git ls-tree` prints it:

* the stat data of an entry comes from the pass that just read the file (a hint: the first 60 bytes
  of an index entry, taken with the blob id the commit step computed), else from the old index when
  its mode and blob id are still HEAD's, else it is zero, which makes the next reconcile read the
  file again (and git re-check it, for anyone running git by hand);
* a file written or changed within RACY_NS before it was read gets no hint (git's "racy" entries,
  made stricter), and an entry is trusted only when its mtime is older than the index file itself.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat as stat_module
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

_ENTRY_HEAD = struct.Struct(">10I20s")  # ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size, id
_NO_STAT = bytes(24)  # ctime, mtime, dev, ino all zero: re-checked
_NO_OWNER = bytes(12)  # uid, gid, size
_U32 = 0xFFFFFFFF
_NS = 1_000_000_000
RACY_NS = 1_000_000_000

HINT_SIZE = _ENTRY_HEAD.size  # 60 bytes: what an index entry holds before its flags and path
TreeRow = tuple[str, str]  # mode, blob id
# Stat fields compared: ctime s/ns, mtime s/ns, (not dev: git leaves it out too), ino, mode, uid, gid, size.
_COMPARED = ((0, 16), (20, 40))


def entry_count(path: Path) -> int:
    """How many entries an index file says it holds (its header), 0 when there is none or it is not one."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return 0
    if len(head) < 12 or head[:4] != b"DIRC":
        return 0
    return int(struct.unpack(">I", head[8:12])[0])


def hint(st: os.stat_result, mode: str, sha: str) -> bytes:
    """What an index entry holds for a file read with this stat data, mode and blob id."""
    return _ENTRY_HEAD.pack(
        int(st.st_ctime) & _U32, st.st_ctime_ns % _NS,
        int(st.st_mtime) & _U32, st.st_mtime_ns % _NS,
        st.st_dev & _U32, st.st_ino & _U32, int(mode, 8),
        st.st_uid & _U32, st.st_gid & _U32, st.st_size & _U32,
        bytes.fromhex(sha),
    )


def same_stat(head: bytes, st: os.stat_result) -> bool:
    """Whether an entry's stat data says the file (lstat'ed now) is unchanged; never for zero stat data."""
    if head[:24] == _NO_STAT:
        return False
    now = hint(st, _mode(st), head[40:60].hex())
    return all(head[a:b] == now[a:b] for a, b in _COMPARED)


def _mode(st: os.stat_result) -> str:
    if stat_module.S_ISLNK(st.st_mode):
        return "120000"
    return "100755" if st.st_mode & stat_module.S_IXUSR else "100644"


class Index:
    """An index file of git's version 2, read entry by entry from a map of it (nothing is copied whole)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self.count = 0
        self.mtime = 0
        self.usable = False
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if st.st_size < 32:
                return
            self._map = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        signature, version, count = struct.unpack_from(">4sII", self._map, 0)
        self.mtime, self.count = int(st.st_mtime), count
        self.usable = signature == b"DIRC" and version == 2

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """(path bytes, entry head) of every stage-0 entry, in the index's order (git's path order)."""
        data = self._map
        if data is None or not self.usable:
            return
        pos = 12
        for _ in range(self.count):
            head = data[pos : pos + HINT_SIZE]
            (flags,) = struct.unpack_from(">H", data, pos + HINT_SIZE)
            if flags & 0x4000:
                return  # an extended flag: a version 3 entry in a version 2 file; stop trusting it
            start = pos + HINT_SIZE + 2
            length = flags & 0xFFF
            path = data[start : start + length] if length < 0xFFF else data[start : data.find(b"\0", start)]
            pos += (HINT_SIZE + 2 + len(path) + 8) & ~7  # padded with 1 to 8 NULs to a multiple of 8
            if (flags >> 12) & 3 == 0:
                yield path, head

    def trusted(self, head: bytes) -> bool:
        """Whether an entry's stat data may be trusted: written after the file was last changed."""
        (mtime,) = struct.unpack_from(">I", head, 8)
        return head[:24] != _NO_STAT and mtime < (self.mtime & _U32)


def write(
    git_dir: Path, entries: Iterable[tuple[str, TreeRow]], hints: Iterable[tuple[str, bytes]],
    old: Iterable[tuple[bytes, bytes]] = (),
) -> int | None:
    """Replace the index with `entries` (path, (mode, blob id)), in git's order, taking each one's stat
    data from `hints` (path, entry head) or else from the `old` index's entries (path bytes, entry head),
    both in the same order, where mode and blob id agree. Streamed: written as read, never whole in
    memory. Returns how many entries came with stat data; None when the index lock is taken (nothing is
    written)."""
    lock = git_dir / "index.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return None
    try:
        with os.fdopen(fd, "w+b", buffering=1 << 20) as handle:
            handle.write(b"DIRC" + struct.pack(">II", 2, 0))
            count, used = 0, 0
            fresh, kept = _Cursor((os.fsencode(p), h) for p, h in hints), _Cursor(iter(old))
            for path, (mode, sha) in entries:
                raw = os.fsencode(path)
                binary = bytes.fromhex(sha)
                mode_bytes = struct.pack(">I", int(mode, 8))
                head = None
                for candidate in (fresh.at(raw), kept.at(raw)):
                    if candidate is not None and candidate[24:28] == mode_bytes and candidate[40:60] == binary:
                        head = candidate
                        break
                if head is None or head[:24] == _NO_STAT:
                    head = _NO_STAT + mode_bytes + _NO_OWNER + binary
                else:
                    used += 1
                entry = head + struct.pack(">H", min(len(raw), 0xFFF)) + raw
                handle.write(entry + b"\0" * (8 - len(entry) % 8))  # 1 to 8 NULs, to a multiple of 8
                count += 1
            handle.seek(8)
            handle.write(struct.pack(">I", count))
            handle.flush()
            handle.seek(0)
            digest = hashlib.sha1(usedforsecurity=False)
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
            handle.write(digest.digest())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(lock, git_dir / "index")
    except BaseException:
        lock.unlink(missing_ok=True)
        raise
    return used


class _Cursor:
    """Walks a sorted stream of (path bytes, entry head) alongside another sorted stream."""

    def __init__(self, items: Iterator[tuple[bytes, bytes]]) -> None:
        self._items = items
        self._current = next(items, None)

    def at(self, path: bytes) -> bytes | None:
        """The head for `path`, skipping everything before it; None when the stream has no such path."""
        while self._current is not None and self._current[0] < path:
            self._current = next(self._items, None)
        if self._current is not None and self._current[0] == path:
            return self._current[1]
        return None
