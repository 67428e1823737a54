"""The push loop: latest-wins requests, tenacity backoff for transient failures, a slow re-check otherwise.

The loop sleeps until it is asked (a commit, a tag or a pull landed) or a retry is due; while commits
wait for the remote it looks again every `push_interval`. Once everything is pushed it asks git for
nothing until something happens. Every `reconcile_interval` it compares the remote branch with what
was pushed there (one ls-remote), so a remote moved by someone else is reported between pushes too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from committer.core import events, logs
from committer.core.errors import ConfigError, GitError
from committer.core.progress import OnStep, Step
from committer.core.retry import RetryCallState, Retrying, retrying
from committer.core.service import Worker
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.sync.errors import PushError
from committer.sync.push import Push
from committer.sync.pushstate import PushMetrics, PushState

log = logs.get(__name__)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, PushError) and not exc.permanent


def _log_backoff(state: RetryCallState) -> None:
    delay = state.next_action.sleep if state.next_action else 0.0
    log.info("push_backoff", attempt=state.attempt_number, seconds=round(delay, 3))


def backoff(settings: Settings, sleep: Callable[[float], None], stopped: Callable[[], bool],
            first: float = 1.0) -> Retrying:
    """Retry transient failures forever: exponential from `first` with 1 s of jitter, capped; stop when told."""
    return retrying(_retryable, settings.push_backoff_max, sleep, stopped, _log_backoff, first=first)


class Pusher(Worker):
    """Mirrors the branch and its tags to the remote from a background thread (without a remote, idle)."""

    name = "pusher"

    def __init__(
        self,
        settings: Settings,
        repo: GitRepo,
        on_change: Callable[[], None] | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
        metrics: PushMetrics | None = None,
        on_rejected: Callable[[], None] | None = None,
        emit: events.Emit = events.nothing,
        first_delay: float = 1.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.first_delay = first_delay  # the first backoff delay, doubling from there
        self.repo = repo
        self.state = PushState(metrics)
        self.push = Push(settings, repo, self.state, on_change, on_rejected, emit) if settings.remote else None
        self.remote = self.push.remote if self.push else None
        if self.push is not None:
            logs.expect_pushes()  # a console save line tells what became of it
        self._retry_now = False
        self._wake = threading.Event()
        self._sleep = sleep or self._wait
        self._deadline = 0.0

    # -- the thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background loop; a first check runs at once. Without a remote, or running, nothing."""
        if self.push is None or self.alive():
            return
        self._wake.set()
        super().start()

    def request(self) -> None:
        """Ask for a push soon; never blocks, and many requests make one push."""
        self._wake.set()

    def retry_now(self) -> None:
        """Push now even while waiting out a failure, permanent or transient: something changed (a pull merged,
        a command asked)."""
        self._retry_now = True
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """End the loop after one last push attempt, if commits are pending, within `timeout` seconds
        (None: shutdown_timeout); never started, the attempt runs here."""
        if self.stopping and not self.alive():
            return  # already stopped
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        if not self.alive():
            self._stop.set()
            if self.push is not None:
                self._final()
            return
        super().stop(timeout)

    def interrupt(self) -> None:
        self._wake.set()
        if self.ident is not None and self.alive():
            # Bookkeeping in flight (reading or recording refs) is local and redone at the next start;
            # a slow one must not hold the stop. The network push keeps its bounded last attempt.
            self.repo.runner.terminate(self.ident)

    def cut(self) -> float | None:
        if self.ident is not None:
            # An attempt that started before stop() still runs on its own, longer deadline: cut it.
            self.repo.runner.terminate(self.ident, network=True)
        return self.settings.push_timeout

    def _wait(self, seconds: float) -> None:
        """Backoff sleep: ends at once on stop or retry_now(); requests only refresh the status, they do not
        shorten it."""
        end = time.monotonic() + seconds
        while not self._stop.is_set() and (left := end - time.monotonic()) > 0:
            if self._wake.wait(left):
                self._wake.clear()
                if self._retry_now:
                    self._retry_now = False
                    return
                if self.push is not None and not self._stop.is_set():
                    self.push.pending()

    def run(self) -> None:
        assert self.push is not None
        retry_at: float | None = None  # after a permanent failure, no push before this (monotonic) time
        interval = self.settings.reconcile_interval
        check_at = time.monotonic() + interval if interval > 0 else None
        while True:
            due = [t for t in (retry_at, check_at) if t is not None]
            if self.state.snapshot()["pending_commits"]:
                due.append(time.monotonic() + self.settings.push_interval)  # commits wait: look again soon
            self._wake.wait(max(0.0, min(due) - time.monotonic()) if due else None)
            woken = self._wake.is_set() or bool(self.state.snapshot()["pending_commits"])
            self._wake.clear()
            if self._stop.is_set():
                break
            if self._retry_now:
                self._retry_now, retry_at = False, None
            try:
                if check_at is not None and time.monotonic() >= check_at:
                    check_at = time.monotonic() + interval
                    if self.push.check_remote() and retry_at is not None:
                        retry_at = None  # the remote is back where it was: push at once
                if retry_at is not None and time.monotonic() < retry_at:
                    if woken:
                        self.push.pending()  # keep status current without hammering the remote
                    continue
                backoff(self.settings, self._sleep, self._stop.is_set, self.first_delay)(self._cycle)
                retry_at = None
            except PushError as exc:
                retry_at = time.monotonic() + self.settings.push_backoff_max if exc.permanent else None
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
        assert self.push is not None
        remaining = self._deadline - time.monotonic()
        try:
            if remaining > 0.1:
                self._attempt(min(self.settings.push_timeout, remaining))
            elif self.push.pending().needed:
                log.warning("push_final_skipped", reason="no time left")
        except PushError as exc:
            log.warning("push_final_failed", kind=exc.kind, message=exc.detail)
        except GitError as exc:
            log.warning("push_final_failed", kind="unknown", message=exc.message)

    def _attempt(self, timeout: float) -> dict[str, Any]:
        assert self.push is not None
        # a long push (a first one of a large tree) logs git's progress every progress_interval
        with logs.Every("push_progress", self.settings.progress_interval, remote=self.push.remote.shown) as line:
            def step(step: Step) -> None:
                line.update(phase=step.phase, done=step.done, total=step.total, size=step.size)

            if self._stop.is_set():  # shutting down: no call may outlive stop()'s deadline
                hard = max(0.1, self._deadline - time.monotonic())
                return self.push.once(min(timeout, hard), hard=hard, progress=step)
            return self.push.once(timeout, progress=step)

    # -- for commands and status ---------------------------------------------------------------

    def push_now(self, progress: OnStep | None = None) -> dict[str, Any]:
        """Push pending commits and tags now, once; raises PushError when the remote refuses. `progress`:
        git's progress, step by step (a bar on a terminal)."""
        if self.push is None:
            raise ConfigError("remote", "no remote is configured; set --remote or COMMITTER_REMOTE")
        return self.push.once(self.settings.push_timeout, retried=False, progress=progress)

    def check_remote(self) -> bool:
        """Compare the remote branch with what was pushed there now; True when a divergence just ended."""
        return self.push.check_remote() if self.push is not None else False

    def snapshot(self) -> dict[str, Any]:
        """Push status for `status` and the state file; recomputed now unless the loop keeps it fresh."""
        if not self.alive() and self.push is not None:
            try:
                self.push.pending()
            except GitError as exc:
                log.warning("push_status_failed", message=exc.message)
        return {"remote": self.remote.shown if self.remote else None, **self.state.snapshot()}
