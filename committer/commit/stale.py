"""Which paths may differ from HEAD, found without `git status` and in bounded memory: the reconcile's
list at start-up and after a rescan."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from committer.commit.walk import Walk, git_key
from committer.core import fsio
from committer.core.paths import COALESCE_ABOVE, coalesce, covered
from committer.git import index as gitindex
from committer.git.objects import TreeEntry
from committer.policy.filters import PathFilter


def stale_paths(
    data_dir: Path, pfilter: PathFilter, index: gitindex.Index, head: Iterator[tuple[str, TreeEntry]],
    most: int = COALESCE_ABOVE,
) -> set[str]:
    """Paths where the data directory may differ from HEAD: what `git status` lists, in bounded memory
    (git holds the whole index and every change). HEAD's entries (`head`, in git's order), the index's and
    the files on disk are merged as three sorted streams; a path is listed unless HEAD and the index agree
    on its blob and mode and the file's stat data matches a trusted entry (not zero, older than the
    index). Past `most` paths they are folded into directories."""
    found: set[str] = set()
    folded = False

    def add(rel: str) -> None:
        nonlocal found, folded
        if folded and covered(rel, found):
            return
        found.add(rel)
        if len(found) > most:
            found, folded = coalesce(found, most // 2), True

    try:
        tree = fsio.Tree(data_dir)
    except (FileNotFoundError, NotADirectoryError):
        return {""}
    with tree:
        walk = Walk(tree, pfilter)
        rows = _agreeing(index.entries(), head)
        row = next(rows, None)
        for rel, dir_fd, name in walk.files(walk.roots([""])):
            key = git_key(rel)
            while row is not None and row[0] < key:
                add(os.fsdecode(row[0]))  # in HEAD or the index, not on disk (or not reached)
                row = next(rows, None)
            if row is not None and row[0] == key:
                entry = row[1]
                row = next(rows, None)
                if entry is not None:
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except OSError:
                        add(rel)
                        continue
                    if index.trusted(entry) and gitindex.same_stat(entry, st):
                        continue
            add(rel)
        while row is not None:
            add(os.fsdecode(row[0]))
            row = next(rows, None)
        for item in walk.skipped:
            add(item.path)  # looked at again by the commit step, which skips it again or takes it
    return found


def _agreeing(
    index: Iterator[tuple[bytes, bytes]], head: Iterator[tuple[str, TreeEntry]]
) -> Iterator[tuple[bytes, bytes | None]]:
    """(path, index entry) of every path in the index or HEAD, in git's order; the entry is None unless
    both have the path with the same blob and mode (only then can stat data tell that nothing changed)."""
    old = next(index, None)
    new = next(head, None)
    while old is not None or new is not None:
        new_key = git_key(new[0]) if new is not None else None
        if old is not None and (new_key is None or old[0] < new_key):
            yield old[0], None  # in the index only
            old = next(index, None)
        elif new_key is not None and (old is None or new_key < old[0]):
            yield new_key, None  # in HEAD only
            new = next(head, None)
        elif old is not None and new is not None:
            entry = new[1]
            mode = int(entry.mode, 8).to_bytes(4, "big")
            same = old[1][40:60] == bytes.fromhex(entry.sha) and old[1][24:28] == mode
            yield old[0], old[1] if same else None
            old, new = next(index, None), next(head, None)
