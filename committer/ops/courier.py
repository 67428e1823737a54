"""One receiver's delivery loop, on a thread of its own: the outbox's events in order, each tried until it
arrives, with tenacity's backoff and the same id every time, or until the receiver refuses it for good.

It sleeps in the outbox's condition while nothing waits (no wake-up while idle). On stop it goes on
delivering what waits, while deliveries succeed, for the grace it is given; then the attempt under way is
cut (its socket shut down, the hook's group killed) and the thread is joined.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from committer.core import clock, logs
from committer.core.retry import RetryCallState, retrying
from committer.core.service import Worker
from committer.ops.outbox import Entry, Outbox
from committer.ops.receivers import Failed, Receiver

log = logs.get(__name__)

RETRY_FIRST, RETRY_MAX = 1.0, 300.0

# (receiver, result, error): result is ok, failed (tried again), rejected (dropped for good)
OnResult = Callable[[str, str, dict[str, Any] | None], None]


class Courier(Worker):
    """Delivers the outbox's events to one receiver, in order, at least once."""

    def __init__(self, outbox: Outbox, receiver: Receiver, on_result: OnResult, *,
                 retry_first: float = RETRY_FIRST, retry_max: float = RETRY_MAX) -> None:
        super().__init__()
        self.outbox = outbox
        self.receiver = receiver
        self.name = receiver.name
        self.thread_name = f"committer-notify-{self.name}"
        self._on_result = on_result
        self._first, self._max = retry_first, retry_max
        self._until = float("inf")  # while stopping: deliver until then

    def stop(self, timeout: float | None = None) -> None:
        """Deliver what waits for up to `timeout` seconds, the grace (while it arrives), then cut and join."""
        grace = 0.0 if timeout is None else max(0.0, timeout)
        self._until = time.monotonic() + grace
        started = self.started
        super().stop(grace)
        if started:
            self.receiver.close()

    def interrupt(self) -> None:
        self.outbox.wake()

    def cut(self) -> float | None:
        self.receiver.cancel()  # the attempt under way ends (socket shut down, hook's group killed)
        return None

    def run(self) -> None:
        while not (self._stop.is_set() and time.monotonic() >= self._until):
            item = self.outbox.take(self.name, self._stop.is_set)
            if item is None:
                return  # stopped with nothing left, or closed
            entry, body = item
            try:
                retrying(lambda exc: isinstance(exc, Failed) and not exc.drop, cap=self._max, sleep=self._pause,
                         stopped=self._stop.is_set, on_backoff=self._failed(entry), first=self._first,
                         jitter=self._first)(self._send, entry, body)
            except Failed as exc:
                if not exc.drop:
                    return  # stopped while it failed: it waits in the outbox for the next start
                log.error("notify_rejected", receiver=self.name, what=entry.name, id=entry.id, error=exc.message,
                          action="dropped: the receiver refused it; it is not sent again")
                self.outbox.ack(self.name, entry.seq)
                self._on_result(self.name, "rejected", _error(self.name, exc))
                continue
            except Exception:  # a bug must not end deliveries for good: logged, tried again later
                log.exception("notify_loop_error", receiver=self.name, id=entry.id)
                self._pause(self._max)
                continue
            self.outbox.ack(self.name, entry.seq)
            self._on_result(self.name, "ok", None)

    def _send(self, entry: Entry, body: bytes) -> None:
        if self._stop.is_set() and time.monotonic() >= self._until:
            raise Failed("stopping")
        self.receiver.send(entry, body)

    def _pause(self, seconds: float) -> None:
        self.pause(seconds)

    def _failed(self, entry: Entry) -> Callable[[RetryCallState], None]:
        def failed(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if not isinstance(exc, Failed):
                return
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("notify_failed", receiver=self.name, target=self.receiver.shown, what=entry.name,
                        id=entry.id, error=exc.message, attempt=state.attempt_number, retry_in=round(delay, 3),
                        **exc.details)
            self._on_result(self.name, "failed", _error(self.name, exc))

        return failed


def _error(receiver: str, exc: Failed) -> dict[str, Any]:
    return {"receiver": receiver, "message": exc.message, "at": clock.iso(clock.now(), ms=True), **exc.details}
