"""The push loop: latest-wins requests, tenacity backoff for transient failures, a slow re-check otherwise."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from committer.commit import message
from committer.core import logs
from committer.core.errors import ConfigError, GitError
from committer.core.settings import Settings
from committer.git.repo import GitRepo, terminate_running
from committer.sync import verify
from committer.sync.credentials import on_github
from committer.sync.errors import PushError, classify, porcelain, timeout_error
from committer.sync.refs import pushed_ref, pushed_tags_prefix, record_pushed
from committer.sync.transport import Remote, kill_group


class PushMetrics(Protocol):
    """What the push loop reports (the daemon passes its metrics registry)."""

    def push_ok(self, seconds: float) -> None: ...
    def push_failed(self, kind: str, seconds: float) -> None: ...
    def set_pending(self, commits: int, oldest_at: float | None) -> None: ...
    def set_last_push(self, at: float) -> None: ...
    def set_diverged(self, diverged: bool) -> None: ...


log = logs.get("committer.pusher")

_REFLOG = re.compile(r"@\{(\d+)\}\x1fpush (\d+(?:\.\d+)?)s")
# Batch ids listed in one git_push event at most; the count is always given.
_BATCHES_SHOWN = 50


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, PushError) and not exc.permanent


def _log_backoff(state: RetryCallState) -> None:
    delay = state.next_action.sleep if state.next_action else 0.0
    log.info("push_backoff", attempt=state.attempt_number, seconds=round(delay, 3))


def backoff(settings: Settings, sleep: Callable[[float], None], stopped: Callable[[], bool]) -> Retrying:
    """Retry transient failures forever: exponential from 1 s with 1 s of jitter, capped; stop when told."""
    return Retrying(
        retry=retry_if_exception(_retryable),
        wait=wait_exponential_jitter(max=settings.push_backoff_max),
        stop=lambda _state: stopped(),
        sleep=sleep,
        before_sleep=_log_backoff,
        reraise=True,
    )


@dataclass
class _Pending:
    branch: str | None = None
    pushed: str | None = None
    times: list[int] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def needed(self) -> bool:
        return bool(self.times or self.tags or (self.branch and self.branch != self.pushed))


class Pusher:
    """Mirrors the branch and its tags to the remote from a background thread."""

    def __init__(
        self,
        settings: Settings,
        repo: GitRepo,
        on_change: Callable[[], None] | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
        metrics: PushMetrics | None = None,
        on_rejected: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.remote = Remote(settings) if settings.remote else None
        self._visibility = self._visibility_rule()
        self.pushed_ref = pushed_ref(settings.remote, repo.branch)
        self.pushed_tags = pushed_tags_prefix(settings.remote)
        self._on_change = on_change
        self._metrics = metrics
        self._on_rejected = on_rejected
        self._retry_now = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sleep = sleep or self._wait
        self._push_lock = threading.Lock()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._deadline = 0.0
        self._state: dict[str, Any] = {
            "pending_commits": 0,
            "oldest_pending_at": None,
            "last_push_at": None,
            "last_push_seconds": None,
            "consecutive_failures": 0,
            "last_error": None,
        }
        self._load_last_push()

    def _visibility_rule(self) -> Any:
        if self.remote is None or self.settings.allow_public or not on_github(self.settings):
            return None
        from committer.sync.github import Visibility  # the REST client, only for remotes that may be on GitHub

        app = self.remote.app
        return Visibility(self.settings, self.remote.credentials, app.invalidate if app else None)

    # -- the thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background loop; a first check runs at once. Without a remote, nothing runs."""
        if self.remote is None or self._thread is not None:
            return
        self._stop.clear()
        self._wake.set()
        self._thread = threading.Thread(target=self._run, name="committer-pusher", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        """False only when the loop was started and has died."""
        thread = self._thread
        return thread is None or thread.is_alive()

    def request(self) -> None:
        """Ask for a push soon; never blocks, and many requests make one push."""
        self._wake.set()

    def retry_now(self) -> None:
        """Push soon even while waiting out a permanent failure: something changed (a pull merged)."""
        self._retry_now = True
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """End the loop after one last push attempt, if commits are pending, within `timeout` seconds."""
        if self._stop.is_set() and self._thread is None:
            return  # already stopped
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is None:
            if self.remote is not None:
                self._final()
            return
        if thread.ident is not None:
            # Bookkeeping in flight (reading or recording refs) is local and redone at the next start;
            # a slow one must not hold the stop. The network push keeps its bounded last attempt.
            terminate_running(thread.ident)
        thread.join(timeout)
        if thread.is_alive():
            # An attempt that started before stop() still runs on its own, longer deadline: cut it.
            with self._lock:
                proc = self._proc
            if proc is not None:
                kill_group(proc)
            thread.join(self.settings.push_timeout)

    def _wait(self, seconds: float) -> None:
        """Backoff sleep: ends at once on stop; requests only refresh the status, they do not shorten it."""
        end = time.monotonic() + seconds
        while not self._stop.is_set() and (left := end - time.monotonic()) > 0:
            self._wake.wait(min(left, self.settings.push_interval))
            self._wake.clear()
            self._refresh()

    def _run(self) -> None:
        retry_at = 0.0  # after a permanent failure, no push before this (monotonic) time
        interval = self.settings.reconcile_interval
        check_at = time.monotonic() + interval  # the next comparison of the remote branch with what was pushed
        while True:
            self._wake.wait(self.settings.push_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self._retry_now:
                self._retry_now, retry_at = False, 0.0
            try:
                if interval > 0 and time.monotonic() >= check_at:
                    check_at = time.monotonic() + interval
                    if self.check_remote() and retry_at:
                        retry_at = 0.0  # the remote is back where it was: push at once
                if time.monotonic() < retry_at:
                    self._refresh()  # keep status current without hammering the remote
                    continue
                backoff(self.settings, self._sleep, self._stop.is_set)(self._cycle)
                retry_at = 0.0
            except PushError as exc:
                retry_at = time.monotonic() + self.settings.push_backoff_max if exc.permanent else 0.0
            except Exception as exc:  # the loop must outlive any one failure
                if self._stop.is_set():  # its local git was cut short by stop(): expected, redone at start
                    log.warning("push_interrupted", error=str(exc))
                else:
                    log.exception("push_loop_error")
        self._final()

    def _cycle(self) -> None:
        if not self._stop.is_set():
            self._attempt(self.settings.push_timeout)

    def _final(self) -> None:
        remaining = self._deadline - time.monotonic()
        try:
            if remaining > 0.1:
                self._attempt(min(self.settings.push_timeout, remaining))
            elif self._refresh().needed:
                log.warning("push_final_skipped", reason="no time left")
        except PushError as exc:
            log.warning("push_final_failed", kind=exc.kind, message=exc.detail)
        except GitError as exc:
            log.warning("push_final_failed", kind="unknown", message=exc.message)

    # -- one push -----------------------------------------------------------------------------

    def push_now(self) -> dict[str, Any]:
        """Push pending commits and tags now, once; raises PushError when the remote refuses."""
        if self.remote is None:
            raise ConfigError("remote", "no remote is configured; set --remote or COMMITTER_REMOTE")
        return self._attempt(self.settings.push_timeout)

    def _attempt(self, timeout: float) -> dict[str, Any]:
        with self._push_lock:
            return self._push(timeout, again=True)

    def _push(self, timeout: float, again: bool) -> dict[str, Any]:
        """One push under the push lock; `again` allows one more after late bookkeeping."""
        assert self.remote is not None
        pending = self._refresh()
        result: dict[str, Any] = {
            "pushed": False,
            "old": pending.pushed,
            "new": pending.branch,
            "commits": len(pending.times),
            "tags": len(pending.tags),
            "seconds": 0.0,
        }
        if not pending.needed:
            return result
        forced = self.settings.allow_non_ff
        started = time.monotonic()
        try:
            if self._visibility is not None:
                self._visibility.check()
            args = ["push", "--porcelain", *self._lease(pending)]
            refspecs = [f"{pending.branch}:{self.repo.ref}"] if pending.branch else []
            refspecs.append("refs/tags/*:refs/tags/*")
            args += [self.remote.url, *refspecs]
            if self._stop.is_set():  # shutting down: no call may outlive stop()'s deadline
                timeout = min(timeout, max(0.1, self._deadline - time.monotonic()))
            run = self.remote.run(self.repo, args, timeout=timeout, track=self._track)
        except PushError as exc:  # no push was made: credentials or the visibility rule said no
            self._report(pending, exc, time.monotonic() - started, forced)
            raise
        error = (
            timeout_error(run.seconds)
            if run.timed_out
            else classify(run.returncode, run.stderr, run.stdout, ref=self.repo.ref, secrets=run.secrets)
        )
        lines = porcelain(run.stdout)
        branch_ok = self.repo.ref in lines and lines[self.repo.ref][0] != "!"
        if branch_ok and pending.branch and (problem := verify.confirm(lines, self.repo.ref, pending.branch)):
            branch_ok = False
            error = error or PushError("unknown", problem)
        if error is not None and error.kind == "non_fast_forward" and pending.pushed:
            compared = self._compare(pending.pushed)
            sha = compared[1]
            if again and compared[0] == verify.AHEAD and sha and pending.branch and self._ours(sha, pending.branch):
                # The remote holds commits of ours that were never recorded as pushed (the daemon was
                # killed between a push and its bookkeeping): record them and push the rest on top.
                record_pushed(self.repo, self.settings.remote, sha, {}, "the remote has it")
                log.info("push_recorded_late", remote=self.remote.shown, remote_head=sha)
                return self._push(timeout, again=False)
            error = self._diverged(pending.pushed, compared) or error
        tags_ok = {
            name: sha
            for name, sha in pending.tags.items()
            if lines.get(f"refs/tags/{name}", ("!", ""))[0] != "!"
        }
        if branch_ok or tags_ok:
            # Even when a tag was refused, what did arrive is no longer pending.
            record_pushed(
                self.repo, self.settings.remote, pending.branch if branch_ok else None, tags_ok,
                f"push {run.seconds:.3f}s",
            )
        if branch_ok and self._metrics is not None:
            self._metrics.set_diverged(False)
        result.update(pushed=error is None, seconds=round(run.seconds, 3))
        self._report(pending, error, run.seconds, forced)
        if error is not None:
            raise error
        return result

    def _ours(self, sha: str, branch: str) -> bool:
        return self.repo.git("merge-base", "--is-ancestor", sha, branch, check=False).returncode == 0

    def _lease(self, pending: _Pending) -> list[str]:
        """The remote must still hold what was pushed last, or nothing is overwritten (not even fast-forwarded).

        Without allow_non_ff the lease is given only when the branch descends from what was pushed, so it
        can never turn a rewrite into a forced update; a remote moved back by someone then refuses the push.
        """
        if not pending.branch:
            return []
        if self.settings.allow_non_ff:
            return [f"--force-with-lease={self.repo.ref}:{pending.pushed or ''}"]
        if pending.pushed and pending.pushed != pending.branch:
            descends = self.repo.git("merge-base", "--is-ancestor", pending.pushed, pending.branch, check=False)
            if descends.returncode == 0:
                return [f"--force-with-lease={self.repo.ref}:{pending.pushed}"]
        return []

    def _compare(self, pushed: str) -> tuple[str | None, str | None]:
        """(SAME, AHEAD or DIVERGED, the remote's commit); (None, None) when the remote could not be asked."""
        assert self.remote is not None
        try:
            sha = verify.remote_branch(self.remote, self.repo, self._track)
            return verify.compare(self.remote, self.repo, sha, pushed, self._track)
        except PushError as exc:
            log.info("remote_check_failed", kind=exc.kind, message=exc.detail)
            return None, None

    def _diverged(self, pushed: str, compared: tuple[str | None, str | None] | None = None) -> PushError | None:
        """After a refused push: a remote_diverged error when the remote went back or was rewritten."""
        assert self.remote is not None
        state, sha = compared or self._compare(pushed)
        if state != verify.DIVERGED:
            return None
        detail = verify.describe(self.repo, sha, pushed)
        log.error("remote_diverged", remote=self.remote.shown, remote_head=sha, pushed=pushed, message=detail)
        if self._metrics is not None:
            self._metrics.set_diverged(True)
        return PushError("remote_diverged", detail)

    def check_remote(self) -> bool:
        """Compare the remote branch with what was pushed (one ls-remote); True when a divergence just ended."""
        assert self.remote is not None
        with self._push_lock:
            pushed = self._refresh().pushed
            with self._lock:
                shown = (self._state["last_error"] or {}).get("kind") == "remote_diverged"
            if pushed is None:
                return False
            compared = self._compare(pushed)
            if compared[0] is None:
                return False
            error = self._diverged(pushed, compared)
            if error is not None:
                with self._lock:
                    self._state["last_error"] = {"kind": error.kind, "message": error.detail, "at": _iso(time.time())}
                self._changed()
                return False
            if shown:
                log.info("remote_diverged_resolved", remote=self.remote.shown, pushed=pushed)
                with self._lock:
                    self._state["last_error"] = None
                if self._metrics is not None:
                    self._metrics.set_diverged(False)
                self._changed()
                return True
            return False

    def _track(self, proc: subprocess.Popen[bytes] | None) -> None:
        with self._lock:
            self._proc = proc

    def _report(self, pending: _Pending, error: PushError | None, seconds: float, forced: bool) -> None:
        fields = {
            "remote": self.remote.shown if self.remote else None,
            "old": pending.pushed,
            "new": pending.branch,
            "range": f"{(pending.pushed or '')[:12]}..{(pending.branch or '')[:12]}",
            "commits": len(pending.times),
            "tags": len(pending.tags),
            "batches": pending.batches[:_BATCHES_SHOWN],
            "duration_ms": round(seconds * 1000),
            "forced": forced,
        }
        now = time.time()
        with self._lock:
            if error is None:
                self._state.update(
                    last_push_at=_iso(now),
                    last_push_seconds=round(seconds, 3),
                    consecutive_failures=0,
                    last_error=None,
                )
            else:
                self._state["consecutive_failures"] += 1
                self._state["last_error"] = {"kind": error.kind, "message": error.detail, "at": _iso(now)}
            failures = self._state["consecutive_failures"]
        if self._metrics is not None:
            if error is None:
                self._metrics.push_ok(seconds)
            else:
                self._metrics.push_failed(error.kind, seconds)
        if error is not None and error.kind == "non_fast_forward" and self._on_rejected is not None:
            try:
                self._on_rejected()
            except Exception:  # a broken listener must not stop pushes
                log.exception("push_on_rejected_failed")
        if error is None:
            log.info("git_push", result="ok", **fields)
        else:
            log.warning(
                "git_push",
                result="failed",
                kind=error.kind,
                permanent=error.permanent,
                message=error.detail,
                consecutive_failures=failures,
                **fields,
            )
        self._changed()
        self._refresh()

    # -- what is pending ----------------------------------------------------------------------

    def _refresh(self) -> _Pending:
        """Read what the remote lacks, update the snapshot, tell on_change when it moved."""
        pending = _Pending()
        refs = (self.repo.ref, self.pushed_ref, "refs/tags/", self.pushed_tags)
        out = self.repo.git("for-each-ref", "--format=%(objectname) %(refname)", *refs).stdout.decode()
        tags: dict[str, str] = {}
        pushed_tags: dict[str, str] = {}
        for sha, ref in (line.split(" ", 1) for line in out.splitlines()):
            if ref == self.repo.ref:
                pending.branch = sha
            elif ref == self.pushed_ref:
                pending.pushed = sha
            elif ref.startswith("refs/tags/"):
                tags[ref[len("refs/tags/") :]] = sha
            elif ref.startswith(self.pushed_tags):
                pushed_tags[ref[len(self.pushed_tags) :]] = sha
        pending.tags = {name: sha for name, sha in tags.items() if pushed_tags.get(name) != sha}
        if pending.branch and pending.branch != pending.pushed:
            exclude = [f"^{pending.pushed}"] if pending.pushed else []
            out = self.repo.git("log", "--format=%ct%x1f%B%x1e", pending.branch, *exclude).stdout.decode()
            for record in out.split("\x1e"):
                stamp, sep, body = record.strip().partition("\x1f")
                if not sep:
                    continue
                pending.times.append(int(stamp))
                meta = message.parse_trailer(body)
                if meta and isinstance(meta.get("batch"), str):
                    pending.batches.append(meta["batch"])
        oldest = _iso(min(pending.times)) if pending.times else None
        now = {"pending_commits": len(pending.times), "oldest_pending_at": oldest}
        if self._metrics is not None:
            self._metrics.set_pending(len(pending.times), min(pending.times) if pending.times else None)
        with self._lock:
            changed = any(self._state[key] != value for key, value in now.items())
            self._state.update(now)
        if changed:
            self._changed()
        return pending

    def _changed(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:  # a broken listener must not stop pushes
            log.exception("push_on_change_failed")

    def _load_last_push(self) -> None:
        proc = self.repo.git(
            "reflog", "show", "--date=unix", "--format=%gd%x1f%gs", "-50", self.pushed_ref, "--", check=False
        )
        match = _REFLOG.search(proc.stdout.decode("utf-8", "replace")) if proc.returncode == 0 else None
        if match:
            self._state["last_push_at"] = _iso(int(match.group(1)))
            self._state["last_push_seconds"] = float(match.group(2))
            if self._metrics is not None:
                self._metrics.set_last_push(int(match.group(1)))

    def snapshot(self) -> dict[str, Any]:
        """Push status for `status` and the state file; recomputed now unless the loop keeps it fresh."""
        if self._thread is None:
            try:
                self._refresh()
            except GitError as exc:
                log.warning("push_status_failed", message=exc.message)
        with self._lock:
            state = dict(self._state)
        if state["last_error"] is not None:
            state["last_error"] = dict(state["last_error"])
        return {"remote": self.remote.shown if self.remote else None, **state}
