"""Operations that write: done by the running daemon when there is one, so the two never race."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from committer.commit.committer import Committer
from committer.core import logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.settings import Settings
from committer.git.setup import open_repository
from committer.ops import snapshot
from committer.ops.lock import COMMAND, InstanceLock, holder_pid
from committer.ops.mailbox import submit_request, take_answer, withdraw_request
from committer.ops.notify import Notify
from committer.ops.restore import restore
from committer.ops.state import load_parts, read_state, save_parts
from committer.policy.filters import PathFilter
from committer.sync import pull
from committer.sync.pullstate import PullRecord

log = logs.get(__name__)
ANSWER_TIMEOUT = 120.0


Operation = Callable[[Committer, PullRecord, dict[str, Any]], dict[str, Any]]


def _confirm_deletes(committer: Committer, record: PullRecord, _args: dict[str, Any]) -> dict[str, Any]:
    held_pull = record.held()
    if committer.holds.hold is None and held_pull:
        # A pull held back because it would delete too many files: apply it, deletions included.
        pulled = pull.pull(committer, record, allow_deletes=True, fetched=str(held_pull["remote_head"]))
        return {"before": held_pull, "sha": pulled.sha, "deleted": pulled.deleted, "pull": pulled.answer()}
    hold = committer.holds.hold
    before = hold.status() if hold else None
    result = committer.confirm_deletes()
    return {"before": before, "sha": result.sha, "deleted": result.changes.counts.deleted}


def _pull(committer: Committer, record: PullRecord, _args: dict[str, Any]) -> dict[str, Any]:
    return pull.pull(committer, record).answer()


def _restore(committer: Committer, _record: PullRecord, args: dict[str, Any]) -> dict[str, Any]:
    return restore(committer, str(args["path"]), str(args["rev"]), bool(args.get("dry_run")))


def _snapshot(committer: Committer, _record: PullRecord, args: dict[str, Any]) -> dict[str, Any]:
    return snapshot.create(committer, str(args.get("message") or ""), args.get("tag") or None)


OPERATIONS: dict[str, Operation] = {
    "confirm-deletes": _confirm_deletes,
    "restore": _restore,
    "snapshot": _snapshot,
    "pull": _pull,
}


def perform(committer: Committer, record: PullRecord, request: dict[str, Any]) -> dict[str, Any]:
    """Run one request; an expected failure becomes an answer, never an exception."""
    op = request.get("op")
    action = OPERATIONS.get(str(op))
    if action is None:
        return {"error": f"unknown operation {op!r}", "exit_code": 2}
    try:
        return {"ok": True, **action(committer, record, dict(request.get("args") or {}))}
    except CommitterError as exc:
        return {"error": exc.message, "exit_code": exc.exit_code}


def daemon_running(settings: Settings) -> bool:
    """Whether a daemon holds the repository (it then does the work, and pushes)."""
    pid = holder_pid(settings.git_dir)
    return pid is not None and pid > 0


def run(settings: Settings, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Ask the daemon holding the repository, or do it here under the instance lock."""
    pid = holder_pid(settings.git_dir)
    request = {"op": op, "args": args}
    answer = _ask(settings, pid, request) if pid is not None and pid > 0 else _here(settings, request)
    if "error" in answer:
        code = int(answer.get("exit_code", 1))
        raise ConfigError("request", answer["error"]) if code == 2 else CommitterError(answer["error"])
    return answer


def _ask(settings: Settings, pid: int, request: dict[str, Any]) -> dict[str, Any]:
    ident = submit_request(settings.git_dir, request)
    try:
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            answer = take_answer(settings.git_dir, ident)
            if answer is not None:
                return answer
            if holder_pid(settings.git_dir) != pid:
                break
            time.sleep(0.05)
    except ProcessLookupError:
        pass
    withdraw_request(settings.git_dir, ident)
    raise CommitterError(f"the daemon (pid {pid}) did not answer; see its logs, or stop it and try again")


def _here(settings: Settings, request: dict[str, Any]) -> dict[str, Any]:
    with InstanceLock(settings.git_dir, role=COMMAND, wait=ANSWER_TIMEOUT):
        pfilter = PathFilter(settings.data_dir, settings.ignore)
        repo = open_repository(settings, pfilter)
        # Without a daemon, the command's events wait in the outbox for the next daemon to deliver them.
        notify = Notify.for_command(settings)
        try:
            committer, record = load_parts(settings, repo, pfilter, read_state(settings.git_dir), emit=notify.emit)
            # A restore keeps what is in no commit (or sets it aside) by itself, its dry run the same way:
            # committing first would make the run do what its dry run did not say.
            # Before a first pull the local files must not start a second history: the pull keeps them.
            if request["op"] != "restore" and not (request["op"] == "pull" and committer.head is None):
                committer.reconcile()  # whatever changed meanwhile is in history before anything is overwritten
            answer = perform(committer, record, request)
            repo.sync_index()
            save_parts(settings.git_dir, committer, record)
            return answer
        finally:
            notify.stop(0.0)
