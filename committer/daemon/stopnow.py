"""A second SIGTERM or SIGINT during the shutdown pass: whoever sent it will not wait (a hung last push, a
slow commit). Every git and hook the daemon started is ended, what its network calls were writing (a
partial pack, LFS partials) is removed, one line says what is left undone, and the process exits with
128 + the signal at once. What is committed stays; the next start commits the rest (its first reconcile
finds every change) and pushes what is pending."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from committer.core import logs
from committer.daemon.work import Work
from committer.git import leftovers
from committer.git.runner import kill_all
from committer.sync.pusher import Pusher

log = logs.get("committer.daemon.service")

GRACE = 3.0  # the longest spent saying what is left before exiting, whatever it meets
CLEAN = 1.5  # of which the longest spent waiting for killed network calls to end, to remove their temporaries


def stop_now(signum: int, work: Work | None, pusher: Pusher | None) -> None:
    """Run in a thread of its own (a signal handler starts it): end the children, say what is left, exit."""
    code = 128 + signum
    deadline = threading.Timer(GRACE, os._exit, args=(code,))
    deadline.daemon = True
    deadline.start()
    kill_all()
    leftovers.clean_all(CLEAN)
    uncommitted = len(work.batcher) if work is not None else 0
    unpushed = pusher.state.snapshot()["pending_commits"] if pusher is not None else 0
    log.warning("daemon_stopped_now", signal=signal.Signals(signum).name, exit_code=code,
                uncommitted_paths=uncommitted, unpushed_commits=unpushed,
                action="the next start commits what changed and pushes what is pending")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
