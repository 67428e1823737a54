"""The outbox on a filesystem that fills up for real: the append that cannot be written is dropped and
counted, nothing is raised to the commit that made it, the file stays whole, and appends go on once
there is space again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from committer.core import events
from committer.ops.outbox import Outbox
from tests.faults.test_disk_full import _fill, small_fs  # noqa: F401

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def made(n: int) -> events.Event:
    return events.hold(action=events.SET, reason=f"r{n}", paths=[f"{n:04}-{'p' * 200}.md" for _ in range(20)])


def test_a_full_disk_drops_the_event_it_cannot_write_and_nothing_else(small_fs: Path) -> None:  # noqa: F811
    box = Outbox(small_fs / "knowledge.git", ("http",), 100)
    box.open()
    box.append(made(0))
    filler = _fill(small_fs)
    for n in range(1, 4):
        box.append(made(n))  # no exception reaches the caller
    assert box.dropped >= 1
    written = box.waiting("http")
    filler.unlink()
    box.append(made(9))
    assert box.waiting("http") == written + 1
    box.close()
    again = Outbox(small_fs / "knowledge.git", ("http",), 100)
    again.open()
    reasons = []
    while (item := again.take("http", lambda: True)) is not None:
        reasons.append(events.json.loads(item[1])["reason"])
        again.ack("http", item[0].seq)
    assert reasons[0] == "r0" and reasons[-1] == "r9" and len(reasons) == written + 1
    again.close()
    assert not [p for p in os.listdir(small_fs / "knowledge.git" / "committer" / "outbox") if p.endswith(".tmp")]
