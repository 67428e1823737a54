"""The daemon: wires the parts (watcher, batcher, commit side, push and pull loops, HTTP, systemd), runs
the one loop, and joins every thread it started. Signal handlers only set flags and wake the loop."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from committer.core import clock, logs
from committer.core.errors import ConfigError
from committer.core.settings import Settings, require_data_dir, require_git_dir, shown
from committer.daemon import datadir, startup
from committer.daemon.endpoints import pulls_automatic, start_http
from committer.daemon.maintenance import Maintenance
from committer.daemon.reporter import Reporter
from committer.daemon.stopnow import stop_now
from committer.daemon.wakeup import Wakeup, install
from committer.daemon.work import Work
from committer.git import lfs
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.git.setup import check_branch
from committer.ops.inbox import Inbox
from committer.ops.lock import InstanceLock
from committer.ops.notify import Notify
from committer.ops.state import load_parts, read_state
from committer.ops.stream import Stream
from committer.policy.filters import BMIGNORE, PathFilter
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.sdnotify import Notifier
from committer.sync.forges import forge_for
from committer.sync.puller import Puller
from committer.sync.pusher import Pusher
from committer.watch.batcher import Batcher
from committer.watch.watcher import Watcher

log = logs.get(__name__)

HEALTH_EVERY = 5.0
EXIT_LOCK_LOST = 4  # a restart fixes it: the next daemon takes the lock again
EXIT_DATA_GONE = 5  # a person must fix it: the data directory stayed away past missing_data_timeout
REPEAT_WINDOW = 1.0  # a second stop signal sooner than this after the first is the same request
NOTIFY_GRACE = 5.0  # at shutdown, the longest spent delivering what waits (the rest waits in the outbox)
PULL_FAILURES_DEGRADED = 3  # pulls failed in a row before /healthz says degraded (one failure is retried soon)


class Daemon:
    """One daemon per repository: watch, commit, push, until told to stop."""

    def __init__(self, settings: Settings, once: bool = False, new_branch: bool = False) -> None:
        self.settings = settings
        self.once = once
        self.new_branch = new_branch
        self.runner = GitRunner(settings.git_timeout)  # every git of this daemon starts here
        self.stopping = False
        self.signal_received: int | None = None
        self._signalled = 0.0
        self.requests_waiting = False
        self.exit_code = 0
        self.ready = False
        self.wakeup = Wakeup()
        self.lock = InstanceLock(settings.git_dir)
        self.pfilter = PathFilter(settings.data_dir, settings.ignore)
        self.metrics = Metrics()
        self.notifier = Notifier()
        self.reporter = Reporter(settings.git_dir, self.metrics, self.notifier, self.wakeup.set,
                                 {"started_at": clock.iso(clock.now(), ms=True), "settings": shown(settings)})
        self.datadir = datadir.DataDirWatch(settings.data_dir, settings.missing_data_timeout)
        self.watcher: Watcher | None = None
        self.pusher: Pusher | None = None
        self.puller: Puller | None = None
        self.http: HttpServer | None = None
        self.work: Work | None = None
        self.maintenance: Maintenance | None = None
        self.notify: Notify | None = None
        self.stream = Stream()  # the live stream of /events
        self.observer_kind: str | None = None
        self._heartbeat = time.monotonic()
        self._unlisten: Callable[[], None] | None = None

    # -- signals -------------------------------------------------------------------------------

    def install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM and SIGINT set a flag and wake the loop; returns a function that undoes it."""
        return install(self.wakeup, self.handle_signal)

    def handle_signal(self, signum: int, _frame: FrameType | None = None) -> None:
        """Only sets a flag; the loop notices it through the wakeup pipe."""
        if signum == signal.SIGUSR1:
            self.requests_waiting = True
            return
        if signum in (signal.SIGTERM, signal.SIGINT) and self.signal_received is not None:
            if time.monotonic() - self._signalled < REPEAT_WINDOW:
                return  # the same request delivered twice (a supervisor signalling the process and its group)
            # A second one: whoever sent it will not wait for the shutdown pass (a hung last push, a slow
            # commit). A thread of its own says what is left and exits; this handler only starts it.
            threading.Thread(target=stop_now, args=(signum, self.work, self.pusher), name="stop-now",
                             daemon=True).start()
            return
        self.signal_received, self._signalled = signum, time.monotonic()
        self.stopping = True
        # A git stuck on a hung disk or lock must not keep the daemon from stopping; the work it
        # was doing is redone by the shutdown pass (fast-import moves no reference unless it finished).
        self.runner.terminate()

    def _request_waiting(self) -> None:
        """A page or the webhook queued a request (HTTP thread): the loop serves it as a command's SIGUSR1."""
        self.requests_waiting = True
        self.wakeup.set()

    def _page_status(self) -> dict[str, Any]:
        """For the pages' banner (HTTP thread): the state last written, with the push state as it is now."""
        state = self.reporter.last()
        if self.pusher is not None:
            state["push"] = self.pusher.snapshot()
        return state

    def stop(self) -> None:
        """Ask the loop to finish (from any thread)."""
        self.stopping = True
        self.wakeup.set()

    # -- life cycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Start-up order: lock, stale locks, repository, watcher, reconcile; then the loop."""
        started = time.monotonic()
        require_data_dir(self.settings)
        require_git_dir(self.settings)
        check_branch(GitRepo.of(self.settings, self.runner), self.new_branch)
        self.lock.acquire()
        try:
            return self._run_locked(started)
        finally:
            if self._unlisten is not None:
                self._unlisten()
            if self.http is not None:
                self.http.stop()
            if self.notify is not None:
                self.notify.stop(0.0)
            self.notifier.close()
            self.lock.release()
            self.wakeup.close()

    def _run_locked(self, started: float) -> int:
        settings = self.settings
        repo = startup.prepare(settings, self.pfilter, self.runner, self.lock, self.new_branch)
        self.notify = notify = Notify(settings, self.metrics, self.reporter.touch)
        if settings.http and not self.once:
            notify.listen(self.stream.publish)
        notify.open()
        notify.start()  # events left by the last run or a command go out now
        committer, record = load_parts(settings, repo, self.pfilter, read_state(settings.git_dir), self.metrics.commit,
                                       emit=notify.emit)
        if settings.remote:
            self.pusher = Pusher(settings, repo, on_change=self.reporter.touch, metrics=self.metrics,
                                 on_rejected=self._push_rejected, emit=notify.emit)
            self._unlisten = forge_for(settings).on_token_refreshed(self.metrics.token_refreshed)
            if not self.once:
                self.puller = Puller(settings, repo, self.wakeup.set)
        self.maintenance = Maintenance(repo)
        inbox = Inbox(self._request_waiting, lambda: self.ready and not self.stopping)
        self.work = Work(committer, record, Batcher(settings.debounce, settings.max_delay), self.pusher,
                         self.puller, self.metrics, self.maintenance, settings.git_dir, inbox)
        if not self.once:
            self.http = start_http(settings, self.metrics, self.health, lambda: self.ready and not self.stopping,
                                   self.puller, self._forced_update, self._page_status, inbox, self.stream)
        if settings.lfs_threshold and not lfs.available():
            log.warning("lfs_unavailable", threshold=settings.lfs_threshold,
                        action="files at or above lfs_threshold are held back; install git-lfs")
        if not self.once:
            self._start_watcher()
        log.info("daemon_start", data_dir=str(settings.data_dir), git_dir=str(settings.git_dir),
                 branch=settings.branch, observer=self.observer_kind, pid=os.getpid())
        self.work.reconcile("start")
        self.ready = True
        self._report()
        log.info("daemon_ready", seconds=round(time.monotonic() - started, 3))
        self.notifier.ready(self.reporter.line)
        if self.once:
            code = self._push_once()
            notify.stop(min(self.settings.shutdown_timeout, NOTIFY_GRACE))
            self._report(running=False)
            return code
        if self.pusher is not None:
            self.pusher.start()
        if self.puller is not None:
            self.puller.start(fetch_now=pulls_automatic(settings))
        try:
            self._loop()
        finally:
            self._shutdown()
        return self.exit_code

    def _start_watcher(self) -> None:
        settings = self.settings
        self.watcher = Watcher(settings.data_dir, self.pfilter, self.wakeup.set, settings.observer,
                               settings.poll_interval)
        try:
            self.observer_kind = self.watcher.start()
            self.datadir.watched()
        except OSError as exc:
            raise ConfigError(
                "observer", f"inotify cannot watch {settings.data_dir}: {exc.strerror or exc}; "
                "use observer auto or poll, or raise fs.inotify.max_user_watches"
            ) from None

    def _push_rejected(self) -> None:
        """The remote has commits we lack: with automatic pulls on, fetch and merge them (push thread)."""
        if self.puller is not None and pulls_automatic(self.settings):
            self.puller.request("push_rejected")

    def _forced_update(self, head: str | None) -> None:
        """A webhook said the remote branch was force-pushed (http thread): the main loop records it."""
        if self.work is not None:
            self.work.forced_update(head)  # queued in the inbox, which wakes the loop

    def health(self) -> dict[str, Any]:
        """For /healthz: the loop turns over, the watcher and the push loop are alive."""
        stalled = time.monotonic() - self._heartbeat > self.settings.git_timeout + 60
        watcher = self.watcher is not None and self.watcher.alive()
        pusher = (self.pusher is None or self.pusher.alive()) and (self.puller is None or self.puller.alive())
        committer = self.work.committer if self.work else None
        reasons = self._degraded()
        return {
            "healthy": (watcher or not self.ready) and pusher and not stalled,
            "degraded": bool(reasons),
            "degraded_reasons": reasons,
            "watcher": "alive" if watcher else "down",
            "observer": self.observer_kind,
            "push_loop": "alive" if pusher else "down",
            "loop": "stalled" if stalled else "ok",
            "data_dir_missing": self.datadir.missing,
            "last_commit_at": committer.step.last_commit_at if committer else None,
            "notify": "alive" if self.notify is None or self.notify.alive() else "down",
        }

    def _degraded(self) -> list[str]:
        """Why the daemon works but not wholly: remote paths it could not write here, pulls that keep failing."""
        work = self.work
        if work is None:
            return []
        reasons = []
        unwritable = work.record.unwritable()
        if unwritable:
            reasons.append(f"{len(unwritable)} remote path(s) cannot be written here (status: unwritable_paths)")
        failures = work.pull_failures + (self.puller.failures if self.puller is not None else 0)
        if failures >= PULL_FAILURES_DEGRADED:
            reasons.append(f"the last {failures} pulls failed (status: last_error)")
        return reasons

    def _push_once(self) -> int:
        """--once: the commits are safe locally either way; a failed push still fails the run."""
        if self.pusher is None:
            return 0
        try:
            self.pusher.push_now()
        except Exception as exc:
            log.error("push_failed", error=getattr(exc, "message", str(exc)))
            return 1
        return 0

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        work = self.work
        assert work is not None and self.maintenance is not None
        every = min(HEALTH_EVERY, self.notifier.watchdog_interval or HEALTH_EVERY)
        next_health = time.monotonic() + every
        next_periodic = self._periodic_deadline()
        while not self.stopping:
            now = self._heartbeat = time.monotonic()
            deadlines = [next_health, work.batcher.next_deadline(), work.reconcile_at, next_periodic]
            self.wakeup.wait(max(0.0, min(d for d in deadlines if d is not None) - now))
            if self.stopping:
                break
            self._take_events()
            now = time.monotonic()
            changed = self.reporter.due()
            if now >= next_health:
                next_health = now + every
                self._health_tick()
                changed = True
            if self.requests_waiting:
                self.requests_waiting = False
                work.serve_requests(self._take_events)
                changed = True
            if not self.datadir.missing:  # nothing is committed until the data directory is back
                changed |= work.apply_fetched(self._take_events)
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
                self._report()

    def _health_tick(self) -> None:
        assert self.maintenance is not None
        if self.health()["healthy"]:
            self.notifier.watchdog()  # only while healthy: systemd restarts a daemon gone quiet
        if not self.lock.still_held():
            self._fail(EXIT_LOCK_LOST, "instance_lock_lost", git_dir=str(self.settings.git_dir),
                       action="exiting; a restart takes the lock again")
        self.maintenance.tick()
        seen = self.datadir.check()
        if seen == datadir.GONE:
            self._fail(EXIT_DATA_GONE, "data_dir_gone", path=str(self.settings.data_dir),
                       missing_data_timeout=self.settings.missing_data_timeout,
                       action="exiting; mount the data directory again")
        elif seen == datadir.REPLACED:
            self._restart_watcher("data_dir_replaced")
        elif seen != datadir.MISSING and self.watcher is not None and not self.watcher.alive():
            log.error("watcher_died", action="restart and full reconcile")
            self._restart_watcher("watcher_restart")

    def _periodic_deadline(self) -> float | None:
        interval = self.settings.reconcile_interval
        return time.monotonic() + interval if interval > 0 else None

    def _take_events(self) -> None:
        assert self.watcher is not None and self.work is not None
        paths, overflow = self.watcher.drain()
        now, wall = time.monotonic(), time.time()
        for path in paths:
            self.work.batcher.add(path, now, wall)
        self.work.batcher.settle(self.watcher.busy())  # a file still being written holds its batch open
        if BMIGNORE in paths and self.pfilter.refresh():
            log.info("ignore_rules_changed", path=BMIGNORE)
            self.work.schedule_reconcile("ignore_rules")
        if overflow:
            log.warning("watcher_overflow", action="full reconcile")
            self.work.schedule_reconcile("overflow")

    def _restart_watcher(self, why: str) -> None:
        assert self.watcher is not None and self.work is not None
        self.metrics.watcher_restarted()
        kind = self.watcher.restart()
        if kind is not None:
            self.observer_kind = kind
            self.datadir.watched()
        self.work.schedule_reconcile(why)

    def _fail(self, code: int, event: str, **fields: object) -> None:
        """Stop with a non-zero exit code, so the service manager's restart policy acts."""
        log.error(event, exit_code=code, **fields)
        self.exit_code = code
        self.stopping = True

    def _shutdown(self) -> None:
        """Stop watching, commit what is pending (even inside the debounce window), last push; every
        thread that was started is joined."""
        assert self.work is not None and self.maintenance is not None
        log.info("daemon_stopping", signal=self.signal_received)
        self.notifier.stopping("committing what is pending, last push")
        self.runner.timeout = min(self.settings.git_timeout, max(self.settings.shutdown_timeout, 5.0))
        if self.puller is not None:
            self.puller.stop()
        if self.watcher is not None:
            self.watcher.stop()
            self._take_events()
        self.maintenance.stop()
        if self.exit_code == EXIT_LOCK_LOST:
            return  # the repository may belong to another daemon now: write nothing
        self.work.commit_batch()
        # Events still in the kernel queue when the watcher stopped are caught by this pass.
        self.work.reconcile("shutdown")
        if self.pusher is not None:
            self.pusher.stop(self.settings.shutdown_timeout)
        if self.notify is not None:  # after the last push: its event is in the outbox too
            self.notify.stop(min(self.settings.shutdown_timeout, NOTIFY_GRACE))
        if self.http is not None:
            self.http.stop()
            self.http = None
        self._report(running=False)
        log.info("daemon_stop")

    def _report(self, running: bool = True) -> None:
        work = self.work
        self.reporter.write(
            running=running, ready=self.ready, observer=self.observer_kind, data_missing=self.datadir.missing,
            last_error=work.last_error if work else None, committer=work.committer if work else None,
            record=work.record if work else None, pusher=self.pusher, puller=self.puller,
            events=self.notify.snapshot() if self.notify else None,
        )
