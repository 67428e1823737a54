"""One push to the remote, and what it tells: the lease on what was pushed last, the confirmation from the
porcelain answer, a remote that went back or was rewritten (remote_diverged, never pushed over)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from committer.commit import message
from committer.core import events, logs
from committer.core.progress import OnStep
from committer.core.progress import display as shown_progress
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.sync import verify
from committer.sync.errors import PushError, porcelain
from committer.sync.forge import VisibilityRule
from committer.sync.pending import Pending, last_push, read_pending
from committer.sync.pushstate import PushState
from committer.sync.refs import diverged_ref, pushed_ref, pushed_tags_prefix, record_pushed
from committer.sync.transport import Remote, stopped_error

log = logs.get(__name__)

# Batch ids listed in one git_push event at most; the count is always given.
BATCHES_SHOWN = 50
_COUNTS = ("added", "modified", "deleted", "renamed")


def plan_part(repo: GitRepo, pending: Pending, most: int) -> Pending | None:
    """The first part of a backlog that changes more than `most` paths, as a backlog of its own: its oldest
    commits, as many as stay within `most` (one at least), up to a commit whose push is a plain fast-forward
    of what was pushed. None when the backlog goes at once: small enough, or not a single line of commits
    on what was pushed (a merge in it: pushed whole, as before). A commit's size is its BM-Meta counts
    (a commit of another writer counts as one path)."""
    if not most or pending.count < 2 or not pending.branch:
        return None
    exclude = [f"^{pending.pushed}"] if pending.pushed else []
    out = repo.git("log", "--reverse", "--topo-order", "--format=%H %P%x1f%ct%x1f%B%x1e", pending.branch,
                   *exclude).stdout
    parent, size, took = pending.pushed, 0, Pending(pushed=pending.pushed)
    for record in out.decode("utf-8", "replace").split("\x1e"):
        head, sep, rest = record.lstrip("\n").partition("\x1f")
        if not sep:
            continue
        sha, *parents = head.split()
        if parents != ([parent] if parent else []):
            return None  # a merge, or history that does not start at what was pushed
        stamp, _, body = rest.partition("\x1f")
        meta = message.parse_trailer(body) or {}
        paths = sum(v for k in _COUNTS if isinstance(v := meta.get(k), int) and not isinstance(v, bool)) or 1
        if took.branch is not None and size + paths > most:
            return took if took.count < pending.count else None
        size += paths
        took.branch, parent = sha, sha
        if stamp.isdigit():
            took.times.append(int(stamp))
        else:
            took.undated += 1
        if isinstance(meta.get("batch"), str) and meta["batch"] not in took.batches:
            took.batches.append(meta["batch"])
    return None


class Push:
    """Pushes the branch and its tags, one attempt at a time (any thread), and reports into `state`."""

    def __init__(
        self,
        settings: Settings,
        repo: GitRepo,
        state: PushState,
        on_change: Callable[[], None] | None = None,
        on_rejected: Callable[[], None] | None = None,
        emit: events.Emit = events.nothing,
    ) -> None:
        self.settings = settings
        self.emit = emit
        self.repo = repo
        self.state = state
        self.remote = Remote(settings)
        self.pushed_ref = pushed_ref(settings.remote, repo.branch)
        self.pushed_tags = pushed_tags_prefix(settings.remote)
        self._on_change = on_change
        self._on_rejected = on_rejected
        self._visibility = self._visibility_rule()
        self._lock = threading.Lock()  # one push at a time
        self._retried = True  # whether the attempt under way is tried again when it fails
        self._progress: OnStep | None = None  # who is shown git's progress of the attempt under way
        seen = last_push(repo, self.pushed_ref)
        if seen is not None:
            state.seed(*seen)

    def _visibility_rule(self) -> VisibilityRule | None:
        if self.settings.allow_public:
            return None
        return VisibilityRule(self.remote.forge, self.remote.credentials)

    def pending(self) -> Pending:
        """Read what the remote lacks and show it; tell on_change when the counts moved."""
        pending = read_pending(self.repo, self.pushed_ref, self.pushed_tags)
        if self.state.pending(pending):
            self._changed()
        return pending

    def _changed(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:  # a broken listener must not stop pushes
            log.exception("push_on_change_failed")

    def once(self, timeout: float, cancelled: Callable[[], bool] | None = None,
             hard: float | None = None, retried: bool = True,
             progress: OnStep | None = None) -> dict[str, Any]:
        """Push what is pending now, once; PushError when the remote refuses. git is stopped once it has
        done no work for `timeout` seconds, or at `hard` seconds whatever it does. `retried`: a failure
        is tried again later (the push loop), or not (a one-shot command: its log event says so). `progress`:
        git's progress, step by step."""
        with self._lock:
            self._retried, self._progress = retried, progress or shown_progress()  # or a command's bar
            deadline = None if hard is None else time.monotonic() + hard
            total: dict[str, Any] | None = None
            while True:  # a large backlog goes in parts, each recorded as pushed when it lands
                left = None if deadline is None else deadline - time.monotonic()
                result = self._push(timeout if left is None else min(timeout, left), cancelled, again=True, hard=left)
                total = result if total is None else {
                    **result, "old": total["old"], "commits": total["commits"] + result["commits"],
                    "seconds": round(total["seconds"] + result["seconds"], 3)}
                more = result.pop("part", False)
                if not more or (cancelled is not None and cancelled()):
                    break
                if deadline is not None and deadline - time.monotonic() < 0.1:
                    break
            total.pop("part", None)
            return total

    def _push(self, timeout: float, cancelled: Callable[[], bool] | None, again: bool,
              hard: float | None = None) -> dict[str, Any]:
        """`again` allows one more push after late bookkeeping."""
        whole = self.pending()
        part = plan_part(self.repo, whole, self.settings.push_part_files)
        pending = part or whole
        result: dict[str, Any] = {"pushed": False, "old": pending.pushed, "new": pending.branch,
                                  "commits": pending.count, "tags": len(pending.tags), "seconds": 0.0}
        if not pending.needed:
            return result
        if part is not None:
            log.info("push_part", remote=self.remote.shown, commits=part.count, of=whole.count, to=part.branch,
                     why=f"the backlog changes more than push_part_files ({self.settings.push_part_files}) paths")
        started = time.monotonic()
        try:
            if self._visibility is not None:
                self._visibility.check()
            self._diverged_gate()
            refspecs = [f"{pending.branch}:{self.repo.ref}"] if pending.branch else []
            # Tags go with the last part: a tag on a newer commit would carry all of it along.
            tagspecs = [] if part is not None else ["refs/tags/*:refs/tags/*"]
            args = ["push", "--porcelain", *(["--progress"] if self._progress else []), *self._lease(pending),
                    "--end-of-options", self.remote.url, *refspecs, *tagspecs]
            run = self.remote.run(self.repo, args, timeout=timeout, cancelled=cancelled, hard=hard,
                                  progress=self._progress)
        except PushError as exc:  # no push was made: credentials or the visibility rule said no
            self._report(pending, exc, time.monotonic() - started)
            raise
        error = (stopped_error(run) if run.timed_out
                 else self.remote.forge.classify(run.returncode, run.stderr, run.stdout, ref=self.repo.ref,
                                                 secrets=run.secrets))
        lines = porcelain(run.stdout)
        branch_ok = self.repo.ref in lines and lines[self.repo.ref][0] != "!"
        if branch_ok and pending.branch and (problem := verify.confirm(lines, self.repo.ref, pending.branch)):
            branch_ok = False
            error = error or PushError("unknown", problem)
        problem = (self._moved(pending.branch, pending.pushed, cancelled)
                   if branch_ok and pending.branch and error is None else None)
        if problem is not None:
            # The remote said ok, but its branch is not at what was sent (a hook that puts it back, a proxy
            # that answers for it): nothing is recorded as pushed, and the push is tried again later.
            branch_ok = False
            error = PushError("unknown", problem)
            log.warning("push_not_confirmed", remote=self.remote.shown, pushed=pending.branch, message=problem)
        if error is not None and error.kind == "non_fast_forward" and pending.pushed:
            compared = self._compare(pending.pushed)
            sha = compared[1]
            if again and compared[0] == verify.AHEAD and sha and whole.branch and self._ours(sha, whole.branch):
                # The remote holds commits of ours that were never recorded as pushed (the daemon was
                # killed between a push and its bookkeeping): record them and push the rest on top.
                record_pushed(self.repo, self.settings.remote, sha, {}, "the remote has it")
                log.info("push_recorded_late", remote=self.remote.shown, remote_head=sha)
                return self._push(timeout, cancelled, again=False, hard=hard)
            error = self._diverged(pending.pushed, compared) or error
        tags_ok = {name: sha for name, sha in pending.tags.items()
                   if lines.get(f"refs/tags/{name}", ("!", ""))[0] != "!"}
        if branch_ok or tags_ok:
            # Even when a tag was refused, what did arrive is no longer pending.
            record_pushed(self.repo, self.settings.remote, pending.branch if branch_ok else None, tags_ok,
                          f"push {run.seconds:.3f}s")
        if branch_ok and self.state.metrics is not None:
            self.state.metrics.set_diverged(False)
        result.update(pushed=error is None, seconds=round(run.seconds, 3), part=part is not None and error is None)
        self._report(pending, error, run.seconds)
        if error is not None:
            raise error
        return result

    def _diverged_gate(self) -> None:
        """pull_policy = ff-only left a divergence to a person: no push until it is resolved (allow_non_ff, the
        admin's override, pushes as it always did)."""
        if self.settings.allow_non_ff:
            return
        at = self.repo.resolve(diverged_ref(self.settings.remote, self.repo.branch))
        if at is not None:
            raise PushError("non_fast_forward", f"diverged: waiting for a person (the remote's {self.repo.branch} "
                                                f"is at {at[:12]}, and pull_policy = ff-only merges nothing)")

    def _moved(self, sent: str, before: str | None, cancelled: Callable[[], bool] | None) -> str | None:
        """After a push answered ok: None when the remote's branch (asked again) moved; else why the push does
        not count. Moved elsewhere than `sent` is someone's push or rewrite just after ours: the remote check
        tells an addition from a divergence, as it does between pushes."""
        try:
            sha = verify.remote_branch(self.remote, self.repo, cancelled)
        except PushError as exc:  # the network went away just now: its own answer is all there is
            log.info("push_unconfirmed", remote=self.remote.shown, kind=exc.kind, message=exc.detail)
            return None
        if sha == sent or sha != before:
            return None
        where = f"is still at {sha[:12]}" if sha else "still does not exist"
        return f"the remote answered ok, but its {self.repo.branch} {where}, not at {sent[:12]} as pushed"

    def _ours(self, sha: str, branch: str) -> bool:
        return self.repo.git("merge-base", "--is-ancestor", sha, branch, check=False).returncode == 0

    def _lease(self, pending: Pending) -> list[str]:
        """The remote must still hold what was pushed last, or nothing is overwritten (not even fast-forwarded).

        Without allow_non_ff the lease is given only when the branch descends from what was pushed, so it
        can never turn a rewrite into a forced update; a remote moved back by someone then refuses the push.
        """
        if not pending.branch:
            return []
        if self.settings.allow_non_ff:
            return [f"--force-with-lease={self.repo.ref}:{pending.pushed or ''}"]
        if pending.pushed and pending.pushed != pending.branch and self._ours(pending.pushed, pending.branch):
            return [f"--force-with-lease={self.repo.ref}:{pending.pushed}"]
        return []

    def _compare(self, pushed: str) -> tuple[str | None, str | None]:
        """(SAME, AHEAD or DIVERGED, the remote's commit); (None, None) when the remote could not be asked."""
        try:
            sha = verify.remote_branch(self.remote, self.repo)
            return verify.compare(self.remote, self.repo, sha, pushed)
        except PushError as exc:
            log.info("remote_check_failed", kind=exc.kind, message=exc.detail)
            return None, None

    def _diverged(self, pushed: str, compared: tuple[str | None, str | None] | None = None) -> PushError | None:
        """After a refused push: a remote_diverged error when the remote went back or was rewritten."""
        state, sha = compared or self._compare(pushed)
        if state != verify.DIVERGED:
            return None
        detail = verify.describe(self.repo, sha, pushed)
        log.error("remote_diverged", remote=self.remote.shown, remote_head=sha, pushed=pushed, message=detail)
        if self.state.metrics is not None:
            self.state.metrics.set_diverged(True)
        return PushError("remote_diverged", detail)

    def check_remote(self) -> bool:
        """Compare the remote branch with what was pushed (one ls-remote); True when a divergence just ended."""
        with self._lock:
            pushed = self.pending().pushed
            shown = self.state.error_kind == "remote_diverged"
            if pushed is None:
                return False
            compared = self._compare(pushed)
            if compared[0] is None:
                return False
            error = self._diverged(pushed, compared)
            if error is not None:
                if not shown:  # found between pushes: told once, like a push refused for it
                    self.emit(events.push_failed(
                        remote=self.remote.shown, kind=error.kind, message=error.detail, permanent=True, old=pushed,
                        new=self.repo.resolve(self.repo.ref), commits=0, consecutive_failures=0))
                self.state.error(error)
                self._changed()
                return False
            if not shown:
                return False
            log.info("remote_diverged_resolved", remote=self.remote.shown, pushed=pushed)
            self.state.error(None)
            if self.state.metrics is not None:
                self.state.metrics.set_diverged(False)
            self._changed()
            return True

    def _report(self, pending: Pending, error: PushError | None, seconds: float) -> None:
        fields = {
            "remote": self.remote.shown,
            "old": pending.pushed,
            "new": pending.branch,
            "range": f"{(pending.pushed or '')[:12]}..{(pending.branch or '')[:12]}",
            "commits": pending.count,
            "tags": len(pending.tags),
            "batches": pending.batches[:BATCHES_SHOWN],
            "duration_ms": round(seconds * 1000),
            "forced": self.settings.allow_non_ff,
        }
        told = self.state.error_kind
        failures = self.state.pushed(error, seconds)
        if error is not None and error.kind == "non_fast_forward" and self._on_rejected is not None:
            try:
                self._on_rejected()
            except Exception:  # a broken listener must not stop pushes
                log.exception("push_on_rejected_failed")
        if error is None:
            log.info("git_push", result="ok", **fields)
            self.emit(events.git_push(remote=self.remote.shown, old=pending.pushed, new=pending.branch,
                                      commits=pending.count, tags=len(pending.tags), batches=pending.batches))
        else:
            log.warning("git_push", result="failed", kind=error.kind, permanent=error.permanent,
                        message=error.detail, consecutive_failures=failures, will_retry=self._retried, **fields)
            if failures == 1 or (error.permanent and error.kind != told):
                # The first failure after a success, or a permanent one not told yet: not every retry.
                self.emit(events.push_failed(
                    remote=self.remote.shown, kind=error.kind, message=error.detail, permanent=error.permanent,
                    old=pending.pushed, new=pending.branch, commits=pending.count,
                    consecutive_failures=failures))
        self._changed()
        self.pending()
