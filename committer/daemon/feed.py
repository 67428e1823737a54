"""The watcher's side of the loop: the observer started (and restarted when it died or the data directory
was replaced), and what it saw handed to the batcher."""

from __future__ import annotations

import time

from committer.core import logs
from committer.core.errors import ConfigError
from committer.core.settings import Settings
from committer.daemon.datadir import DataDirWatch
from committer.daemon.wakeup import Wakeup
from committer.daemon.work import Work
from committer.policy.filters import BMIGNORE, PathFilter
from committer.serve.metrics import Metrics
from committer.watch.watcher import Watcher

log = logs.get(__name__)


class Feed:
    """Owns the watcher (main thread): starts it, restarts it, drains its paths into the batcher."""

    def __init__(self, settings: Settings, pfilter: PathFilter, wakeup: Wakeup, datadir: DataDirWatch,
                 metrics: Metrics) -> None:
        self.settings = settings
        self.pfilter = pfilter
        self.wakeup = wakeup
        self.datadir = datadir
        self.metrics = metrics
        self.watcher: Watcher | None = None
        self.observer_kind: str | None = None
        self.work: Work | None = None  # set once the commit side is built

    def start(self) -> None:
        """Start watching the data directory (ConfigError when the observer cannot)."""
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

    def take_events(self) -> None:
        """Hand what the watcher saw to the batcher; rules changed or events lost: a reconcile."""
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

    def restart(self, why: str) -> None:
        """Start the watcher anew (it died, or the data directory was replaced); a reconcile follows."""
        assert self.watcher is not None and self.work is not None
        self.metrics.watcher_restarted()
        kind = self.watcher.restart()  # logs watcher_restart_failed itself
        if kind is not None:
            self.observer_kind = kind
            self.datadir.watched()
        self.work.schedule_reconcile(why)
