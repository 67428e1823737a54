"""The daemon's verify loop: `committer verify` every `verify_interval`, on a thread of its own.

The next run is due `verify_interval` after the last one recorded (by this loop or by a command), so a restart
does not verify again at once; a failed one is tried again within the hour; a repository that never verified
does it shortly after start (once something was pushed)."""

from __future__ import annotations

import time
from collections.abc import Callable

from committer.core import clock, logs
from committer.core.service import Worker
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.sync import backupcheck
from committer.sync.backupcheck import Verified

log = logs.get(__name__)

FIRST_DELAY = 300.0  # after start, before a repository that never verified does (unless the interval is shorter)
RETRY_FAILED = 3600.0  # a failed verify is tried again this soon (unless the interval is shorter)
NOTHING_YET = 60.0  # nothing pushed yet: look again this soon


class Verifier(Worker):
    """Runs the verify when it is due and hands each result to `on_result` (record, event, metrics)."""

    name = "verify"

    def __init__(self, settings: Settings, repo: GitRepo, interval: float,
                 on_result: Callable[[Verified], None]) -> None:
        super().__init__()
        self.settings = settings
        self.repo = repo
        self.interval = interval
        self.on_result = on_result
        self._started_at = time.time()

    def due(self, now: float) -> float:
        """When the next verify is due (wall clock), from the last record."""
        record = backupcheck.last(self.repo.git_dir) or {}
        at = clock.parse(str(record.get("at") or ""))
        if at is None:
            return self._started_at + min(self.interval, FIRST_DELAY)
        return at + (self.interval if record.get("ok") else min(self.interval, RETRY_FAILED))

    def run(self) -> None:
        while not self.stopping:
            if self.pause(self.due(time.time()) - time.time()):
                return
            result = backupcheck.verify(self.settings, self.repo, cancelled=lambda: self.stopping)
            if self.stopping:
                return  # cut short by the stop: not a result
            if result.reason == "nothing_pushed":
                if self.pause(min(self.interval, NOTHING_YET)):
                    return
                continue
            try:
                self.on_result(result)
            except Exception:  # a broken listener must not stop the checks
                log.exception("verify_report_failed")

    def interrupt(self) -> None:
        # A verify under way has no use once the daemon stops: its fetch or fsck ends now, nothing is lost.
        if self.ident is not None and self.alive():
            self.repo.runner.terminate(self.ident, network=True)
