"""What the main loop does, one thing at a time: commit a batch, reconcile, serve a request (a command's
from the mailbox, a page's or the webhook's from the inbox), apply what the pull loop fetched. One failure
never stops the daemon: it is logged, shown in status, and retried through a reconcile with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from committer.commit.committer import Committer
from committer.commit.step import CommitResult
from committer.commit.trace import Trace
from committer.core import clock, logs
from committer.core.errors import CommitterError
from committer.core.retry import Backoff
from committer.daemon.maintenance import Maintenance
from committer.daemon.traces import Traces
from committer.ops.asking import NOW, SOON, Answer, Request
from committer.ops.inbox import Inbox
from committer.ops.kinds import REQUESTS, Forced
from committer.ops.mailbox import answer_request, pending_requests
from committer.policy.filters import BMIGNORE
from committer.serve.metrics import Metrics
from committer.sync import conflicts, pull, unwritable
from committer.sync.puller import Puller
from committer.sync.pullstate import PullRecord
from committer.sync.pusher import Pusher
from committer.watch.batcher import Batcher

log = logs.get(__name__)

RETRY_FIRST, RETRY_MAX = 2.0, 60.0


@dataclass(eq=False)
class Work:
    """The commit side, the pull record and the batcher, driven by the main loop (their only thread)."""

    committer: Committer
    record: PullRecord
    batcher: Batcher
    pusher: Pusher | None
    puller: Puller | None
    metrics: Metrics
    maintenance: Maintenance
    git_dir: Path
    # the daemon's own threads' requests (the pages, the webhook); by default one that never wakes the loop
    inbox: Inbox = field(default_factory=lambda: Inbox(lambda: None, lambda: True))
    last_error: dict[str, str] | None = field(default=None, init=False)
    failed_once: bool = field(default=False, init=False)  # a commit or pull failed in this run (stays set)
    reconcile_at: float | None = field(default=None, init=False)
    reconcile_why: str = field(default="start", init=False)
    _retry: Backoff = field(default_factory=lambda: Backoff(RETRY_FIRST, RETRY_MAX), init=False)
    pull_failures: int = field(default=0, init=False)  # pulls that failed in a row (health: degraded)
    traces: Traces = field(init=False)  # where each batch's time went (batch_trace, debug)

    def __post_init__(self) -> None:
        self.traces = Traces(self.pusher is not None)

    # -- commits ---------------------------------------------------------------------------------

    def schedule_reconcile(self, why: str, delay: float = 0.0) -> None:
        at = time.monotonic() + delay
        if self.reconcile_at is None or at < self.reconcile_at:
            self.reconcile_at, self.reconcile_why = at, why

    def commit_batch(self) -> None:
        batch = self.batcher.take()
        if batch is None:
            return
        trace = Trace(batch.first_event)
        trace.mark("batch_closed")
        result = self._guarded(lambda c: c.commit(batch.paths, first_event=batch.first_event_wall, trace=trace),
                               what="batch")
        if result is not None and result.sha is not None:
            trace.sha = result.sha
            state = getattr(self.pusher, "state", None)  # the push side now, without asking git
            self.traces.committed(trace, result.batch, state.snapshot() if state is not None else None)

    def reconcile(self, why: str) -> None:
        self.reconcile_at = None
        log.info("reconcile", why=why)
        try:
            unwritable.retry_unwritable(self.committer, self.record)  # before: what is written now is no change
        except Exception as exc:  # a retry must never stop the reconcile
            log.warning("pull_retry_failed", error=str(exc))
        # a long scan (a first start on a large tree) is not silent: a line every progress_interval
        with logs.Every("reconcile_progress", self.committer.settings.progress_interval, why=why) as line:
            self._guarded(lambda c: c.reconcile(progress=line.advance), what="reconcile")

    def _guarded(self, action: Callable[[Committer], CommitResult], what: str) -> CommitResult | None:
        """One failure never stops the daemon: log it and retry through a reconcile with backoff (None)."""
        try:
            result = action(self.committer)
        except Exception as exc:  # any failure of one batch must not stop watching
            delay = self._retry.next()
            message = exc.message if isinstance(exc, CommitterError) else f"{type(exc).__name__}: {exc}"
            log.error("commit_failed", what=what, error=message, retry_in=delay,
                      exc_info=not isinstance(exc, CommitterError))
            self.last_error = {"kind": "commit", "message": message, "at": clock.iso(clock.now(), ms=True)}
            self.failed_once = True
            self.reconcile_at = None
            self.schedule_reconcile("retry", delay)
            self.committer.refresh_head()
            return None
        self._retry.reset()
        self.last_error = None
        if self.committer.step.beside.fold_again is not None:  # rclone bisync's conflict files, still being written
            self.schedule_reconcile("bisync_conflict", self.committer.step.beside.fold_again)
        if result.sha is not None and self.record.get("conflicts"):
            conflicts.settle_conflicts(self.committer.repo, result.sha, self.record)  # resolved ones leave the list
        if result.sha is None:
            log.debug("no_commit", what=what, batch=result.batch, why="nothing differs from HEAD")
            return result
        if self.pusher is not None:
            self.pusher.request()
        self.maintenance.committed()
        return result

    def _rules_pulled(self, before: int) -> None:
        """A pull wrote a new .bmignore (and the filter took it): reconcile, as for a .bmignore edited here."""
        if self.committer.pfilter.generation != before:
            log.info("ignore_rules_changed", path=BMIGNORE, why="pulled")
            self.schedule_reconcile("ignore_rules")

    # -- what commands and the remote ask for -------------------------------------------------------

    def forced_update(self, head: str | None) -> None:
        """A webhook said the remote branch was force-pushed (HTTP thread): queued for the loop, in order."""
        self.inbox.tell(Forced(head))

    def serve_requests(self, take_events: Callable[[], None]) -> None:
        """Serve what was asked: commands' requests in the mailbox (SIGUSR1), then the daemon's own threads'
        in the inbox (a page's restore, the webhook's forced update), each the same way."""
        for ident, value in pending_requests(self.git_dir):
            answer = self._serve(value, take_events, ident)
            answer_request(self.git_dir, ident, answer.to_json())
            self._push(answer)
        while (ticket := self.inbox.take()) is not None:
            answer = self._serve(ticket.request, take_events, ticket.ident if ticket.future is not None else None)
            ticket.answer(answer)
            self._push(answer)

    def _serve(self, asked: Request | Mapping[str, Any], take_events: Callable[[], None], ident: str | None) -> Answer:
        """Commit what is pending, then do it; `asked` from the mailbox is parsed here, so a request that does
        not parse is answered like one that fails. Logged when someone waits for the answer."""
        op = asked.get("op") if isinstance(asked, Mapping) else asked.op
        if isinstance(asked, Mapping) or asked.commit_first:
            take_events()
            self.commit_batch()
        if ident is not None:
            log.info("request", op=op, id=ident)
        rules = self.committer.pfilter.generation
        try:
            request = REQUESTS.parse(asked, remote=True) if isinstance(asked, Mapping) else asked
            answer = REQUESTS.perform(self.committer, self.record, request)
        except CommitterError as exc:  # a request from another process that names no known operation
            answer = Answer.failed(exc.message, exc.exit_code)
        except Exception as exc:  # a request must never take the daemon down
            log.error("request_failed", op=op, error=str(exc), exc_info=True)
            answer = Answer.failed(f"{type(exc).__name__}: {exc}", 1)
            self.committer.refresh_head()
        self._rules_pulled(rules)
        return answer

    def _push(self, answer: Answer) -> None:
        """What the answer says the push loop does: push now (a new commit also ends a wait), or soon."""
        if self.pusher is None:
            return
        if answer.push == NOW:
            self.pusher.retry_now()
        elif answer.push == SOON:
            self.pusher.request()

    def apply_fetched(self, take_events: Callable[[], None]) -> bool:
        """Apply what the pull loop fetched, after committing what is pending (so nothing is overwritten);
        True when something was done (the state changed)."""
        fetched = self.puller.take() if self.puller is not None else None
        if fetched is None:
            return False
        if fetched == self.committer.head:
            if self.record.refused():  # the remote is back where we are: nothing is refused
                pull.note(self.record, pull.PullResult(pull.UP_TO_DATE, remote=fetched, old=fetched, new=fetched))
                return True
            return False
        take_events()
        self.commit_batch()
        rules = self.committer.pfilter.generation
        try:
            result = pull.pull(self.committer, self.record, fetched=fetched)
        except Exception as exc:  # a failed pull must not stop the daemon; the next fetch tries again
            message = exc.message if isinstance(exc, CommitterError) else f"{type(exc).__name__}: {exc}"
            log.error("pull_failed", error=message, exc_info=not isinstance(exc, CommitterError))
            if self.puller is not None:
                self.puller.forget()
            self.last_error = {"kind": "pull", "message": message, "at": clock.iso(clock.now(), ms=True)}
            self.failed_once = True
            self.pull_failures += 1
            self.committer.refresh_head()
            self._rules_pulled(rules)
            return True
        self._rules_pulled(rules)
        self.pull_failures = 0
        self.metrics.pulled(result.outcome, len(result.conflicts))
        if result.sha is not None and self.pusher is not None:
            self.pusher.retry_now()
        return True
