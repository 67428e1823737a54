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
from collections.abc import Iterable, Mapping
from pathlib import Path

_ENTRY_HEAD = struct.Struct(">10I20s")  # ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size, id
_NO_STAT = bytes(24)  # ctime, mtime, dev, ino all zero: git re-checks the file
_NO_OWNER = bytes(12)  # uid, gid, size
_U32 = 0xFFFFFFFF
# A file changed within this long before it was read could change again inside the same timestamp
# tick without its stat data changing: no hint for it (git's "racy" entries, made stricter).
RACY_NS = 1_000_000_000

# At most this many hints (about 110 bytes each): past it, files are left for git's refresh to read,
# so a first commit of millions of files holds no more than about 30 MB of them.
MAX_HINTS = 250_000

def hint(st: os.stat_result, mode: str, sha: str) -> bytes:
    """What an index entry holds for a file read with this stat data, mode and blob id."""
    return _ENTRY_HEAD.pack(
        int(st.st_ctime) & _U32, st.st_ctime_ns % 1_000_000_000,
        int(st.st_mtime) & _U32, st.st_mtime_ns % 1_000_000_000,
        st.st_dev & _U32, st.st_ino & _U32, int(mode, 8),
        st.st_uid & _U32, st.st_gid & _U32, st.st_size & _U32,
        bytes.fromhex(sha),
    )


def build(entries: Iterable[tuple[str, str, str]], hints: Mapping[str, bytes]) -> tuple[bytes, int]:
    """A version 2 index of (path, mode, blob id) entries; also how many came with stat data."""
    rows = sorted((os.fsencode(path), mode, sha) for path, mode, sha in entries)
    out = [b"DIRC" + struct.pack(">II", 2, len(rows))]
    used = 0
    for raw, mode, sha in rows:
        head = hints.get(os.fsdecode(raw))
        binary = bytes.fromhex(sha)
        mode_bytes = struct.pack(">I", int(mode, 8))
        if head is None or head[24:28] != mode_bytes or head[40:60] != binary:
            head = _NO_STAT + mode_bytes + _NO_OWNER + binary
        else:
            used += 1
        entry = head + struct.pack(">H", min(len(raw), 0xFFF)) + raw
        out.append(entry + b"\0" * (8 - len(entry) % 8))  # 1 to 8 NULs, to a multiple of 8
    body = b"".join(out)
    return body + hashlib.sha1(body, usedforsecurity=False).digest(), used


def write(git_dir: Path, data: bytes) -> bool:
    """Replace the index the way git does (through index.lock); False when the lock is taken."""
    lock = git_dir / "index.lock"
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(lock, git_dir / "index")
    except BaseException:
        lock.unlink(missing_ok=True)
        raise
    return True
