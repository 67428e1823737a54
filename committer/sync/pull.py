"""Bringing the remote's commits into the repository and the data directory, never losing a local change.

Fast-forward when the local branch has nothing the remote lacks; otherwise a merge whose conflicts keep
the local version at its path and the remote's beside it as a conflict copy. Files are written before
the branch moves, so a crash in between leaves content the next reconcile commits, never a reverted
remote change. Whatever is written matches the new HEAD, so the watcher's events for it commit nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from committer.commit.changes import Skipped
from committer.commit.committer import Committer
from committer.core import clock, events, fsio, logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.events import PathLists
from committer.core.settings import Settings, policy
from committer.git import trees
from committer.git.objects import MODE_EXEC, MODE_FILE, MODE_GITLINK
from committer.git.repo import GitRepo
from committer.policy import guard
from committer.policy.filters import BMIGNORE, PathFilter
from committer.sync import pullrequest
from committer.sync.apply import Blobs, write_changes
from committer.sync.bootstrap import fetch_remote_head
from committer.sync.conflicts import settle_conflicts
from committer.sync.lfsfetch import fetch_lfs, pointers
from committer.sync.merge import merge_commit, merged_tree
from committer.sync.pullstate import CONFLICTS_KEPT, DIVERGED, PULL_DELETE, PullRecord
from committer.sync.refs import diverged_ref, pushed_ref, record_pushed
from committer.sync.unwritable import keep_unwritable

log = logs.get("committer.pull")


# Outcomes of one pull, as logged, counted and answered.
UP_TO_DATE, AHEAD, FAST_FORWARD, MERGE, HELD, REFUSED, NO_BRANCH, DIVERGED_OUT, PROPOSED = (
    "up_to_date", "ahead", "fast_forward", "merge", "held", "refused", "no_remote_branch", "diverged", "pull_request",
)


@dataclass
class PullResult:
    """What one pull did: its outcome, the heads before and after, and the files it touched."""

    outcome: str
    remote: str | None = None
    old: str | None = None
    new: str | None = None
    written: int = 0
    deleted: int = 0
    conflicts: list[dict[str, str]] = field(default_factory=list)
    reason: str | None = None
    paths: PathLists = field(default_factory=lambda: PathLists("written", "deleted"))  # for the event
    local_wins: list[str] = field(default_factory=list)  # changed here while pulling: committed on top
    unwritable: dict[str, str] = field(default_factory=dict)  # this pull's paths it could not write here
    # the remote stopped tracking them and the ignore rules after the pull keep them out: kept on disk here
    kept: list[str] = field(default_factory=list)
    proposal: dict[str, Any] | None = None  # pull_request: the branch the local commits went to, and its PR

    @property
    def sha(self) -> str | None:
        """The new head when the branch moved, else None."""
        return self.new if self.new != self.old else None

    def answer(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "remote": self.remote, "old": self.old, "new": self.new, "sha": self.sha,
            "written": self.written, "deleted": self.deleted, "conflicts": self.conflicts, "reason": self.reason,
            "unwritable": [{"path": p, "reason": r} for p, r in sorted(self.unwritable.items())],
            "kept": len(self.kept), "pull_request": self.proposal,
        }


# -- one pull ------------------------------------------------------------------------------------


def apply_remote(committer: Committer, record: PullRecord, remote: str, *, allow_deletes: bool = False,
                 pull_policy: str | None = None) -> PullResult:
    """Bring the fetched remote head into the branch and the data directory (the caller holds the lock).
    `pull_policy`: this pull's, instead of the settings' (`committer pull --pull-policy`)."""
    settings = committer.settings
    repo = committer.repo
    committer.refresh_head()
    local = committer.head
    pushed = repo.resolve(pushed_ref(settings.remote, repo.branch))
    result = PullResult(UP_TO_DATE, remote=remote, old=local, new=local)
    base = trees.merge_base(repo, local, remote) if local is not None else None
    if local is not None and base == remote:  # the remote's head is already in ours
        if pushed is None or (pushed != remote and trees.is_ancestor(repo, pushed, remote)):
            record_pushed(repo, settings.remote, remote, {}, "pull: the remote has it")
        result.outcome = UP_TO_DATE if remote == local else AHEAD
        if record.unwritable():  # what an earlier pull could not write is tried again
            keep_unwritable(committer, record, local, {}, set())
        return result
    refused = record.get("refused") or {}
    if refused.get("remote_head") == remote:
        return _refuse(result, str(refused.get("reason")))
    if pushed is not None and not trees.is_ancestor(repo, pushed, remote):
        return _refuse(result, f"the remote's {repo.branch} no longer contains {pushed[:12]}, which it had: "
                               "a forced update (history rewritten on the remote)")
    if local is not None and base is None:
        return _refuse(result, f"the remote's {repo.branch} shares no history with the local one")
    state = committer.holds.data_dir_state() if local is not None else "ok"
    if state != "ok":
        raise CommitterError(f"the data directory {repo.data_dir} is {state}; "
                             "nothing is pulled into it until it is back")
    when = time.time()
    merging = local is not None and base != local
    chosen = pull_policy or policy(settings)
    if merging and chosen == "ff-only":
        result.outcome, result.reason = DIVERGED_OUT, (
            f"{DIVERGED}: the remote's {repo.branch} and this one both have new commits, and pull_policy is "
            "ff-only; commits go on here, pushes wait (see docs/pulling.md#pull-policies)")
        repo.git("update-ref", "-m", "committer: diverged", diverged_ref(settings.remote, repo.branch), remote)
        return result
    if merging and chosen == "pull-request":
        assert local is not None and base is not None
        # The local commits go to a branch of their own first; then the data directory follows the remote.
        result.proposal = pullrequest.propose(settings, repo, record, local, base, remote)
        merging = False
    target_tree = f"{remote}^{{tree}}"
    copies: list[dict[str, str]] = []
    if merging:
        assert local is not None
        target_tree, copies = merged_tree(repo, local, remote, when, settings.conflict_frontmatter)
    changes = trees.diff_trees(repo, local, target_tree)
    # A path the remote stopped tracking that the rules in force after the pull keep out of the history (its
    # .bmignore, the ignore setting, the built-in rules) leaves the tree here too, never the disk: a .bmignore
    # pushed from elsewhere untracks files, it does not delete them on every replica.
    after = rules_after(committer, target_tree)
    untracked = {p for p, (old, new) in changes.items()
                 if new is None and old is not None and old.mode != MODE_GITLINK and after.ignored(p)}
    applied = {p: pair for p, pair in changes.items() if p not in untracked}
    # A folder the remote moved is renames, not deletions: only unpaired deletions count toward max_delete.
    moved = guard.pair_renames(
        {p: new.sha for p, (old, new) in applied.items() if old is None and new is not None},
        {p: old.sha for p, (old, new) in applied.items() if new is None and old is not None},
    )
    deletions = sorted(p for p, (_old, new) in applied.items() if new is None and p not in moved)
    if len(deletions) > settings.max_delete and not allow_deletes:
        held = {"reason": PULL_DELETE, "paths": deletions[:50], "count": len(deletions),
                "since": clock.iso(when, ms=True), "remote_head": remote}
        if (record.get("held") or {}).get("remote_head") != remote:
            log.warning("hold", reason=PULL_DELETE, count=len(deletions), paths=deletions[:10], remote_head=remote,
                        release="committer confirm-deletes")
            record["held"] = held
            committer.emit(events.hold(action=events.SET, reason=PULL_DELETE, paths=deletions))
        result.outcome, result.reason = HELD, f"the pull would delete {len(deletions)} files (max_delete)"
        return result
    wanted = {e.sha for pair in applied.values() for e in pair if e is not None and e.mode != MODE_GITLINK}
    blobs = Blobs(repo, wanted)
    found = pointers({p: new for p, (_old, new) in applied.items() if new is not None}, blobs.small)
    fetch_lfs(committer.settings, repo, remote, found.values())
    taken = {c["copy"] for c in copies if c["copy"]}
    unwritable: dict[str, str] = {}
    waiting: dict[str, str] = {}
    written, deleted, late, local_wins = write_changes(committer, applied, blobs, when, taken, result.paths,
                                                       unwritable, waiting)
    committer.pfilter.refresh()  # a .bmignore just written: the commit side never re-adds what it keeps out
    new_head = remote if not merging else merge_commit(committer, local, remote, target_tree, changes, copies, when)
    result.outcome = MERGE if merging else PROPOSED if result.proposal else FAST_FORWARD
    repo.git("update-ref", "-m", f"committer: pull ({result.outcome})", repo.ref, new_head, local or "0" * 40)
    record_pushed(repo, settings.remote, remote, {}, "pull: fetched")
    committer.refresh_head()
    committer.lfs_paths.update(changes, found)
    _keep_ignored(committer, record, after, [p for p, (_old, new) in changes.items() if new is not None])
    result.kept = _keep_untracked(committer, after, untracked)
    released = record.pop("held", None)
    if isinstance(released, dict):
        committer.emit(events.hold(action=events.RELEASED, reason=PULL_DELETE, paths=released.get("paths") or [],
                                   count=int(released.get("count") or 0)))
    keep_unwritable(committer, record, new_head, unwritable, set(changes), waiting)
    repo.sync_index()
    result.new, result.written, result.deleted = new_head, written, deleted
    result.unwritable = unwritable
    result.conflicts = copies + late
    result.local_wins = sorted(local_wins)
    return result


def _commit_local_wins(committer: Committer, result: PullResult) -> None:
    """Local edits made while the pull ran, and the remote's versions beside them: one more commit."""
    if result.local_wins:
        committer.commit(result.local_wins, op="conflict", extra={"remote": result.remote})
        committer.repo.sync_index()
        result.new = committer.head


