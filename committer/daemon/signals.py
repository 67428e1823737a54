"""Signals only set flags and wake the loop: SIGUSR1 says commands left requests; the first SIGTERM or
SIGINT asks for the shutdown pass, a repeat within REPEAT_WINDOW is the same request, and a later one
stops at once (`daemon/stopnow.py`)."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from committer.daemon.host import Host
from committer.daemon.stopnow import stop_now

REPEAT_WINDOW = 1.0  # a second stop signal sooner than this after the first is the same request


class Signals:
    """The daemon's signal handler (installed with `wakeup.install`, which also wakes the loop)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._signalled = 0.0

    def handle(self, signum: int, _frame: FrameType | None = None) -> None:
        """Only sets a flag; the loop notices it through the wakeup pipe."""
        if signum == signal.SIGUSR1:
            self.host.requests_waiting = True
            return
        if signum in (signal.SIGTERM, signal.SIGINT) and self.host.signal_received is not None:
            if time.monotonic() - self._signalled < REPEAT_WINDOW:
                return  # the same request delivered twice (a supervisor signalling the process and its group)
            # A second one: whoever sent it will not wait for the shutdown pass (a hung last push, a slow
            # commit). A thread of its own says what is left and exits; this handler only starts it.
            threading.Thread(target=stop_now, args=(signum, self.host.work, self.host.pusher), name="stop-now",
                             daemon=True).start()
            return
        self.host.signal_received, self._signalled = signum, time.monotonic()
        self.host.stopping = True
        # A git stuck on a hung disk or lock must not keep the daemon from stopping; the work it
        # was doing is redone by the shutdown pass (fast-import moves no reference unless it finished).
        self.host.runner.terminate()
