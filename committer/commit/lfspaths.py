"""The paths HEAD stores through LFS: kept in the git dir, and as git's attributes for them."""

from __future__ import annotations

import os
from collections.abc import Iterable

from committer.core import fsio
from committer.git import lfs
from committer.git.layout import state_dir
from committer.git.repo import GitRepo


class LfsPaths:
    """Which paths of HEAD are LFS pointers, as the last commit or pull left them (one owner: the commit side)."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self.file = state_dir(repo.git_dir) / "lfs-paths"
        self.paths = self._load()

    def _load(self) -> set[str]:
        try:
            raw = self.file.read_bytes()
        except OSError:
            return set()
        return {os.fsdecode(p) for p in raw.split(b"\0") if p}

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __bool__(self) -> bool:
        return bool(self.paths)

    def update(self, changed: Iterable[str], now_lfs: Iterable[str]) -> None:
        """Of the `changed` paths, exactly `now_lfs` are LFS pointers in HEAD now (after a commit or a pull)."""
        paths = set(self.paths)
        paths.difference_update(changed)
        paths.update(now_lfs)
        if paths != self.paths:
            self.replace(paths)

    def replace(self, paths: set[str]) -> None:
        """Exactly `paths` are LFS pointers in HEAD now (after a checkout of the remote's history)."""
        self.paths = set(paths)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fsio.write_atomic(self.file, b"".join(os.fsencode(p) + b"\0" for p in sorted(paths)))
        # git status must clean LFS files to their pointers, or it sees them modified forever
        lfs.write_attributes(self.repo.git_dir, paths)
