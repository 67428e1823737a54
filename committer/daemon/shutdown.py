"""The shutdown pass, in this order: the pull loop stops, the watcher stops and its last events are taken,
maintenance stops; then (unless the lock was lost) the pending batch is committed, a last reconcile catches
what the kernel still held, the push loop makes its last push within shutdown_timeout, the couriers deliver
what waits within their grace, and the HTTP server stops. Every thread that was started is joined."""

from __future__ import annotations

from collections.abc import Callable

from committer.core import logs
from committer.daemon.host import Host
from committer.daemon.loop import EXIT_LOCK_LOST
from committer.sync.pusher import Pusher

log = logs.get(__name__)

NOTIFY_GRACE = 5.0  # at shutdown, the longest spent delivering what waits (the rest waits in the outbox)
PULLER_STOP = 5.0  # the pull loop's fetch is killed at stop: this only bounds its thread's last steps


class Shutdown:
    """Stops the daemon's parts in order: nothing is lost, nothing outlives the pass."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def run(self, last: Callable[[], None] | None = None) -> None:
        """Stop watching, commit what is pending (even inside the debounce window), last push; `last` runs
        after all of it, before the `daemon_stop` line."""
        host, settings, services = self.host, self.host.settings, self.host.services
        assert host.work is not None and host.maintenance is not None
        log.info("daemon_stopping", signal=host.signal_received)
        host.notifier.stopping("committing what is pending, last push")
        host.runner.timeout = min(settings.git_timeout, max(settings.shutdown_timeout, 5.0))
        services.stop(host.puller, PULLER_STOP)
        if host.feed.watcher is not None:
            host.feed.watcher.stop()
            host.feed.take_events()
        services.stop(host.maintenance)
        if host.exit_code == EXIT_LOCK_LOST:
            return  # the repository may belong to another daemon now: write nothing
        host.work.commit_batch()
        # Events still in the kernel queue when the watcher stopped are caught by this pass.
        host.work.reconcile("shutdown")
        host.work.committer.step.close()  # the fast-import kept ready for a next batch
        services.stop(host.pusher, settings.shutdown_timeout)
        services.stop(host.notify, min(settings.shutdown_timeout, NOTIFY_GRACE))  # after the last push's event
        services.stop_rest(settings.shutdown_timeout)  # a worker added since, in no step above
        if host.http is not None:
            host.http.stop()
            host.http = None
        host.report(running=False)
        if last is not None:
            last()
        log.info("daemon_stop")


    def once(self) -> int:
        """--once, after the first reconcile: one push, the events delivered within their grace, the state."""
        host = self.host
        code = push_once(host.pusher)
        if host.notify is not None:
            host.services.stop(host.notify, min(host.settings.shutdown_timeout, NOTIFY_GRACE))
        host.report(running=False)
        return code


def push_once(pusher: Pusher | None) -> int:
    """--once: the commits are safe locally either way; a failed push still fails the run."""
    if pusher is None:
        return 0
    try:
        pusher.push_now()
    except Exception as exc:
        log.error("push_failed", error=getattr(exc, "message", str(exc)))
        return 1
    return 0
