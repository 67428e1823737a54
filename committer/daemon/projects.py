"""The per-project daemon (`layout = per-project`): one process, one watcher on the data directory, one
loop; each top-level folder chosen by `projects_include`/`projects_exclude` is a `Project` (its own
repository, remote, push and pull loops, state file and holds), to which the loop hands the paths under
its folder. A new folder becomes a project on its first change; a project's folder that vanishes is a hold.
Events carry a `project` field, /metrics a `project` label; the daemon's own state file (status without
--project) lists the projects."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from committer.core import clock, events, logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.places import require_data_dir
from committer.core.projectnames import valid_name
from committer.core.projects import check_layout, chosen, known, per_project, top_level
from committer.core.settings import Settings, shown
from committer.daemon import datadir, startup
from committer.daemon.feed import Feed
from committer.daemon.health import Health
from committer.daemon.loop import EXIT_DATA_GONE, EXIT_LOCK_LOST, HEALTH_EVERY
from committer.daemon.maintenance import Maintenance
from committer.daemon.project import Project
from committer.daemon.projectfeed import ProjectFeed, require_projects_dir
from committer.daemon.projectpages import Shown, start_projects_http
from committer.daemon.reporter import Reporter
from committer.daemon.shutdown import NOTIFY_GRACE, PULLER_STOP, push_once
from committer.daemon.signals import Signals
from committer.daemon.supervisor import Supervisor
from committer.daemon.wakeup import Wakeup, install
from committer.daemon.work import Work
from committer.git.runner import GitRunner
from committer.ops.inbox import Inbox
from committer.ops.lock import InstanceLock
from committer.ops.notify import Notify
from committer.policy.filters import PathFilter
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.sdnotify import Notifier
from committer.sync.puller import Puller
from committer.sync.pusher import Pusher

log = logs.get(__name__)


class ProjectsDaemon:
    """One daemon for every project of the data directory."""

    def __init__(self, settings: Settings, once: bool = False, new_branch: bool = False) -> None:
        if new_branch:
            raise ConfigError("new-branch", "is for one repository; give it with --project NAME")
        self.settings, self.once = settings, once
        self.runner = GitRunner(settings.git_timeout)
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
                                 {"started_at": clock.iso(clock.now(), ms=True), "settings": shown(settings),
                                  "layout": settings.layout})
        self.datadir = datadir.DataDirWatch(settings.data_dir, settings.missing_data_timeout)
        self.services = Supervisor()
        self.feed: Feed = ProjectFeed(settings, self.pfilter, self.wakeup, self.datadir, self.metrics, self)
        self.health = Health(self)
        self.signals = Signals(self)
        self.projects: dict[str, Project] = {}
        self.failed: dict[str, str] = {}  # projects whose repository could not be opened, and why
        self._said: set[str] = set()  # names warned about once (excluded, invalid, a file at the top)
        self.notify: Notify | None = None
        self.http: HttpServer | None = None
        # What the loop, health and signals read of a one-repository daemon: none here.
        self.work: Work | None = None
        self.pusher: Pusher | None = None
        self.puller: Puller | None = None
        self.maintenance: Maintenance | None = None

    def install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM and SIGINT set a flag and wake the loop; SIGUSR1: requests wait in a project's mailbox."""
        return install(self.wakeup, self.signals.handle)

    def _request_waiting(self) -> None:
        """A page queued a request (HTTP thread): the loop serves it as a command's SIGUSR1."""
        self.requests_waiting = True
        self.wakeup.set()

    def stop(self) -> None:
        """Ask the loop to finish (from any thread)."""
        self.stopping = True
        self.wakeup.set()

    # -- projects -------------------------------------------------------------------------------

    def _say_once(self, key: str, event: str, **fields: Any) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning(event, **fields)

    def project_for(self, name: str, new: bool = True) -> Project | None:
        """The project of a top-level name, made on its first change (`new`) or at start; None for what is
        not versioned."""
        project = self.projects.get(name)
        if project is not None or name in self.failed or name.startswith("."):
            return project
        if f"excluded:{name}" in self._said or f"name:{name}" in self._said:
            return None  # decided by its name once: a busy excluded folder costs no look at the disk
        folder = self.settings.data_dir / name
        if not folder.is_dir() or folder.is_symlink():
            if folder.exists() or folder.is_symlink():
                self._say_once("file:" + name, "top_level_file_ignored", path=name,
                               action="per-project layout: only folders are projects; move it into one")
            return None
        if not valid_name(name):
            self._say_once("name:" + name, "project_name_invalid", project=name,
                           action="not versioned: a project's name is letters, digits, '.', '_', '-'")
            return None
        if not chosen(self.settings, name):
            self._say_once("excluded:" + name, "project_excluded", project=name)
            return None
        return self._open(name, new=new)

    def _open(self, name: str, new: bool = False) -> Project | None:
        assert self.notify is not None
        notify = self.notify

        def emit(event: events.Event) -> None:
            notify.emit({**event, "project": name})

        try:
            inbox = Inbox(self._request_waiting, lambda: self.ready and not self.stopping)
            with logs.bound(project=name):
                project = Project(self.settings, name, self.runner, self.wakeup, self.metrics, emit, self.services,
                                  inbox, once=self.once)
        except CommitterError as exc:
            self.failed[name] = exc.message
            log.error("project_failed", project=name, error=exc.message, action="not versioned until a restart")
            return None
        self.projects[name] = project
        log.info("project_new" if new else "project_open", project=name, git_dir=str(project.settings.git_dir),
                 remote=bool(project.settings.remote))
        if new and self.ready:
            self._start(project)
            project.work.schedule_reconcile("project_new")
        return project

    def _start(self, project: Project) -> None:
        """The project's push and pull loops, their log lines carrying its name."""
        with logs.bound(project=project.name):
            for service in (project.pusher, project.puller):
                if service is not None:
                    self.services.start(service)

    def reconcile_all(self, why: str) -> None:
        """Every project reconciles soon (the watcher overflowed or restarted)."""
        for project in self.projects.values():
            project.work.schedule_reconcile(why)

    # -- life cycle -----------------------------------------------------------------------------

    def run(self) -> int:
        """Lock the folder, open every project, watch, reconcile; then the loop and the shutdown pass."""
        started = time.monotonic()
        require_data_dir(self.settings)
        require_projects_dir(self.settings)
        check_layout(self.settings)
        self.lock.acquire()
        record = None if self.once else startup.announce(self.settings)
        try:
            return self._run_locked(started)
        finally:
            startup.withdraw(record)
            if self.http is not None:
                self.http.stop()
            if self.notify is not None:
                self.notify.stop(0.0)
            for project in self.projects.values():
                project.close()
            self.notifier.close()
            self.lock.release()
            self.wakeup.close()

    def _run_locked(self, started: float) -> int:
        settings = self.settings
        self.notify = notify = Notify(settings, self.metrics, self.reporter.touch)
        notify.open()
        self.services.start(self.services.add(notify, "notify"))
        folders, others = top_level(settings)
        for name in others:
            self._say_once("file:" + name, "top_level_file_ignored", path=name,
                           action="per-project layout: only folders are projects; move it into one")
        for name in folders:
            self.project_for(name, new=False)
        for name in known(settings):  # a project whose folder is gone is still one (held), its history kept
            if name not in self.projects and name not in self.failed and chosen(settings, name):
                self._open(name)
        if not self.once:
            ready = lambda: self.ready and not self.stopping  # noqa: E731
            self.http = start_projects_http(settings, self.metrics, self._health, ready, self._shown)
            self.feed.start()
        log.info("daemon_start", data_dir=str(settings.data_dir), git_dir=str(settings.git_dir), layout=settings.layout,
                 projects=sorted(self.projects), observer=self.feed.observer_kind, pid=os.getpid())
        for project in self.projects.values():
            with logs.bound(project=project.name):
                if project.present():
                    project.work.reconcile("start")
                else:
                    project.check()
        self.ready = True
        self.report()
        log.info("daemon_ready", seconds=round(time.monotonic() - started, 3), projects=len(self.projects))
        self.notifier.ready(self.reporter.line)
        if self.once:
            code = max([push_once(p.pusher) for p in self.projects.values()] + [0])
            self.services.stop(notify, min(settings.shutdown_timeout, NOTIFY_GRACE))
            self.report(running=False)
            _left_clean(self.projects.values(), self.exit_code)
            return code
        for project in self.projects.values():
            self._start(project)
        self.services.start_all()
        try:
            self._loop()
        except BaseException:
            self._shutdown(clean=False)
            raise
        self._shutdown(clean=True)  # the stamps only when the loop ended without an exception
        return self.exit_code

    def _loop(self) -> None:
        every = min(HEALTH_EVERY, self.notifier.watchdog_interval or HEALTH_EVERY)
        next_health = time.monotonic() + every
        interval = self.settings.reconcile_interval
        next_periodic = time.monotonic() + interval if interval > 0 else None
        while not self.stopping:
            self.health.beat()
            deadlines = [next_health, next_periodic]
            for project in self.projects.values():
                deadlines.extend(project.deadlines())
            now = time.monotonic()
            self.wakeup.wait(max(0.0, min(d for d in deadlines if d is not None) - now))
            if self.stopping:
                break
            self.feed.take_events()
            now = time.monotonic()
            changed = self.reporter.due()
            for project in list(self.projects.values()):
                changed |= project.reporter.due()
            if now >= next_health:
                next_health = now + every
                self._health_tick()
                changed = True
            if self.requests_waiting:
                self.requests_waiting = False
                for project in list(self.projects.values()):
                    with logs.bound(project=project.name):
                        project.work.serve_requests(self.feed.take_events)
                changed = True
            if not self.datadir.missing:
                if next_periodic is not None and now >= next_periodic:
                    next_periodic = now + interval
                    self.reconcile_all("periodic")
                for project in list(self.projects.values()):
                    with logs.bound(project=project.name):
                        changed |= project.tick(now, self.feed.take_events)
            if changed:
                self.report()

    def _health_tick(self) -> None:
        if self.health.report()["healthy"]:
            self.notifier.watchdog()
        if not self.lock.still_held():
            self._fail(EXIT_LOCK_LOST, "instance_lock_lost", git_dir=str(self.settings.git_dir))
        for project in self.projects.values():
            with logs.bound(project=project.name):
                project.maintenance.tick()
                project.check()
        seen = self.datadir.check()
        if seen == datadir.GONE:
            self._fail(EXIT_DATA_GONE, "data_dir_gone", path=str(self.settings.data_dir))
        elif seen == datadir.REPLACED:
            self.feed.restart("data_dir_replaced")
        elif seen != datadir.MISSING and self.feed.watcher is not None and not self.feed.watcher.alive():
            log.error("watcher_died", action="restart and full reconcile")
            self.feed.restart("watcher_restart")

    def _fail(self, code: int, event: str, **fields: object) -> None:
        log.error(event, exit_code=code, **fields)
        self.exit_code = code
        self.stopping = True

    def _shutdown(self, clean: bool) -> None:
        """The shutdown pass of `daemon/shutdown.py`, for every project; `clean`: then the stamps."""
        settings, services = self.settings, self.services
        log.info("daemon_stopping", signal=self.signal_received)
        self.notifier.stopping("committing what is pending, last push")
        self.runner.timeout = min(settings.git_timeout, max(settings.shutdown_timeout, 5.0))
        for project in self.projects.values():
            services.stop(project.puller, PULLER_STOP)
        if self.feed.watcher is not None:
            self.feed.watcher.stop()
            self.feed.take_events()
        for project in self.projects.values():
            services.stop(project.maintenance)
        if self.exit_code == EXIT_LOCK_LOST:
            return
        for project in self.projects.values():
            if project.present():
                with logs.bound(project=project.name):
                    project.work.commit_batch()
                    project.work.reconcile("shutdown")
        for project in self.projects.values():
            services.stop(project.pusher, settings.shutdown_timeout)
        services.stop(self.notify, min(settings.shutdown_timeout, NOTIFY_GRACE))
        services.stop_rest(settings.shutdown_timeout)
        if self.http is not None:
            self.http.stop()
            self.http = None
        self.report(running=False)
        _left_clean(self.projects.values() if clean else (), self.exit_code)
        log.info("daemon_stop")

    def _shown(self) -> dict[str, Shown]:
        """What the pages need of each project (HTTP thread: a copy of the table)."""
        return {name: (p.settings, p.page_status, p.inbox) for name, p in list(self.projects.items())}

    def _health(self) -> dict[str, Any]:
        report = self.health.report()
        report["projects"] = {name: {"missing": p.missing_since is not None} for name, p in self.projects.items()}
        return report

    def report(self, running: bool = True) -> None:
        """Every project's state file, then the daemon's own (the list of projects)."""
        for project in self.projects.values():
            project.report(running, self.ready, self.feed.observer_kind)
        projects = {name: p.summary() for name, p in sorted(self.projects.items())}
        projects.update({name: {"failed": why} for name, why in self.failed.items()})
        self.reporter.write(running=running, ready=self.ready, observer=self.feed.observer_kind,
                            data_missing=self.datadir.missing, last_error=None, committer=None, record=None,
                            pusher=None, puller=None, events=self.notify.snapshot() if self.notify else None,
                            extra={"projects": projects})


def _left_clean(projects: Iterable[Project], exit_code: int) -> None:
    """Each project's clean-stop stamp (startup.left_clean says when one may be left)."""
    for project in projects:
        startup.left_clean(project.work.committer.repo, exit_code == EXIT_LOCK_LOST, project.work.failed_once,
                           project.maintenance.alive())


def is_per_project(settings: Settings) -> bool:
    """Whether `run` starts this daemon rather than the one-repository one."""
    return per_project(settings)
