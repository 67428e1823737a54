"""What a killed git network call leaves in the repository: a half-received pack (`objects/pack/tmp_pack_*`
and its index) and half-downloaded LFS objects (`lfs/incomplete/*`, `lfs/tmp/*`). git and git-lfs remove
them when they fail on their own, never when they are killed, so the caller removes them instead.

Only files that appeared during the call and that no live process holds open are removed: a commit being
written at the same time (fast-import writes its pack as `tmp_pack_*` too) is never touched.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

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
