"""The daemon's side of a batch's trace: the state written, then the push that carried the commit."""

from __future__ import annotations

from typing import Any

import pytest

from committer.commit.trace import Trace
from committer.daemon import traces
from committer.daemon.traces import Traces


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    class Log:
        def debug(self, event: str, **fields: Any) -> None:
            seen.append({"event": event, **fields})

    monkeypatch.setattr(traces, "log", Log())
    return seen


def landed(at: float) -> Trace:
    trace = Trace(first_event=at)
    for step, offset in (("batch_closed", 0.2), ("collected", 0.205), ("objects_written", 0.206),
                         ("ref_updated", 0.215)):
        trace.mark(step, at + offset)
    return trace


def test_without_a_remote_the_trace_goes_out_once_the_state_is_written(logged: list[dict[str, Any]]) -> None:
    waiting = Traces(pushes=False)
    waiting.committed(landed(100.0), "b1", None)
    waiting.reported(None, None)
    assert [e["batch"] for e in logged] == ["b1"] and "push_done_ms" not in logged[0]
    waiting.reported(None, None)
    assert len(logged) == 1


def test_the_push_that_carried_the_commit_ends_the_trace(logged: list[dict[str, Any]]) -> None:
    waiting = Traces(pushes=True)
    before = {"last_push_at": "t0", "last_push_seconds": 0.05, "consecutive_failures": 0}
    waiting.committed(landed(100.0), "b1", before)
    waiting.reported(before, None)
    assert logged == []
    older = {"last_push_at": "t1", "last_push_seconds": 5.0, "consecutive_failures": 0}
    waiting.reported(older, 101.0)  # began before the commit: not its push
    assert logged == []
    waiting.reported({**older, "last_push_at": "t2", "last_push_seconds": 0.04}, 100.5)
    assert logged[0]["push_done_ms"] == 40.0 and logged[0]["batch"] == "b1"


def test_a_new_commit_or_a_failed_push_sends_the_trace_without_its_push(logged: list[dict[str, Any]]) -> None:
    waiting = Traces(pushes=True)
    state = {"last_push_at": None, "last_push_seconds": None, "consecutive_failures": 0}
    waiting.committed(landed(100.0), "b1", state)
    waiting.committed(landed(101.0), "b2", state)
    waiting.reported({**state, "consecutive_failures": 1}, 101.5)
    assert [(e["batch"], e["push"]) for e in logged] == [("b1", "superseded"), ("b2", "push_failed")]
