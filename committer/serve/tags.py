"""The snapshot tags every history page shows, read once per change of the tags rather than once per page.

Whether the tags changed is seen without git: a tag is written as a file under `refs/tags` (created, or
replaced by a rename, which changes its folder's mtime) or lands in `packed-refs` (rewritten whole). While
every folder of `refs/tags` and `packed-refs` keep their stat, the tags read last are the tags now. A stat
taken within a second of the change it shows is not trusted (two changes in one timestamp tick)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from committer.git.repo import GitRepo

_RACY_NS = 1_000_000_000
_lock = threading.Lock()
_kept: dict[Path, tuple[tuple[int, ...], dict[str, list[str]]]] = {}


def snapshot_tags(repo: GitRepo) -> dict[str, list[str]]:
    """Commit id -> the tags (snapshots) on it (a copy: callers may change it)."""
    stamp = _stamp(repo.git_dir)
    with _lock:
        kept = _kept.get(repo.git_dir)
    if stamp is not None and kept is not None and kept[0] == stamp:
        return {sha: list(names) for sha, names in kept[1].items()}
    found = _read(repo)
    if stamp is not None:
        with _lock:
            _kept[repo.git_dir] = (stamp, found)
    return {sha: list(names) for sha, names in found.items()}


def _read(repo: GitRepo) -> dict[str, list[str]]:
    out = repo.git("for-each-ref", "--format=%(objectname)%00%(*objectname)%00%(refname:strip=2)",
                   "refs/tags/").stdout.decode("utf-8", "replace")
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        parts = line.split("\x00")
        if len(parts) == 3:
            found.setdefault(parts[1] or parts[0], []).append(parts[2])
    return found


def _stamp(git_dir: Path) -> tuple[int, ...] | None:
    """The stat of packed-refs and of every folder under refs/tags; None when one is too fresh to trust."""
    stamp: list[int] = []
    limit = time.time_ns() - _RACY_NS
    try:
        st = os.stat(git_dir / "packed-refs")
        stamp += [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]
        if max(st.st_mtime_ns, st.st_ctime_ns) >= limit:
            return None
    except FileNotFoundError:
        stamp.append(-1)
    folders = [os.path.join(git_dir, "refs", "tags")]
    while folders:
        folder = folders.pop()
        try:
            st = os.stat(folder)
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            stamp.append(-2)
            continue
        except OSError:
            return None
        if max(st.st_mtime_ns, st.st_ctime_ns) >= limit:
            return None
        stamp += [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, len(entries)]
        folders += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    return tuple(stamp)


def branch_stamp(git_dir: Path, ref: str) -> tuple[int, ...] | None:
    """The stat of the branch's ref file and of packed-refs, which change whenever the branch moves (a ref
    is rewritten by a rename): while they keep it, what was read from the branch's tip still holds. None
    when neither exists (refs kept some other way) or one is too fresh to trust."""
    stamp: list[int] = []
    limit = time.time_ns() - _RACY_NS
    for file in (git_dir / ref, git_dir / "packed-refs"):
        try:
            st = os.stat(file)
        except FileNotFoundError:
            stamp.append(-1)
            continue
        except OSError:
            return None
        if max(st.st_mtime_ns, st.st_ctime_ns) >= limit:
            return None
        stamp += [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]
    return tuple(stamp) if len(stamp) > 2 else None
