"""What the loop, the shutdown pass and health see of the daemon: the parts it built, and its flags."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from committer.core.settings import Settings
from committer.daemon.datadir import DataDirWatch
from committer.daemon.feed import Feed
from committer.daemon.maintenance import Maintenance
from committer.daemon.reporter import Reporter
from committer.daemon.supervisor import Supervisor
from committer.daemon.wakeup import Wakeup
from committer.daemon.work import Work
from committer.git.runner import GitRunner
from committer.ops.lock import InstanceLock
from committer.ops.notify import Notify
from committer.serve.sdnotify import Notifier
from committer.sync.puller import Puller
from committer.sync.pusher import Pusher

if TYPE_CHECKING:  # imported with --http only (daemon/endpoints.py)
    from committer.serve.app import HttpServer


class Host(Protocol):
    """The daemon as its loop, shutdown and health use it (`daemon/service.py` wires it)."""

    settings: Settings
    runner: GitRunner
    wakeup: Wakeup
    lock: InstanceLock
    notifier: Notifier
    reporter: Reporter
    datadir: DataDirWatch
    services: Supervisor
    feed: Feed
    pusher: Pusher | None
    puller: Puller | None
    notify: Notify | None
    http: HttpServer | None
    work: Work | None
    maintenance: Maintenance | None
    stopping: bool
    ready: bool
    requests_waiting: bool
    exit_code: int
    signal_received: int | None

    def report(self, running: bool = True) -> None:
        """Write the state file (main thread)."""
