"""One life cycle for every worker thread (push, pull, event delivery, polling, maintenance): start, stop
with a deadline, alive, last error. The daemon supervises them all the same way (docs/architecture.md)."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Protocol, runtime_checkable

from committer.core import logs

log = logs.get(__name__)


@runtime_checkable
class Service(Protocol):
    """What the daemon needs of a worker: a name for logs and health, and the four verbs."""

    name: str

    def start(self) -> None:
        """Start the thread; a second start while it runs is a RuntimeError."""

    def stop(self, timeout: float | None = None) -> None:
        """Ask it to finish and wait up to `timeout` seconds (None: until it has) for its thread."""

    def alive(self) -> bool:
        """Its thread runs (False before start and after it ended, by stop or by a failure)."""

    @property
    def last_error(self) -> str | None:
        """What ended it, or its last failure, for /healthz and status; None while all is well."""


class Worker:
    """A Service on one daemon thread: subclasses write `run()`, which returns when `stopping` is set and
    waits through `pause()`, so stop() is never held longer than one step of work. An exception out of
    run() is logged and kept as last_error, and alive() turns False for the supervisor."""

    name = "worker"
    thread_name: str | None = None  # the thread's name in tracebacks and /proc (default: committer-<name>)

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    # -- the Service verbs --------------------------------------------------------------------------

    def start(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self.name} already started")
        self._stop.clear()
        self._error = None
        name = self.thread_name or f"committer-{self.name}"
        # The thread runs in a copy of the starter's context: log fields bound there (a project) are its own too.
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._main,), name=name,
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self.interrupt()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            more = self.cut()  # past its deadline: end what holds it, then give it that much longer
            if more is None or more > 0:
                thread.join(more)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def last_error(self) -> str | None:
        return self._error

    # -- for subclasses ------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """start() was called (the thread may have ended since)."""
        return self._thread is not None

    @property
    def ident(self) -> int | None:
        """The thread's id (what the git runner kills by), None before start."""
        return self._thread.ident if self._thread is not None else None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def pause(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when stop() was asked meanwhile."""
        return self._stop.wait(max(0.0, seconds))

    def failed(self, message: str | None) -> None:
        """Record (or with None clear) the last failure without ending the thread."""
        self._error = message

    def interrupt(self) -> None:
        """Called by stop() before the join: wake what run() waits on besides pause() (a queue, a git)."""

    def cut(self) -> float | None:
        """Called by stop() when the thread outlived its deadline: end what holds it (a network call);
        returns how much longer to wait for it (None: until it ends; 0, the default: not at all)."""
        return 0.0

    def run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        started = time.monotonic()
        try:
            self.run()
        except Exception as exc:  # a worker's failure is reported through alive() and last_error
            self._error = f"{type(exc).__name__}: {exc}"
            log.exception("worker_failed", worker=self.name, seconds=round(time.monotonic() - started, 3))