def rules_after(committer: Committer, tree: str) -> PathFilter:
    """The ignore rules in force once `tree` is pulled: the built-in and configured ones with the tree's own
    .bmignore (read from git: it may not be written here yet); a .bmignore that is a link counts as none."""
    entry = committer.repo.ls_tree(tree, [BMIGNORE]).get(BMIGNORE)
    content = None
    if entry is not None and entry.mode in (MODE_FILE, MODE_EXEC):
        content = committer.repo.read_blobs([entry.sha]).get(entry.sha)
    return committer.pfilter.with_bmignore(content)


def _keep_untracked(committer: Committer, after: PathFilter, untracked: Iterable[str]) -> list[str]:
    """The remote's deletions of paths the rules keep out: left on disk, listed in held_files with their
    rule (like any file those rules keep out) and logged; returns the paths still on disk."""
    with fsio.Tree(committer.repo.data_dir) as tree:
        kept = sorted(p for p in untracked if tree.exists(p))
    if not kept:
        return kept
    listed: dict[str, str] = {}
    for path in kept:
        found = after.kept_out(path)
        if found is not None:
            listed.setdefault(*found)
    committer.held.note([Skipped(p, r) for p, r in sorted(listed.items())], op="pull")
    committer.held.announce(committer.emit)
    log.info("pull_kept_untracked", paths=kept[:20], count=len(kept),
             why="removed from the tree by the remote, and the ignore rules here keep them out of the history: "
                 "untracked here too, kept on disk")
    return kept


