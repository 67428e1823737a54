"""A batch's trace: the time between the steps that happened, in order."""

from __future__ import annotations

from committer.commit.trace import Trace


def test_durations_run_from_the_step_before_that_happened() -> None:
    trace = Trace(first_event=10.0)
    trace.mark("batch_closed", 10.2)
    trace.mark("collected", 10.204)
    trace.mark("ref_updated", 10.214)
    trace.mark("ref_updated", 11.0)  # marked once
    fields = trace.fields()
    assert fields == {"batch_closed_ms": 200.0, "collected_ms": 4.0, "ref_updated_ms": 10.0, "to_ref_ms": 214.0,
                      "total_ms": 214.0}
    assert Trace().fields() == {}
