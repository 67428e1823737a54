"""The per-project daemon's watcher side: one watcher on the whole data directory, each path handed to the
project of its first component (without it); and the check of git_dir as a folder of repositories."""

from __future__ import annotations

import os
import time
from typing import Protocol

from committer.core import logs
from committer.core.errors import ConfigError
from committer.core.settings import Settings
from committer.daemon.datadir import DataDirWatch
from committer.daemon.feed import Feed
from committer.daemon.project import Project
from committer.daemon.wakeup import Wakeup
from committer.policy.filters import BMIGNORE, PathFilter
from committer.serve.metrics import Metrics

log = logs.get(__name__)


class Dispatch(Protocol):
    """What the feed needs of the daemon: its projects, made on a first change, and a reconcile of all."""

    projects: dict[str, Project]

    def project_for(self, name: str, new: bool = True) -> Project | None:
        """The project of a top-level name (made now when new), or None."""
        ...

    def reconcile_all(self, why: str) -> None:
        """Every project reconciles soon."""
        ...


def require_projects_dir(settings: Settings) -> None:
    """With layout per-project, git_dir is a folder of repositories (`<project>.git`), never one itself."""
    path = settings.git_dir
    if not os.path.lexists(path):
        return
    if not path.is_dir():
        raise ConfigError("git-dir", f"{path} is a file; with layout per-project give the folder of the projects' "
                                     "repositories")
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        raise ConfigError("git-dir", f"{path} is a repository; with layout per-project give a folder, which will "
                                     "hold one repository per project (<project>.git)")
    others = sorted(n for n in os.listdir(path) if n != "committer" and not n.endswith(".git"))
    if others:
        raise ConfigError("git-dir", f"{path} holds {others[0]!r}, which is not a project's repository; give a new "
                                     "or empty folder, or the one committer filled")


class ProjectFeed(Feed):
    """The one watcher: paths go to the project of their first component, without it."""

    def __init__(self, settings: Settings, pfilter: PathFilter, wakeup: Wakeup, datadir: DataDirWatch,
                 metrics: Metrics, daemon: Dispatch) -> None:
        super().__init__(settings, pfilter, wakeup, datadir, metrics)
        self.daemon = daemon

    def take_events(self) -> None:
        """Hand what the watcher saw to the projects' batchers; a new folder becomes a project here."""
        assert self.watcher is not None
        paths, overflow = self.watcher.drain()
        now, wall = time.monotonic(), time.time()
        daemon = self.daemon
        for path in paths:
            head, _, rest = path.partition("/")
            project = daemon.project_for(head)
            if project is None:
                continue
            if not rest:  # the folder itself: made, moved in, or gone
                project.work.schedule_reconcile("project_folder")
                continue
            project.add(rest, now, wall)
            if rest == BMIGNORE and project.pfilter.refresh():
                log.info("ignore_rules_changed", path=BMIGNORE, project=head)
                project.work.schedule_reconcile("ignore_rules")
        busy = self.watcher.busy()
        for name, project in daemon.projects.items():
            prefix = name + "/"
            project.work.batcher.settle(frozenset(p[len(prefix):] for p in busy if p.startswith(prefix)))
        if overflow:
            log.warning("watcher_overflow", action="full reconcile of every project")
            daemon.reconcile_all("overflow")

    def restart(self, why: str) -> None:
        """Start the watcher anew; every project reconciles."""
        assert self.watcher is not None
        self.metrics.watcher_restarted()
        kind = self.watcher.restart()
        if kind is not None:
            self.observer_kind = kind
            self.datadir.watched()
        self.daemon.reconcile_all(why)