def _keep_ignored(committer: Committer, record: PullRecord, after: PathFilter, arrived: Iterable[str]) -> None:
    """Remember the paths a pull brought in that the ignore rules exclude here: they are not untracked."""
    ignored = {p for p in arrived if after.ignored(p)}
    if ignored:
        kept = set(record.get("kept_ignored") or ()) | ignored
        record["kept_ignored"] = sorted(kept)
        log.info("pull_kept_ignored", paths=sorted(ignored)[:20], count=len(ignored),
                 why="they match the ignore rules here, but came from the remote: written and kept in history")


def _refuse(result: PullResult, reason: str) -> PullResult:
    result.outcome, result.reason = REFUSED, reason
    return result


_FETCH_LOCK = threading.Lock()  # one fetch at a time: they write the same tracking ref


def fetch(settings: Settings, repo: GitRepo, cancelled: Callable[[], bool] | None = None) -> str | None:
    """Fetch the remote branch; its commit id, or None when the remote has no such branch."""
    if not settings.remote:
        raise ConfigError("remote", "no remote is configured; set --remote or COMMITTER_REMOTE")
    with _FETCH_LOCK:
        return fetch_remote_head(settings, repo, cancelled=cancelled)


def pull(
    committer: Committer, record: PullRecord, *, allow_deletes: bool = False, fetched: str | None = None,
    pull_policy: str | None = None,
) -> PullResult:
    """Fetch (unless a fetched head is given) and apply; logs git_pull, and git_conflict when there is one."""
    remote = fetched if fetched is not None else fetch(committer.settings, committer.repo)
    if remote is None:
        return PullResult(NO_BRANCH, old=committer.head, new=committer.head,
                          reason=f"the remote has no branch {committer.repo.branch!r}")
    result = apply_remote(committer, record, remote, allow_deletes=allow_deletes, pull_policy=pull_policy)
    note(record, result, committer.emit)
    if result.outcome not in (DIVERGED_OUT, HELD, REFUSED):
        committer.repo.git("update-ref", "-d", diverged_ref(committer.settings.remote, committer.repo.branch))
    if result.outcome in (FAST_FORWARD, MERGE):  # the remote moved: a pull request of ours may be merged
        pullrequest.refresh(committer.settings, record)
    _commit_local_wins(committer, result)  # after the pull's own events: this commit comes on top of it
    settle_conflicts(committer.repo, committer.head, record)
    return result


