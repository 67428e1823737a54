"""Backoff for every retry, from tenacity (its one home: other modules import what they need from here).

Loops on threads of their own retry through `retrying` (tenacity's `Retrying`, with the interruptible
`sleep` and `stopped` they are given); the daemon's own loop, which never blocks, asks a `Backoff` how
long to wait before its next attempt: the same wait strategy, asked with tenacity's own call state.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_never,
    wait_exponential,
    wait_exponential_jitter,
)

__all__ = ["Backoff", "RetryCallState", "Retrying", "retrying"]


def retrying(
    retryable: Callable[[BaseException], bool],
    cap: float,
    sleep: Callable[[float], None],
    stopped: Callable[[], bool],
    on_backoff: Callable[[RetryCallState], None] | None = None,
    first: float = 1.0,
    jitter: float = 1.0,
) -> Retrying:
    """Retry what `retryable` accepts for ever: exponential from `first` with up to `jitter` seconds of
    jitter, capped at `cap`, until `stopped()`; `sleep` is the interruptible wait."""
    return Retrying(
        retry=retry_if_exception(retryable),
        wait=wait_exponential_jitter(multiplier=first, max=cap, jitter=jitter),
        stop=lambda _state: stopped(),
        sleep=sleep,
        before_sleep=on_backoff,
        reraise=True,
    )


class Backoff:
    """Delays that double from `first` up to `cap` while failures follow each other; reset on success.

    Nothing sleeps here: the caller waits the delay its own way (the daemon's loop in its one wait)."""

    def __init__(self, first: float, cap: float) -> None:
        self._retrying = Retrying(wait=wait_exponential(multiplier=first, min=first, max=cap), stop=stop_never)
        self._state = self._fresh()

    def _fresh(self) -> RetryCallState:
        # A call state of the Retrying whose wait strategy it feeds, as tenacity makes one for each call.
        return RetryCallState(self._retrying, fn=None, args=(), kwargs={})

    def next(self) -> float:
        """The wait before the next attempt, after one more failure."""
        delay = float(self._retrying.wait(self._state))
        self._state.prepare_for_next_attempt()
        return delay

    def reset(self) -> None:
        """A success: the next failure waits `first` again."""
        self._state = self._fresh()
