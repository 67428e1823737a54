"""/healthz: the loop turns over, the watcher and every supervised service are alive; and why the daemon
works but not wholly (degraded)."""

from __future__ import annotations

import time
from typing import Any

from committer.daemon import backups
from committer.daemon.host import Host
from committer.sync.pullstate import DIVERGED

PULL_FAILURES_DEGRADED = 3  # pulls failed in a row before /healthz says degraded (one failure is retried soon)
STALL_MARGIN = 60.0  # the loop may be inside one git for git_timeout; past this much more, it is stalled


class Health:
    """Answers /healthz (HTTP thread) and the loop's watchdog tick from the daemon's parts and services."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._heartbeat = time.monotonic()

    def beat(self) -> None:
        """The loop turned over (main thread)."""
        self._heartbeat = time.monotonic()

    def report(self) -> dict[str, Any]:
        """For /healthz: the loop turns over, the watcher and the push loop are alive."""
        host = self.host
        stalled = time.monotonic() - self._heartbeat > host.settings.git_timeout + STALL_MARGIN
        watcher = host.feed.watcher is not None and host.feed.watcher.alive()
        push_loop = host.services.state("push_loop")
        committer = host.work.committer if host.work else None
        reasons = self.degraded()
        return {
            "healthy": (watcher or not host.ready) and push_loop == "alive" and not stalled,
            "degraded": bool(reasons),
            "degraded_reasons": reasons,
            "watcher": "alive" if watcher else "down",
            "observer": host.feed.observer_kind,
            "push_loop": push_loop,
            "loop": "stalled" if stalled else "ok",
            "data_dir_missing": host.datadir.missing,
            "last_commit_at": committer.step.last_commit_at if committer else None,
            "notify": host.services.state("notify"),
            "pull": self.pull_detail(),
            "backup": backups.health(host.settings.git_dir)[0] if host.settings.remote else None,
        }

    def pull_detail(self) -> dict[str, Any] | None:
        """The pull policy's state: a divergence waiting for a person, the pull requests still open."""
        work = self.host.work
        if work is None:
            return None
        diverged = work.record.diverged()
        waiting = [{"branch": e.get("branch"), "url": e.get("url"), "state": e.get("state")}
                   for e in work.record.pull_requests() if e.get("state") != "merged" and e.get("state") != "closed"]
        return {"diverged": DIVERGED if diverged else None, "since": (diverged or {}).get("since"),
                "pull_requests": waiting}

    def degraded(self) -> list[str]:
        """Why the daemon works but not wholly: remote paths it could not write here, pulls that keep failing."""
        work, puller = self.host.work, self.host.puller
        if work is None:
            return []
        reasons = []
        unwritable = work.record.unwritable()
        if unwritable:
            reasons.append(f"{len(unwritable)} remote path(s) cannot be written here (status: unwritable_paths)")
        diverged = work.record.diverged()
        if diverged:
            reasons.append(f"{DIVERGED} since {diverged.get('since')} (pull_policy = ff-only; status: pull.diverged)")
        verify = backups.health(self.host.settings.git_dir)[1] if self.host.settings.remote else None
        if verify is not None:
            reasons.append(verify)
        failures = work.pull_failures + (puller.failures if puller is not None else 0)
        if failures >= PULL_FAILURES_DEGRADED:
            reasons.append(f"the last {failures} pulls failed (status: last_error)")
        return reasons