def note(record: PullRecord, result: PullResult, emit: events.Emit = events.nothing) -> None:
    """Log the pull and keep what status shows: last pull, conflicts, a refused update; tell `emit`."""
    state = record
    now = clock.iso(clock.now(), ms=True)
    state["last_fetch_at"] = now
    state["remote_head"] = result.remote
    if result.outcome in (FAST_FORWARD, MERGE, PROPOSED):
        state["last_pull_at"] = now
    if result.outcome == DIVERGED_OUT:
        known = record.diverged()
        state["diverged"] = {"reason": result.reason, "remote_head": result.remote, "head": result.old,
                             "since": known.get("since", now) if known else now}
        if known is None:  # told once, not at every pull round while it lasts
            log.error("git_conflict", kind="diverged", reason=result.reason, remote_head=result.remote,
                      head=result.old, action="nothing merged, nothing pushed; see docs/pulling.md#pull-policies")
            emit(_pull_event(result))
        return
    if result.outcome not in (HELD, REFUSED) and state.pop("diverged", None) is not None:
        log.info("diverged_resolved", outcome=result.outcome, head=result.new, remote_head=result.remote)
    if result.outcome == REFUSED:
        known = state.get("refused") or {}
        same = known.get("remote_head") == result.remote
        state["refused"] = {"reason": result.reason, "remote_head": result.remote,
                            "at": known.get("at", now) if same else now}
        if not same:
            log.error("git_conflict", kind="refused", reason=result.reason, remote_head=result.remote,
                      head=result.old, action="nothing pulled; see docs/pulling.md")
            emit(_pull_event(result))
        return
    state.pop("refused", None)
    if result.conflicts:
        kept = list(state.get("conflicts") or [])
        kept += [{**c, "at": now, "remote_head": result.remote or ""} for c in result.conflicts]
        state["conflicts"] = kept[-CONFLICTS_KEPT:]
        for item in result.conflicts:
            log.warning("git_conflict", kind="conflict_copy", path=item["path"], copy=item["copy"],
                        why=item["why"], remote_head=result.remote)
    if result.outcome not in (UP_TO_DATE, AHEAD, NO_BRANCH):
        log.info("git_pull", outcome=result.outcome, old=result.old, new=result.new, remote_head=result.remote,
                 written=result.written, deleted=result.deleted, conflicts=len(result.conflicts))
        emit(_pull_event(result))
    for item in result.conflicts:
        emit(events.git_conflict(path=item["path"], copy=item["copy"], why=item["why"], remote_head=result.remote))


def _pull_event(result: PullResult) -> events.Event:
    reason = result.reason
    if result.proposal is not None:
        where = result.proposal.get("url") or "no pull request (the host has none)"
        reason = f"the local commits went to the branch {result.proposal['branch']}: {where}"
    return events.git_pull(outcome=result.outcome, old=result.old, new=result.new, remote_head=result.remote,
                           written=result.paths, reason=reason)


def refuse_forced(committer: Committer, record: PullRecord, remote_head: str | None, source: str) -> None:
    """A push event that says forced: never applied, reported as git_conflict and in status."""
    reason = f"a forced update of the remote branch ({source}); nothing pulled"
    note(record, PullResult(REFUSED, remote=remote_head, old=committer.head, new=committer.head, reason=reason),
         committer.emit)
