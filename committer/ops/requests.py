"""Operations that write: done by the running daemon when there is one, so the two never race."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from committer.commit.committer import Committer
from committer.core import logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.settings import Settings
from committer.git.setup import open_repository
from committer.ops.asking import ANSWER_TIMEOUT, Answer, Request, as_json
from committer.ops.kinds import REQUESTS, AllowSecret, PullNow, Restore
from committer.ops.lock import COMMAND, InstanceLock, holder_pid
from committer.ops.mailbox import submit_request, take_answer, withdraw_request
from committer.ops.notify import Notify
from committer.ops.state import load_parts, read_state, save_parts
from committer.policy.filters import PathFilter
from committer.sync.pullstate import PullRecord

log = logs.get(__name__)


def perform(committer: Committer, record: PullRecord, request: Request) -> Answer:
    """Run one request; an expected failure becomes an answer, never an exception."""
    return REQUESTS.perform(committer, record, request)


def daemon_running(settings: Settings) -> bool:
    """Whether a daemon holds the repository (it then does the work, and pushes)."""
    pid = holder_pid(settings.git_dir)
    return pid is not None and pid > 0


class Refused(ConfigError):
    """A request refused for a usage reason (exit 2): its answer already names the setting (`--to: ...`)."""

    def __init__(self, message: str) -> None:
        CommitterError.__init__(self, message)
        self.setting = "request"


def run(settings: Settings, request: Request) -> dict[str, Any]:
    """Ask the daemon holding the repository, or do it here under the instance lock; the answer's JSON."""
    pid = holder_pid(settings.git_dir)
    answer = _ask(settings, pid, request) if pid is not None and pid > 0 else _here(settings, request)
    if answer.error is not None:
        raise Refused(answer.error) if answer.exit_code == 2 else CommitterError(answer.error)
    return answer.to_json()


def _ask(settings: Settings, pid: int, request: Request) -> Answer:
    ident = submit_request(settings.git_dir, as_json(request))
    try:
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            answer = take_answer(settings.git_dir, ident)
            if answer is not None:
                return Answer.from_json(answer)
            if holder_pid(settings.git_dir) != pid:
                break
            time.sleep(0.05)
    except ProcessLookupError:
        pass
    withdraw_request(settings.git_dir, ident)
    raise CommitterError(f"the daemon (pid {pid}) did not answer; see its logs, or stop it and try again")


def _here(settings: Settings, request: Request) -> Answer:
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
            # A look at a held secret (a dry run) commits nothing either.
            looks = isinstance(request, Restore) or (isinstance(request, AllowSecret) and request.dry_run)
            if not looks and not (isinstance(request, PullNow) and committer.head is None):
                committer.reconcile()  # whatever changed meanwhile is in history before anything is overwritten
            answer = perform(committer, record, request)
            repo.sync_index()
            save_parts(settings.git_dir, committer, record)
            return answer
        finally:
            notify.stop(0.0)
