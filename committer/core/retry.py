"""Backoff for every retry, from tenacity: thread loops retry through `retrying`; the daemon's own loop,
which never blocks, asks a `Backoff` how long to wait before its next attempt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential, wait_exponential_jitter


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


@dataclass
class _Attempt:
    attempt_number: int


class Backoff:
    """Delays that double from `first` up to `cap` while failures follow each other; reset on success."""

    def __init__(self, first: float, cap: float) -> None:
        self._wait = wait_exponential(multiplier=first, min=first, max=cap)
        self._failures = 0

    def next(self) -> float:
        """The wait before the next attempt, after one more failure."""
        self._failures += 1
        return float(self._wait(_Attempt(self._failures)))  # type: ignore[arg-type]

    def reset(self) -> None:
        self._failures = 0
