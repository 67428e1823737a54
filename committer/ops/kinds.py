"""The requests the main loop serves, one frozen dataclass and one handler each, and the registry line that
joins them. A handler runs on the main loop's thread (or a command's, without a daemon) and says in its
answer what the push loop does next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from committer.commit.committer import Committer
from committer.core.settings import PULL_POLICIES
from committer.ops import barrier, holds, snapshot
from committer.ops.asking import NOW, Answer, Asked, Registry
from committer.ops.restore import restore
from committer.ops.restorepr import restore_as_pr
from committer.policy import guard
from committer.sync import pull
from committer.sync.pullstate import PullRecord


@dataclass(frozen=True)
class Restore(Asked):
    """Bring a path (or everything, "") back as it was at `rev`; a dry run says what it would change."""

    op: ClassVar[str] = "restore"
    path: str
    rev: str
    dry_run: bool = False
    as_pr: bool = False  # committed on a branch of its own and proposed as a pull request; the disk unchanged

    def args(self) -> dict[str, Any]:
        """As always, with `as_pr` only when it is asked for (a daemon of before reads the same file)."""
        return _unless_default(super().args(), as_pr=False)


@dataclass(frozen=True)
class Snapshot(Asked):
    """Tag HEAD (after what is pending is committed)."""

    op: ClassVar[str] = "snapshot"
    message: str = ""
    tag: str | None = None


@dataclass(frozen=True)
class ConfirmDeletes(Asked):
    """Commit a held mass deletion, or apply a pull held back for deleting too much. `seen`: the key of the
    hold a page showed; a hold that changed since is not confirmed."""

    op: ClassVar[str] = "confirm-deletes"
    seen: str = ""

    def args(self) -> dict[str, Any]:
        """`{}` as it always was from the CLI; `seen` only when a page sends it."""
        return {"seen": self.seen} if self.seen else {}


@dataclass(frozen=True)
class PutBack(Asked):
    """Write the held deletions back into the data directory from the last commit (never over a file)."""

    op: ClassVar[str] = "put-back"
    seen: str = ""


@dataclass(frozen=True)
class AllowSecret(Asked):
    """Commit a file held for a secret once, as it is (`sha`: the blob id that was reviewed); a dry run says
    what was found where."""

    op: ClassVar[str] = "allow-secret"
    path: str
    sha: str = ""
    dry_run: bool = False
    by: str = "cli"


@dataclass(frozen=True)
class PullNow(Asked):
    """Fetch and apply the remote branch now."""

    op: ClassVar[str] = "pull"
    pull_policy: str = ""  # this pull's policy (`committer pull --pull-policy`); "" for the daemon's

    def args(self) -> dict[str, Any]:
        """As always, with `pull_policy` only when one is given."""
        return _unless_default(super().args(), pull_policy="")


@dataclass(frozen=True)
class PushNow(Asked):
    """Ask the push loop to push now, ending a backoff wait."""

    op: ClassVar[str] = "push"


@dataclass(frozen=True)
class SyncNow(Asked):
    """Commit what is pending now (the open batch, then one scan of the whole tree) and push at once, ending
    a backoff wait. `asked_at` (wall clock): callers that wait together share one scan; `scan=False` when
    the asker has just reconciled itself."""

    op: ClassVar[str] = "sync"
    asked_at: float = 0.0
    scan: bool = True


@dataclass(frozen=True)
class Forced(Asked):
    """The webhook said the remote branch was force-pushed (to `head`): recorded as refused, never applied."""

    op: ClassVar[str] = "forced-update"
    commit_first: ClassVar[bool] = False  # it only records state; a pending batch keeps its debounce
    head: str | None = None


def _unless_default(values: dict[str, Any], **defaults: object) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in defaults or v != defaults[k]}


def _restore(committer: Committer, _record: PullRecord, asked: Restore) -> Answer:
    if asked.as_pr:
        return Answer.committed(restore_as_pr(committer, str(asked.path), str(asked.rev), bool(asked.dry_run)))
    return Answer.committed(restore(committer, str(asked.path), str(asked.rev), bool(asked.dry_run)))


def _snapshot(committer: Committer, _record: PullRecord, asked: Snapshot) -> Answer:
    # No commit of its own: the tag goes with the next push.
    return Answer.committed(snapshot.create(committer, str(asked.message or ""), asked.tag or None))


CHANGED = "the deletions on hold changed since the page was shown: nothing was done. Look at the list again"


def _changed(committer: Committer, seen: str, record: PullRecord | None = None) -> bool:
    """Whether the hold a page showed (its key; a held pull's: the remote commit) is not the one held now."""
    hold = committer.holds.hold
    if not seen or hold is not None:
        return bool(seen) and (hold is None or guard.key_of(hold.paths) != seen)
    pulled = record.held() if record is not None else None
    return pulled is None or str(pulled.get("remote_head")) != seen


def _confirm_deletes(committer: Committer, record: PullRecord, asked: ConfirmDeletes) -> Answer:
    if _changed(committer, str(asked.seen or ""), record):
        return Answer.failed(CHANGED)
    held_pull = record.held()
    if committer.holds.hold is None and held_pull:
        # A pull held back because it would delete too many files: apply it, deletions included.
        pulled = pull.pull(committer, record, allow_deletes=True, fetched=str(held_pull["remote_head"]))
        return Answer.committed({"before": held_pull, "sha": pulled.sha, "deleted": pulled.deleted,
                                 "pull": pulled.answer()})
    hold = committer.holds.hold
    before = hold.status() if hold else None
    result = committer.confirm_deletes()
    return Answer.committed({"before": before, "sha": result.sha, "deleted": result.changes.counts.deleted})


def _put_back(committer: Committer, _record: PullRecord, asked: PutBack) -> Answer:
    if _changed(committer, str(asked.seen or "")):
        return Answer.failed(CHANGED)
    return Answer.committed(holds.put_back(committer))


def _allow_secret(committer: Committer, _record: PullRecord, asked: AllowSecret) -> Answer:
    if asked.dry_run:
        return Answer(holds.review(committer, str(asked.path)))
    return Answer.committed(holds.allow_secret(committer, str(asked.path), str(asked.sha or ""), str(asked.by)))


def _pull(committer: Committer, record: PullRecord, asked: PullNow) -> Answer:
    chosen = asked.pull_policy if asked.pull_policy in PULL_POLICIES else None
    return Answer.committed(pull.pull(committer, record, pull_policy=chosen).answer())


def _push(_committer: Committer, _record: PullRecord, _asked: PushNow) -> Answer:
    return Answer({}, push=NOW)


def _sync(committer: Committer, _record: PullRecord, asked: SyncNow) -> Answer:
    asked_at = asked.asked_at if isinstance(asked.asked_at, int | float) else 0.0  # another process's JSON
    payload = barrier.take_pending(committer, float(asked_at), asked.scan is not False)
    return Answer(payload, push=NOW if payload["remote"] else None)


def _forced(committer: Committer, record: PullRecord, asked: Forced) -> Answer:
    if asked.head is not None and asked.head == committer.head:
        return Answer({"refused": False})  # our own force-push (allow_non_ff) coming back
    pull.refuse_forced(committer, record, asked.head, "the webhook said forced")
    return Answer({"refused": True})


REQUESTS = Registry()
REQUESTS.register(ConfirmDeletes, _confirm_deletes)
REQUESTS.register(Restore, _restore)
REQUESTS.register(PutBack, _put_back)
REQUESTS.register(AllowSecret, _allow_secret)
REQUESTS.register(Snapshot, _snapshot)
REQUESTS.register(PullNow, _pull)
REQUESTS.register(PushNow, _push)
REQUESTS.register(SyncNow, _sync)
REQUESTS.register(Forced, _forced, remote=False)

