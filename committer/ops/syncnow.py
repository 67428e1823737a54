"""The sync-now barrier: `committer sync [--wait]`, `POST /sync` and the agents' `sync_now` tool.

The running daemon takes what is pending now (its open batch at once, then one scan of the whole tree, shared
by callers that ask together), commits it and pushes at once; the caller learns the commit that holds it
and, waiting, whether the remote has it: the private ref that records what the remote confirmed
(`refs/committer/pushed/...`) holds that commit. At the deadline the answer says what is in the way: the
push's last error, a deletion hold, files kept out for their content, size or type.

Without a daemon the command does it itself: a reconcile and commit under the instance lock, then the push,
retried with backoff while there is time (nobody else would push it later).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from committer.core import clock, logs
from committer.core.errors import CommitterError, redact
from committer.core.retry import Backoff
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.ops import requests
from committer.ops.asking import Answer, Request
from committer.ops.kinds import SyncNow
from committer.ops.state import read_state
from committer.sync.errors import PERMANENT
from committer.sync.refs import PUSHED_PREFIX

log = logs.get(__name__)

POLL_FIRST, POLL_MOST = 0.05, 0.5  # how often a waiting caller looks at the pushed ref (doubling)
Ask = Callable[[Request], Answer]
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class SyncAnswer:
    """How a sync went: the commit that holds what was pending (None before any commit), whether the remote
    has it, and what is in the way (None when nothing is: pushed, or no remote, or, not waiting, the push
    asked for; a failed push, a deletion hold or files kept out for their content are in the way)."""

    commit: str | None
    pushed: bool
    reason: str | None
    remote: str | None = None
    in_the_way: Mapping[str, Any] = field(default_factory=dict)
    by: str = "daemon"  # who committed and pushed: the running daemon, or this process ("command")
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason is None

    def as_dict(self) -> dict[str, Any]:
        """The answer as JSON: what `sync --json`, `POST /sync` and the MCP tool give."""
        return {"ok": self.ok, "commit": self.commit, "pushed": self.pushed, "reason": self.reason,
                "remote": self.remote, "in_the_way": dict(self.in_the_way), "by": self.by,
                "seconds": round(self.seconds, 3)}


def sync_now(settings: Settings, *, wait: bool, timeout: float, ask: Ask | None = None,
             status: Callable[[], Mapping[str, Any]] | None = None, repo: GitRepo | None = None) -> SyncAnswer:
    """Commit what is pending now and push it; with `wait`, return once the remote has it or `timeout`
    seconds have passed (then `reason` says what is in the way). `ask`, `status`, `repo`: inside the daemon
    (a page, the HTTP MCP server), its inbox, its state and a read-only repository; elsewhere the daemon is
    asked through the mailbox, or, when none runs, the work is done here. CommitterError when the daemon
    does not answer."""
    if ask is not None:
        return sync_in_daemon(ask, status or (lambda: read_state(settings.git_dir)), repo or GitRepo.of(settings),
                              wait=wait, timeout=timeout)
    started = time.monotonic()
    deadline = started + max(0.0, timeout)
    if not requests.daemon_running(settings):
        return _here(settings, wait, deadline, started)
    payload = requests.run(settings, SyncNow(asked_at=time.time()))
    return _wait(GitRepo.of(settings), payload, wait, deadline, lambda: read_state(settings.git_dir), started)


def sync_in_daemon(ask: Ask, status: Callable[[], Mapping[str, Any]], repo: GitRepo, *, wait: bool,
                   timeout: float, gone: Callable[[], bool] = lambda: False) -> SyncAnswer:
    """The same from one of the daemon's own threads (`POST /sync`, the MCP server over HTTP): `ask` is its
    inbox, `status` its state, `repo` a repository for reading refs; `gone`: the client went away, so the wait
    ends (the commit and the push go on)."""
    started = time.monotonic()
    payload = ask(SyncNow(asked_at=time.time())).payload
    return _wait(repo, payload, wait, started + max(0.0, timeout), status, started, gone)


def _wait(repo: GitRepo, payload: Mapping[str, Any], wait: bool, deadline: float,
          status: Callable[[], Mapping[str, Any]], started: float,
          gone: Callable[[], bool] = lambda: False) -> SyncAnswer:
    """Look at the pushed ref until it holds the commit (or the deadline, or a push failure that the push loop
    does not retry soon), then say how it went."""
    commit, remote, ref = payload.get("commit"), payload.get("remote"), payload.get("pushed_ref")
    if not (isinstance(commit, str) and _SHA.fullmatch(commit)):
        commit = None
    if not (isinstance(ref, str) and ref.startswith(PUSHED_PREFIX)):  # the daemon's answer is still data
        ref = None
    blocked = dict(payload.get("in_the_way") or {})
    asked = time.time() - (time.monotonic() - started)
    pushed = False
    if commit and remote and ref:
        delay, stop = POLL_FIRST, threading.Event()
        while not (pushed := has(repo, ref, commit)) and wait and time.monotonic() < deadline:
            if gone() or (delay >= POLL_MOST and _given_up(_push_error(status()), asked)):
                break
            stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, POLL_MOST)
    error = None if pushed else _push_error(status())
    reason = _reason(commit, remote, pushed, blocked, error, waited=wait)
    return SyncAnswer(commit, pushed, reason, remote, blocked, "daemon", time.monotonic() - started)


def _given_up(error: Mapping[str, Any] | None, asked: float) -> bool:
    """Whether a push tried since the sync was asked failed for good (auth, non_fast_forward, ...): the push
    loop waits push_backoff_max before it tries again, so waiting longer here tells nothing new."""
    if error is None or error.get("kind") not in PERMANENT:
        return False
    at = clock.parse(str(error.get("at") or ""))
    return at is not None and at >= int(asked)  # the error's time has whole seconds


def has(repo: GitRepo, ref: str, commit: str) -> bool:
    """Whether the remote confirmed `commit` (or a commit after it): the pushed ref holds it."""
    proc = repo.git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
    pushed = proc.stdout.decode().strip()
    if not pushed:
        return False
    if pushed == commit:
        return True
    return repo.git("merge-base", "--is-ancestor", commit, pushed, check=False).returncode == 0


def _push_error(state: Mapping[str, Any]) -> Mapping[str, Any] | None:
    push = state.get("push") if isinstance(state.get("push"), Mapping) else {}
    error = (push or {}).get("last_error")
    return error if isinstance(error, Mapping) else None


def _reason(commit: object, remote: object, pushed: bool, blocked: Mapping[str, Any],
            error: Mapping[str, Any] | None, waited: bool) -> str | None:
    """One sentence saying what is in the way; None when nothing is."""
    parts = []
    if remote and commit and not pushed:  # no commit yet: the data directory holds nothing to back up
        short = str(commit)[:12]
        if error is not None:
            parts.append(f"the remote does not have {short}: the last push failed ({error.get('kind')}): "
                         f"{error.get('message')}")
        elif waited:
            parts.append(f"the remote does not have {short} yet: the push is still under way")
        # not waiting, a push under way is what was asked for: nothing is in the way
    hold = blocked.get("hold")
    if isinstance(hold, Mapping):
        parts.append(f"{hold.get('count')} deletion(s) are on hold ({hold.get('reason')}), not committed: "
                     "`committer confirm-deletes` commits them, `committer put-back` writes them back")
    count = int(blocked.get("file_count") or 0)
    if count:
        files = blocked.get("files") or []
        named = ", ".join(f"{f.get('path')} ({f.get('reason')})" for f in files[:3] if isinstance(f, Mapping))
        more = f" and {count - 3} more" if count > 3 else ""
        parts.append(f"{count} file(s) are kept out of history: {named}{more} (see `committer status`)")
    return "; ".join(parts) or None


def _here(settings: Settings, wait: bool, deadline: float, started: float) -> SyncAnswer:
    """No daemon: reconcile and commit under the instance lock (the request's own path), then push, retrying
    transient failures while there is time."""
    payload = requests.run(settings, SyncNow(asked_at=time.time(), scan=False))  # it reconciles first itself
    commit, remote = payload.get("commit"), payload.get("remote")
    blocked = dict(payload.get("in_the_way") or {})
    pushed, error = False, None
    if commit and remote:
        pushed, error = _push_here(settings, wait, deadline)
    reason = _reason(commit, remote, pushed, blocked, error, waited=wait)
    return SyncAnswer(commit, pushed, reason, remote, blocked, "command", time.monotonic() - started)


def _push_here(settings: Settings, wait: bool, deadline: float) -> tuple[bool, Mapping[str, Any] | None]:
    """Push from this process: once, or until the deadline when waiting (a permanent failure ends it)."""
    from committer.ops.notify import Notify
    from committer.sync.errors import PushError
    from committer.sync.pusher import Pusher

    notify = Notify.for_command(settings)  # git_push / push_failed wait in the outbox for the next daemon
    backoff, stop = Backoff(1.0, settings.push_backoff_max), threading.Event()
    try:
        pusher = Pusher(settings, GitRepo.of(settings), emit=notify.emit)
        while True:
            try:
                pusher.push_now()
                return True, None
            except PushError as exc:
                error = {"kind": exc.kind, "message": redact(exc.detail)}
                left = deadline - time.monotonic()
                if not wait or exc.permanent or left <= 0:
                    return False, error
                stop.wait(min(backoff.next(), left))
    except CommitterError as exc:
        return False, {"kind": "unknown", "message": exc.message}
    finally:
        notify.stop(0.0)
