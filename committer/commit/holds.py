"""The mass-deletion hold of one repository: the guard applied to each commit's deletions, moves paired
first, and the hold kept until it is confirmed or the files come back (one owner: the commit side)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from committer.commit import similar
from committer.commit.changes import ChangeSet
from committer.core import clock, events, fsio, logs
from committer.git.repo import GitRepo
from committer.policy import guard
from committer.policy.filters import PathFilter
from committer.policy.guard import Hold

log = logs.get(__name__)


class Holds:
    """The standing hold (or None) and the decisions that make, grow, shrink and release it."""

    def __init__(self, max_delete: int, repo: GitRepo, pfilter: PathFilter, hold: Hold | None = None,
                 emit: events.Emit = events.nothing) -> None:
        self.max_delete = max_delete  # a pass deleting more tracked files than this is held
        self.repo = repo
        self.pfilter = pfilter
        self.hold = hold
        self.emit = emit

    def data_dir_state(self) -> str:
        """ok, empty (nothing but ignored entries: an unmounted bucket looks like this) or missing."""
        try:
            with os.scandir(self.repo.data_dir) as entries:
                for entry in entries:
                    if not self.pfilter.ignored(entry.name, is_dir=entry.is_dir(follow_symlinks=False)):
                        return "ok"
        except OSError:
            return "missing"
        return "empty"

    def apply(self, changes: ChangeSet, head: str | None, **context: Any) -> None:
        """Pair moves first, with edits too (they pass), then hold unpaired deletions past max_delete; what a
        standing hold held and this commit adds under another name leaves the hold as a rename."""
        renames: dict[str, str] = {}
        if changes.deleted:
            renames = similar.pair_moves(self.repo, changes)  # the same content, or a similar one
            unpaired = [p for p in changes.deleted if p not in renames]
            allowed: frozenset[str] = frozenset()
            if unpaired:
                decision = guard.decide(unpaired, max_delete=self.max_delete,
                                        data_dir_state=self.data_dir_state(), hold=self.hold,
                                        now=clock.iso(clock.now(), ms=True))
                allowed = decision.allowed
                self._set(decision.hold, decision.new_hold, **context)
            changes.keep_deletions(allowed | frozenset(renames))
        renames.update(self._moved_out(changes, renames, head))
        changes.renames = renames
        self.release()

    def untrack(self, paths: list[str]) -> frozenset[str]:
        """The tracked files the ignore rules now exclude that may leave the tree now; the rest are held."""
        decision = guard.decide(paths, max_delete=self.max_delete, data_dir_state="ok", hold=self.hold,
                                now=clock.iso(clock.now(), ms=True), reason=guard.IGNORE_RULES)
        self._set(decision.hold, decision.new_hold)
        return decision.allowed

    def _set(self, hold: Hold | None, new: bool, **context: Any) -> None:
        self.hold = hold
        if new and hold is not None:
            log.warning("hold", reason=hold.reason, count=len(hold.paths), paths=sorted(hold.paths)[:10],
                        release="committer confirm-deletes, or committer put-back", **context)
            self.emit(events.hold(action=events.SET, reason=hold.reason, paths=sorted(hold.paths),
                                  batch=context.get("batch")))

    def _moved_out(self, changes: ChangeSet, renames: Mapping[str, str], head: str | None) -> dict[str, str]:
        """Additions whose content a held deletion had: the other half of a move that arrived in an earlier
        batch. Those held paths leave the hold and are deleted in this commit, as renames."""
        hold = self.hold
        if hold is None or not changes.added:
            return {}
        held = self.repo.ls_tree(head, sorted(hold.paths))
        with self.gone() as still_gone:
            gone = {p: e.sha for p, e in held.items() if p in hold.paths and still_gone(p)}
        targets = set(renames.values())
        added = {p: sha for p, sha in changes.additions(set(gone.values())).items() if p not in targets}
        pairs = guard.pair_renames(added, gone)
        if pairs:
            changes.kept_deleted.update({p: gone[p] for p in pairs})
            self.hold = guard.release(hold, lambda p: p not in pairs)
            log.info("hold_moves", count=len(pairs), paths=sorted(pairs)[:10],
                     why="their content came back under other names: committed as renames")
        return pairs

    @contextlib.contextmanager
    def gone(self) -> Iterator[Callable[[str], bool]]:
        """Whether a held deletion still stands: the file is not there (reached without a symlink) or
        is ignored now. With the data directory away, every deletion stands."""
        try:
            tree = fsio.Tree(self.repo.data_dir)
        except OSError:
            yield lambda _rel: True
            return
        with tree:
            yield lambda rel: self.pfilter.ignored(rel) or not tree.exists(rel)

    def release(self) -> None:
        """Drop held deletions whose files came back; log when the whole hold is gone."""
        before = self.hold
        with self.gone() as still_gone:
            self.hold = guard.release(before, still_gone)
        if before is not None and self.hold is None:
            log.info("hold_released", reason=before.reason, why="the files came back")
            self.emit(events.hold(action=events.RELEASED, reason=before.reason, paths=sorted(before.paths)))

    def take(self) -> tuple[Hold, list[str]] | None:
        """The standing hold and its deletions that still stand, for confirm-deletes; the hold is gone."""
        hold = self.hold
        if hold is None:
            return None
        with self.gone() as still_gone:
            standing = [p for p in sorted(hold.paths) if still_gone(p)]
        self.hold = None
        self.emit(events.hold(action=events.RELEASED, reason=hold.reason, paths=sorted(hold.paths)))
        return hold, standing
