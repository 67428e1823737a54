"""The daemon's side of verified backups: the verify loop built when it is on, each result recorded, told
as an event and counted, and what /healthz says of the last one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from committer.core import clock, events, logs
from committer.core.settings import Settings
from committer.daemon.supervisor import Supervisor
from committer.git.repo import GitRepo
from committer.serve.metrics import Metrics
from committer.sync import backupcheck
from committer.sync.backupcheck import Verified
from committer.sync.verifier import Verifier

log = logs.get(__name__)


def add_verifier(settings: Settings, repo: GitRepo, services: Supervisor, metrics: Metrics, emit: events.Emit,
                 touch: Callable[[], None]) -> Verifier | None:
    """The verify loop, supervised (started with the other services); None when verify_interval is off."""
    record = backupcheck.last(settings.git_dir) or {}
    ok_at = clock.parse(str(record.get("last_ok_at") or ""))
    if ok_at is not None:
        metrics.set_verified(ok_at)
    interval = backupcheck.verify_interval(settings)
    if interval <= 0:
        log.info("verify_off", reason="verify_interval is 0, or the remote is on this machine (file://) and "
                                      "verify_interval was not set", action="`committer verify` checks it by hand")
        return None

    def told(result: Verified) -> None:
        backupcheck.told(result, settings.git_dir, emit)
        metrics.verified(result.ok, result.reason, clock.parse(result.at) or time.time())
        touch()

    return services.add(Verifier(settings, repo, interval, told))


def health(git_dir: Path) -> tuple[str | None, str | None]:
    """(`ok`, `failed` or None when never verified; the degraded reason when the last verify failed)."""
    record = backupcheck.last(git_dir)
    if record is None:
        return None, None
    if record.get("ok"):
        return "ok", None
    return "failed", (f"the last verify of the remote copy failed ({record.get('reason')}): "
                      f"{record.get('message')} (status: verified)")
