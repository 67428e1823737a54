"""A batch's trace: the time between the steps that happened, in order."""

from __future__ import annotations

from committer.commit.trace import Trace, schedstat


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


def test_the_path_to_the_ref_says_its_cpu_and_its_wait_for_one_and_carries_noted_fields() -> None:
    trace = Trace(first_event=0.0)
    trace.mark("batch_closed")
    sum(range(100_000))  # some CPU on the path
    trace.mark("ref_updated")
    trace.note(fast_import_ahead=True, fast_import_cpu_ms=3.5)
    fields = trace.fields()
    assert fields["fast_import_ahead"] is True and fields["fast_import_cpu_ms"] == 3.5
    if schedstat() is not None:  # Linux
        assert fields["cpu_ms"] > 0 and fields["waited_ms"] >= 0
    assert "cpu_ms" not in Trace(first_event=0.0).fields()
