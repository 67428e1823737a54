"""The daemon's one loop, on the main thread: one wait (the self-pipe, until the nearest deadline), then
whatever is due: the watcher's paths into the batcher, the health tick, commands' requests, what the pull
loop fetched, a batch, a reconcile; the state file when something changed."""

from __future__ import annotations

import time

from committer.core import logs
from committer.daemon import datadir
from committer.daemon.health import Health
from committer.daemon.host import Host

log = logs.get(__name__)

HEALTH_EVERY = 5.0
EXIT_LOCK_LOST = 4  # a restart fixes it: the next daemon takes the lock again
EXIT_DATA_GONE = 5  # a person must fix it: the data directory stayed away past missing_data_timeout


class Loop:
    """Runs until the daemon is stopping; every wait is the wakeup pipe's, so a stop is noticed at once."""

    def __init__(self, host: Host, health: Health) -> None:
        self.host = host
        self.health = health
        self.take_events = host.feed.take_events

    def run(self) -> None:
        host, work = self.host, self.host.work
        assert work is not None and host.maintenance is not None
        every = min(HEALTH_EVERY, host.notifier.watchdog_interval or HEALTH_EVERY)
        next_health = time.monotonic() + every
        next_periodic = self._periodic_deadline()
        while not host.stopping:
            self.health.beat()
            now = time.monotonic()
            deadlines = [next_health, work.batcher.next_deadline(), work.reconcile_at, next_periodic]
            host.wakeup.wait(max(0.0, min(d for d in deadlines if d is not None) - now))
            if host.stopping:
                break
            self.take_events()
            now = time.monotonic()
            changed = host.reporter.due()
            if now >= next_health:
                next_health = now + every
                self._health_tick()
                changed = True
            if host.requests_waiting:
                host.requests_waiting = False
                work.serve_requests(self.take_events)
                changed = True
            if not host.datadir.missing:  # nothing is committed until the data directory is back
                changed |= work.apply_fetched(self.take_events)
                if work.batcher.due(now):
                    work.commit_batch()
                    changed = True
                if next_periodic is not None and now >= next_periodic:
                    next_periodic = self._periodic_deadline()
                    work.schedule_reconcile("periodic")
                if work.reconcile_at is not None and now >= work.reconcile_at:
                    if work.reconcile_why == "periodic" and work.batcher.waiting():
                        # a file is still being written: the routine scan comes after its batch (max_delay)
                        work.reconcile_at = work.batcher.next_deadline()
                    else:
                        work.reconcile(work.reconcile_why)
                        changed = True
            if changed:
                host.report()
                work.traces.reported(host.reporter.push(), host.reporter.touched_at)

    def _health_tick(self) -> None:
        host = self.host
        assert host.maintenance is not None
        if self.health.report()["healthy"]:
            host.notifier.watchdog()  # only while healthy: systemd restarts a daemon gone quiet
        if not host.lock.still_held():
            self.fail(EXIT_LOCK_LOST, "instance_lock_lost", git_dir=str(host.settings.git_dir),
                      action="exiting; a restart takes the lock again")
        host.maintenance.tick()
        seen = host.datadir.check()
        if seen == datadir.GONE:
            self.fail(EXIT_DATA_GONE, "data_dir_gone", path=str(host.settings.data_dir),
                      missing_data_timeout=host.settings.missing_data_timeout,
                      action="exiting; mount the data directory again")
        elif seen == datadir.REPLACED:
            host.feed.restart("data_dir_replaced")
        elif seen != datadir.MISSING and host.feed.watcher is not None and not host.feed.watcher.alive():
            log.error("watcher_died", action="restart and full reconcile")
            host.feed.restart("watcher_restart")

    def _periodic_deadline(self) -> float | None:
        interval = self.host.settings.reconcile_interval
        return time.monotonic() + interval if interval > 0 else None

    def fail(self, code: int, event: str, **fields: object) -> None:
        """Stop with a non-zero exit code, so the service manager's restart policy acts."""
        log.error(event, exit_code=code, **fields)
        self.host.exit_code = code
        self.host.stopping = True
