"""Retries through tenacity, in one place: the thread loops' `retrying` (sleep and stop injected, so
nothing here sleeps) and the main loop's non-blocking `Backoff`."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.core.retry import Backoff, RetryCallState, retrying

PACKAGE = Path(__file__).resolve().parents[2] / "committer"


class Flaky(Exception):
    """A failure worth retrying."""


class Broken(Exception):
    """A failure no retry mends."""


def failing(times: int, calls: list[int]) -> Callable[[], str]:
    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Flaky(f"attempt {len(calls)}")
        return "done"

    return attempt


def test_backoff_doubles_from_first_to_cap() -> None:
    backoff = Backoff(first=2.0, cap=30.0)
    assert [backoff.next() for _ in range(7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_starts_over_after_reset() -> None:
    backoff = Backoff(first=1.0, cap=8.0)
    assert [backoff.next() for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.reset()
    assert [backoff.next() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_backoff_past_many_failures_stays_at_the_cap() -> None:
    """Thousands of failures in a row (a remote down for days) never overflow the delay."""
    backoff = Backoff(first=2.0, cap=300.0)
    delays = [backoff.next() for _ in range(5000)]
    assert delays[-1] == 300.0 and max(delays) == 300.0


def test_retrying_sleeps_exponentially_without_jitter_until_it_works() -> None:
    sleeps: list[float] = []
    calls: list[int] = []
    seen: list[tuple[int, float]] = []

    def on_backoff(state: RetryCallState) -> None:
        assert state.outcome is not None and isinstance(state.outcome.exception(), Flaky)
        seen.append((state.attempt_number, state.next_action.sleep if state.next_action else -1.0))

    result = retrying(lambda exc: isinstance(exc, Flaky), cap=10.0, sleep=sleeps.append, stopped=lambda: False,
                      on_backoff=on_backoff, first=1.5, jitter=0.0)(failing(5, calls))
    assert result == "done" and len(calls) == 6
    assert sleeps == [1.5, 3.0, 6.0, 10.0, 10.0]
    assert seen == [(1, 1.5), (2, 3.0), (3, 6.0), (4, 10.0), (5, 10.0)]


def test_retrying_adds_at_most_the_jitter_it_is_given() -> None:
    sleeps: list[float] = []
    retrying(lambda exc: isinstance(exc, Flaky), cap=100.0, sleep=sleeps.append, stopped=lambda: False,
             first=1.0, jitter=0.5)(failing(4, []))
    for n, delay in enumerate(sleeps):
        assert 2.0**n <= delay <= 2.0**n + 0.5


def test_retrying_raises_what_is_not_retryable_at_once() -> None:
    sleeps: list[float] = []
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise Broken("for good")

    with pytest.raises(Broken):
        retrying(lambda exc: isinstance(exc, Flaky), cap=10.0, sleep=sleeps.append, stopped=lambda: False)(attempt)
    assert calls == [1] and sleeps == []


def test_retrying_raises_the_last_failure_once_stopped() -> None:
    sleeps: list[float] = []
    calls: list[int] = []
    with pytest.raises(Flaky, match="attempt 3"):
        retrying(lambda exc: isinstance(exc, Flaky), cap=10.0, sleep=sleeps.append,
                 stopped=lambda: len(calls) >= 3)(failing(10, calls))
    assert len(calls) == 3 and len(sleeps) == 2


def test_tenacity_is_imported_in_core_retry_only() -> None:
    """One home: the loops that retry import what they need from core/retry.py."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "tenacity" for name in names):
                wrong.append(path.relative_to(PACKAGE).as_posix())
    assert sorted(set(wrong)) == ["core/retry.py"]
