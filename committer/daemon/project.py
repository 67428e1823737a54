"""One project of the per-project layout: its repository and everything that is one per repository (the
commit side and batcher through `Work`, the push and pull loops, maintenance, the instance lock, the state
file), built from the project's own settings (`core/projects.for_project`). The daemon's one loop hands it
the paths under its folder, without the folder's name."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from committer.core import clock, events, logs
from committer.core.errors import CommitterError, redact
from committer.core.projects import for_project
from committer.core.settings import Settings, shown
from committer.daemon import startup
from committer.daemon.endpoints import pulls_automatic
from committer.daemon.maintenance import Maintenance
from committer.daemon.reporter import Reporter
from committer.daemon.supervisor import Supervisor
from committer.daemon.wakeup import Wakeup
from committer.daemon.work import Work
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.ops.connect import ensure_repository
from committer.ops.inbox import Inbox
from committer.ops.lock import InstanceLock
from committer.ops.state import load_parts, read_state
from committer.policy.filters import PathFilter
from committer.serve.metrics import Metrics
from committer.serve.sdnotify import Notifier
from committer.sync.forges import forge_for
from committer.sync.puller import Puller
from committer.sync.pusher import Pusher
from committer.watch.batcher import Batcher

log = logs.get(__name__)

MISSING_REASON = "project_missing"


class Project:
    """One project's repository and its parts; driven by the daemon's loop (main thread)."""

    def __init__(self, top: Settings, name: str, runner: GitRunner, wakeup: Wakeup, metrics: Metrics,
                 emit: events.Emit, services: Supervisor, inbox: Inbox, once: bool = False) -> None:
        self.name = name
        self.settings = settings = for_project(top, name)
        self.metrics = metrics.project(name)
        self.emit = emit
        self.missing_since: str | None = None  # the folder vanished: a hold, nothing is committed
        self.lock = InstanceLock(settings.git_dir)
        self.lock.acquire()  # commands find the daemon through it; a second daemon on this project is refused
        try:
            self.pfilter = PathFilter(settings.data_dir, settings.ignore)
            if settings.remote and not GitRepo.of(settings, runner).exists():
                ensure_remote(settings, name)  # a project's first start: its remote, as `connect` makes it
            repo = startup.prepare(settings, self.pfilter, runner, self.lock, new_branch=False)
            committer, record = load_parts(settings, repo, self.pfilter, read_state(settings.git_dir),
                                           self.metrics.commit, emit=emit)
        except BaseException:
            self.lock.release()
            raise
        self.pusher: Pusher | None = None
        self.puller: Puller | None = None
        if settings.remote:
            self.pusher = services.add(Pusher(settings, repo, on_change=self._touch, metrics=self.metrics,
                                              on_rejected=self._push_rejected, emit=emit), "push_loop")
            if not once:
                self.puller = services.add(
                    Puller(settings, repo, wakeup.set, fetch_at_start=pulls_automatic(settings)), "push_loop")
        self.maintenance = services.add(Maintenance(repo), starts_itself=True)
        self.inbox = inbox  # the pages' requests for this project (a restore)
        self.work = Work(committer, record, Batcher(settings.debounce, settings.max_delay), self.pusher,
                         self.puller, self.metrics, self.maintenance, settings.git_dir, self.inbox)
        self.reporter = Reporter(settings.git_dir, self.metrics, Notifier({}), wakeup.set, {
            "started_at": clock.iso(clock.now(), ms=True), "settings": shown(settings), "project": name})

    def page_status(self) -> dict[str, Any]:
        """For the pages' banner (HTTP thread): the state last written, with the push state as it is now."""
        state = self.reporter.last()
        if self.pusher is not None:
            state["push"] = self.pusher.snapshot()
        return state

    def _touch(self) -> None:
        self.reporter.touch()

    def _push_rejected(self) -> None:
        if self.puller is not None and pulls_automatic(self.settings):
            self.puller.request("push_rejected")

    # -- the folder -----------------------------------------------------------------------------

    def present(self) -> bool:
        """Whether the project's folder is there (a folder, not a link)."""
        return os.path.isdir(self.settings.data_dir) and not os.path.islink(self.settings.data_dir)

    def check(self) -> bool:
        """Notice the folder vanishing (a hold, said once) or coming back (a reconcile); True when it changed."""
        there = self.present()
        if not there and self.missing_since is None:
            self.missing_since = clock.iso(clock.now(), ms=True)
            log.error("project_missing", project=self.name, path=str(self.settings.data_dir),
                      action="held: nothing is committed, its history stays; bring the folder back, or exclude it")
            self.emit(events.hold(action=events.SET, reason=MISSING_REASON, paths=[self.name], count=0))
            self.work.batcher.take()  # the deletions it saw are not committed
            return True
        if there and self.missing_since is not None:
            self.missing_since = None
            log.warning("project_back", project=self.name)
            self.emit(events.hold(action=events.RELEASED, reason=MISSING_REASON, paths=[self.name], count=0))
            self.work.schedule_reconcile("project_back")
            return True
        return False

    # -- what the loop does ---------------------------------------------------------------------

    def add(self, path: str, now: float, wall: float) -> None:
        """A path under the project's folder (relative to it) into its batcher."""
        self.work.batcher.add(path, now, wall)

    def tick(self, now: float, take_events: Callable[[], None]) -> bool:
        """What is due for this project; True when its state changed."""
        work = self.work
        if self.missing_since is not None or not self.present():
            changed = self.check()
            if work.batcher.due(now):
                work.batcher.take()
            if self.missing_since is not None:
                work.reconcile_at = None  # nothing to reconcile until it is back (a due one would spin the loop)
            return changed
        changed = work.apply_fetched(take_events)
        if work.batcher.due(now):
            work.commit_batch()
            changed = True
        if work.reconcile_at is not None and now >= work.reconcile_at:
            if work.reconcile_why == "periodic" and work.batcher.waiting():
                work.reconcile_at = work.batcher.next_deadline()
            else:
                work.reconcile(work.reconcile_why)
                changed = True
        return changed

    def deadlines(self) -> list[float | None]:
        """When this project next needs the loop."""
        return [self.work.batcher.next_deadline(), self.work.reconcile_at]

    def report(self, running: bool, ready: bool, observer: str | None) -> None:
        """Write the project's state file (main thread)."""
        work = self.work
        missing = self.missing_since is not None
        self.reporter.write(running=running, ready=ready, observer=observer, data_missing=missing,
                            last_error=work.last_error, committer=work.committer, record=work.record,
                            pusher=self.pusher, puller=self.puller,
                            extra={"held": self.held_state()} if self.missing_since is not None else None)

    def summary(self) -> dict[str, Any]:
        """One line of the daemon's overview (status without --project, /healthz)."""
        state = self.reporter.last()
        push = state.get("push") or {}
        return {"head": state.get("head"), "last_commit_at": state.get("last_commit_at"),
                "pending_commits": push.get("pending_commits"), "last_push_at": push.get("last_push_at"),
                "held": state.get("held"), "last_error": state.get("last_error"),
                "missing": self.missing_since is not None}

    def held_state(self) -> dict[str, Any] | None:
        """The hold status shows for a vanished folder."""
        if self.missing_since is None:
            return None
        return {"reason": MISSING_REASON, "count": 0, "since": self.missing_since, "paths": []}

    def close(self) -> None:
        """Give the project's lock up (the daemon is stopping)."""
        self.lock.release()



def ensure_remote(settings: Settings, name: str) -> None:
    """A new project's remote, created private through its forge when the forge can (GitHub: as `connect`
    does); on a plain git host it must exist already. Never fatal: pushes retry until it exists."""
    forge = forge_for(settings)
    try:
        target = forge.repository()
        if target is None:
            log.info("project_remote_unmanaged", project=name, remote=redact(settings.remote),
                     action="a plain git host: create the repository there")
            return
        made = ensure_repository(forge, target[0], target[1], settings.allow_public)
    except (CommitterError, OSError) as exc:
        message = exc.message if isinstance(exc, CommitterError) else str(exc)
        log.warning("project_remote_failed", project=name, remote=redact(settings.remote), error=message,
                    action="pushes are retried; create the repository, or fix the token")
        return
    log.info("project_remote", project=name, repository="/".join(target), created=made.created)
