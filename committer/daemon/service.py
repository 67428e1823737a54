"""The daemon: wires the parts (watcher, batcher, commit side, the services: push and pull loops, event
couriers, maintenance; HTTP, systemd) and hands over to the loop (`daemon/loop.py`) and the shutdown pass
(`daemon/shutdown.py`). Signal handlers only set flags and wake the loop."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from committer.core import clock, logs
from committer.core.places import require_data_dir, require_git_dir
from committer.core.settings import Settings, shown
from committer.daemon import backups, datadir, startup
from committer.daemon.endpoints import pulls_automatic, start_http
from committer.daemon.feed import Feed
from committer.daemon.health import Health
from committer.daemon.loop import EXIT_LOCK_LOST, Loop
from committer.daemon.maintenance import Maintenance
from committer.daemon.reporter import Reporter
from committer.daemon.shutdown import Shutdown
from committer.daemon.signals import REPEAT_WINDOW, Signals
from committer.daemon.supervisor import Supervisor
from committer.daemon.wakeup import Wakeup, install
from committer.daemon.work import Work
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.git.setup import check_branch
from committer.ops.inbox import Inbox
from committer.ops.lock import InstanceLock
from committer.ops.notify import Notify
from committer.ops.state import load_parts, read_state
from committer.ops.stream import Stream
from committer.policy.filters import PathFilter
from committer.serve.metrics import Metrics
from committer.serve.sdnotify import Notifier
from committer.sync import backupcheck
from committer.sync.forges import forge_for
from committer.sync.puller import Puller
from committer.sync.pusher import Pusher
from committer.watch.batcher import Batcher

if TYPE_CHECKING:  # imported with --http only (daemon/endpoints.py)
    from committer.serve.app import HttpServer

log = logs.get(__name__)

__all__ = ["REPEAT_WINDOW", "Daemon"]  # REPEAT_WINDOW: where the second-signal rule was always read from


class Daemon:
    """One daemon per repository: watch, commit, push, until told to stop."""

    def __init__(self, settings: Settings, once: bool = False, new_branch: bool = False) -> None:
        self.settings = settings
        self.once = once
        self.new_branch = new_branch
        self.runner = GitRunner(settings.git_timeout)  # every git of this daemon starts here
        self.stopping = False
        self.signal_received: int | None = None
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
        self.pusher: Pusher | None = None
        self.puller: Puller | None = None
        self.http: HttpServer | None = None
        self.work: Work | None = None
        self.maintenance: Maintenance | None = None
        self.notify: Notify | None = None
        self.stream = Stream()  # the live stream of /events
        self.feed = Feed(settings, self.pfilter, self.wakeup, self.datadir, self.metrics)  # the watcher's side
        self.services = Supervisor()  # every worker thread, started, stopped and checked alike
        self.health = Health(self)
        self.signals = Signals(self)
        self._unlisten: Callable[[], None] | None = None
        self._arming: startup.Arming | None = None  # the watches, armed beside the repository's check

    # -- signals -------------------------------------------------------------------------------

    def install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM and SIGINT set a flag and wake the loop; returns a function that undoes it."""
        return install(self.wakeup, self.signals.handle)

    def _request_waiting(self) -> None:
        """A page or the webhook queued a request (HTTP thread): the loop serves it as a command's SIGUSR1."""
        self.requests_waiting = True
        self.wakeup.set()

    def _page_status(self) -> dict[str, Any]:
        """For the pages' banner (HTTP thread): the state last written, with the push state as it is now."""
        state = self.reporter.last()
        if self.pusher is not None:
            state["push"] = self.pusher.snapshot()
        state["verified"] = backupcheck.last(self.settings.git_dir)  # the banner's "last verified"
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
        record = None if self.once else startup.announce(self.settings)
        try:
            return self._run_locked(started)
        finally:
            startup.withdraw(record)
            if self._arming is not None:
                self._arming.abandon()
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
        self._arming = None if self.once else startup.Arming(self.feed.start)
        repo = startup.prepare(settings, self.pfilter, self.runner, self.lock, self.new_branch)
        phases = startup.Phases(started, "prepare")
        self.notify = notify = Notify(settings, self.metrics, self.reporter.touch)
        if settings.http and not self.once:
            notify.listen(self.stream.publish)
        notify.open()
        self.services.start(self.services.add(notify, "notify"))  # events left by the last run go out now
        committer, record = load_parts(settings, repo, self.pfilter, read_state(settings.git_dir), self.metrics.commit,
                                       emit=notify.emit)
        committer.step.ahead = not self.once  # each batch's fast-import started ahead, after the last commit
        if settings.remote:
            self.pusher = self.services.add(Pusher(settings, repo, on_change=self.reporter.touch, metrics=self.metrics,
                                                   on_rejected=self._push_rejected, emit=notify.emit), "push_loop")
            self._unlisten = forge_for(settings).on_token_refreshed(self.metrics.token_refreshed)
            if not self.once:
                self.puller = self.services.add(
                    Puller(settings, repo, self.wakeup.set, fetch_at_start=pulls_automatic(settings)), "push_loop")
        if settings.remote and not self.once:
            backups.add_verifier(settings, repo, self.services, self.metrics, notify.emit, self.reporter.touch)
        self.maintenance = self.services.add(Maintenance(repo), starts_itself=True)
        inbox = Inbox(self._request_waiting, lambda: self.ready and not self.stopping)
        self.work = Work(committer, record, Batcher(settings.debounce, settings.max_delay), self.pusher,
                         self.puller, self.metrics, self.maintenance, settings.git_dir, inbox)
        self.feed.work = self.work
        if not self.once:
            self.http = start_http(settings, self.metrics, self.health.report, lambda: self.ready and not self.stopping,
                                   self.puller, self._forced_update, self._page_status, inbox, self.stream)
        startup.warn_lfs(settings)
        if self._arming is not None:
            self._arming.join()
            phases.add("watch", self._arming.seconds)
        phases.mark("open_and_watch")
        log.info("daemon_start", data_dir=str(settings.data_dir), git_dir=str(settings.git_dir),
                 branch=settings.branch, observer=self.feed.observer_kind, pid=os.getpid())
        self.work.reconcile("start")
        phases.mark("reconcile")
        self.ready = True
        self.report()
        log.info("daemon_ready", seconds=round(time.monotonic() - started, 3), **phases.fields())
        self.notifier.ready(self.reporter.line)
        work, maintenance = self.work, self.maintenance

        def left_clean() -> None:  # the clean-stop stamp: once the run and its shutdown ended without an exception
            startup.left_clean(repo, self.exit_code == EXIT_LOCK_LOST, work.failed_once, maintenance.alive())

        if self.once:
            code = Shutdown(self).once()
            left_clean()
            return code
        self.services.start_all()  # the push and pull loops
        try:
            Loop(self, self.health).run()
        except BaseException:
            Shutdown(self).run()
            raise
        Shutdown(self).run(left_clean)  # before its last line, daemon_stop
        return self.exit_code

    def _push_rejected(self) -> None:
        """The remote has commits we lack: with automatic pulls on, fetch and merge them (push thread)."""
        if self.puller is not None and pulls_automatic(self.settings):
            self.puller.request("push_rejected")

    def _forced_update(self, head: str | None) -> None:
        """A webhook said the remote branch was force-pushed (http thread): the main loop records it."""
        if self.work is not None:
            self.work.forced_update(head)  # queued in the inbox, which wakes the loop

    def report(self, running: bool = True) -> None:
        """Write the state file from every part's snapshot (main thread)."""
        work = self.work
        self.reporter.write(
            running=running, ready=self.ready, observer=self.feed.observer_kind, data_missing=self.datadir.missing,
            last_error=work.last_error if work else None, committer=work.committer if work else None,
            record=work.record if work else None, pusher=self.pusher, puller=self.puller,
            events=self.notify.snapshot() if self.notify else None,
        )
