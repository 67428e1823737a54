"""Git's index written from stat data already taken, so a first commit is not read twice.

After a whole-tree commit the index must match HEAD with real stat data, or the next `git status`
re-reads every file. `git read-tree` + `git update-index --refresh` does that by hashing every file
again: 1.4 s on 100k files of 2 KB. The commit step has just read and hashed each of them, so it
hands over what it saw (the first 60 bytes of an index entry: stat fields, mode, blob id), and the
index is written directly in git's version 2 format. A hint is used only when its mode and blob id
are the ones HEAD has for that path; every other entry is written with zero stat data, which
`update-index --refresh` then checks against the file as git always does.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from pathlib import Path

_ENTRY_HEAD = struct.Struct(">10I20s")  # ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size, id
_NO_STAT = bytes(24)  # ctime, mtime, dev, ino all zero: git re-checks the file
_NO_OWNER = bytes(12)  # uid, gid, size
_U32 = 0xFFFFFFFF
# A file changed within this long before it was read could change again inside the same timestamp
# tick without its stat data changing: no hint for it (git's "racy" entries, made stricter).
RACY_NS = 1_000_000_000

HINT_SIZE = _ENTRY_HEAD.size  # 60 bytes: what an index entry holds before its path
TreeRow = tuple[str, str]  # mode, blob id

def hint(st: os.stat_result, mode: str, sha: str) -> bytes:
    """What an index entry holds for a file read with this stat data, mode and blob id."""
    return _ENTRY_HEAD.pack(
        int(st.st_ctime) & _U32, st.st_ctime_ns % 1_000_000_000,
        int(st.st_mtime) & _U32, st.st_mtime_ns % 1_000_000_000,
        st.st_dev & _U32, st.st_ino & _U32, int(mode, 8),
        st.st_uid & _U32, st.st_gid & _U32, st.st_size & _U32,
        bytes.fromhex(sha),
    )


def write(
    git_dir: Path, entries: Iterable[tuple[str, TreeRow]], hints: Iterable[tuple[str, bytes]]
) -> int | None:
    """Replace the index with `entries` (path, (mode, blob id)), in git's order, taking each one's stat
    data from `hints` (path, entry head; same order) where mode and blob id agree. Streamed: written as
    read, never whole in memory. Returns how many entries came with stat data; None when git holds the
    index lock (nothing is written)."""
    lock = git_dir / "index.lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return None
    try:
        with os.fdopen(fd, "w+b", buffering=1 << 20) as handle:
            handle.write(b"DIRC" + struct.pack(">II", 2, 0))
            count, used = 0, 0
            pending = iter(hints)
            hint = next(pending, None)
            for path, (mode, sha) in entries:
                raw = os.fsencode(path)
                while hint is not None and os.fsencode(hint[0]) < raw:
                    hint = next(pending, None)
                binary = bytes.fromhex(sha)
                mode_bytes = struct.pack(">I", int(mode, 8))
                head = hint[1] if hint is not None and hint[0] == path else None
                if head is None or head[24:28] != mode_bytes or head[40:60] != binary:
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
        os.replace(lock, git_dir / "index")
    except BaseException:
        lock.unlink(missing_ok=True)
        raise
    return used
