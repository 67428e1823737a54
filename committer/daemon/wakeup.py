"""The loop's one wait: a self-pipe other threads and signal handlers write to, without any lock."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
from collections.abc import Callable
from types import FrameType


class Wakeup:
    """A self-pipe: other threads and signal handlers wake the loop without taking any lock."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.read_fd, selectors.EVENT_READ)

    def set(self) -> None:
        """Wake the waiting loop (safe from any thread)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.write_fd, b"\0")

    def wait(self, timeout: float | None) -> None:
        """Sleep until woken or the timeout passes; every wait of the loop is this one."""
        if self._selector.select(timeout):
            with contextlib.suppress(BlockingIOError):
                while os.read(self.read_fd, 4096):
                    pass

    def close(self) -> None:
        self._selector.close()
        os.close(self.read_fd)
        os.close(self.write_fd)


Handler = Callable[[int, FrameType | None], None]


def install(wakeup: Wakeup, handler: Handler) -> Callable[[], None]:
    """SIGTERM, SIGINT and SIGUSR1 go to `handler` (which only sets flags) and wake the loop; returns a
    function that undoes it."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    old_fd = signal.set_wakeup_fd(wakeup.write_fd, warn_on_full_buffer=False)
    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        signal.set_wakeup_fd(old_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
