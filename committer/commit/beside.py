"""What a sync tool beside the daemon leaves in a batch, looked at before it is committed: rclone bisync's
conflict files (folded, or only reported) and a file a pull just wrote, overwritten without the pulled
change (the pulled version kept beside it). Each is a conflict: logged, told (`git_conflict`) and listed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from committer.commit import bisync
from committer.commit.config import CommitConfig
from committer.commit.pulled import PullWrites, Retitle
from committer.core import events, fsio, logs
from committer.git.repo import GitRepo

log = logs.get("committer.commit.step")

OnConflict = Callable[[dict[str, str]], None]  # a conflict found here (path, copy, why, kind)


def _unheard(_item: dict[str, str]) -> None:
    """The OnConflict of a commit side whose conflicts nobody lists."""


class Beside:
    """One per commit step, used on its thread only (the main loop)."""

    def __init__(self, config: CommitConfig, repo: GitRepo, scratch: Path, emit: events.Emit = events.nothing
                 ) -> None:
        self.config = config
        self.repo = repo
        self.scratch = scratch  # where the three-way check writes its inputs
        self.emit = emit
        self.pulled = PullWrites()  # what the last pulls wrote: a write over it without its change is a conflict
        self.on_conflict: OnConflict = _unheard  # where conflicts found here are listed (status)
        # seconds after which a reconcile should try again a fold that had to wait (None: none waits), and the
        # notes waiting: a pull leaves them alone (rclone renamed them away; their absence is no deletion)
        self.fold_again: float | None = None
        self.folding: set[str] = set()
        self.pause: Callable[[float], object] = threading.Event().wait  # bounded, see _fold
        # a copy of a pulled version gets its own frontmatter title (sync/frontmatter.py, set by the pull side)
        self.retitle: Retitle = lambda _path, _copy, content: content
        self._kept: set[str] = set()  # rclone conflict files already reported (bisync_conflicts = keep)

    def look(self, candidates: Iterable[str], head: str) -> tuple[list[str], int]:
        """The batch's paths with what the conflicts found add (copies, folded names) or hold back (a fold
        that waits), and how many conflicts were found."""
        paths = list(candidates)
        if "" in paths:
            return paths, 0
        self.fold_again = None
        found = self.pulled.check(self.repo, paths, set(paths).__contains__, self.scratch, self.retitle)
        for item in found:
            paths.append(item["copy"])
            self._conflict(item, "pull_overwritten")
        count = len(found)
        try:
            opened = fsio.Tree(self.repo.data_dir)
        except (FileNotFoundError, NotADirectoryError):
            return paths, count  # the data directory is gone: the step's own guard decides what that means
        with opened as tree:
            self.folding = {note for note in self.folding if bisync.has_files(tree, note)}
            for group in bisync.find(tree, paths, lambda notes: set(self.repo.ls_tree(head, notes))):
                if self.config.bisync_conflicts == bisync.KEEP:
                    if not set(group.members) <= self._kept:
                        self._kept.update(group.members)
                        other = group.members[1] if len(group.members) > 1 else ""
                        self._conflict({"path": group.members[0], "copy": other,
                                        "why": "rclone bisync conflict, left as rclone made it"}, "bisync")
                    continue
                folded = self._fold(tree, group, set(paths))
                if folded is None:  # rclone may still be writing: the note and its files wait for the next try
                    left = {group.path, *group.members}
                    paths = [p for p in paths if p not in left]
                    self.fold_again = self.config.settled
                    self.folding.add(group.path)
                    continue
                self.folding.discard(group.path)
                self.pulled.forget(group.path)  # every version is kept already: no second copy of the pulled one
                paths += [group.path, *folded.moved, *folded.copies]
                log.info("bisync_conflict_folded", path=group.path, moved=folded.moved)
                for copy in folded.copies:
                    self._conflict({"path": group.path, "copy": copy, "why": "rclone bisync conflict: the newer "
                                    "version kept the note's path, the other is beside it"}, "bisync")
                    count += 1
        return paths, count

    def _fold(self, tree: fsio.Tree, group: bisync.Group, taken: set[str]) -> bisync.Folded | None:
        """The fold, after one short wait (at most `settled` seconds, half the debounce or less) when a file
        was changed just now: a `committer pull` run right after bisync comes that soon."""
        for last in (False, True):
            folded = bisync.fold(tree, group, time.time(), taken.__contains__, settled=self.config.settled)
            if folded is not None or last:
                return folded
            self.pause(self.config.settled)
        return None

    def _conflict(self, item: dict[str, str], kind: str) -> None:
        log.warning("git_conflict", kind=kind, path=item["path"], copy=item["copy"], why=item["why"])
        self.on_conflict({**item, "kind": kind})
        self.emit(events.git_conflict(path=item["path"], copy=item["copy"], why=item["why"], remote_head=None))
