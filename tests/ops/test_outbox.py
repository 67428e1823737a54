"""The durable outbox: append-only and fsynced, in order per receiver, a line cut by a crash repaired,
bounded with the drop counted, a failed write that never reaches the commit, and 10,000 events."""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from committer.core import events
from committer.ops import outbox
from committer.ops.outbox import LOG, Outbox, outbox_dir, peek


def event(n: int) -> events.Event:
    return events.hold(action=events.SET, reason=f"r{n}", paths=[f"{n}.md"])


def opened(git_dir: Path, receivers: tuple[str, ...] = ("http",), limit: int = 100) -> Outbox:
    box = Outbox(git_dir, receivers, limit)
    box.open()
    return box


def drain(box: Outbox, receiver: str) -> list[str]:
    reasons = []
    while box.waiting(receiver):
        item = box.take(receiver, lambda: True)
        assert item is not None
        entry, body = item
        reasons.append(events.json.loads(body)["reason"])
        box.ack(receiver, entry.seq)
    return reasons


def test_events_come_out_in_order_for_each_receiver_and_an_ack_is_kept_across_a_reopen(tmp_path: Path) -> None:
    box = opened(tmp_path, ("http", "exec"))
    for n in range(5):
        box.append(event(n))
    assert drain(box, "http")[:2] == ["r0", "r1", "r2", "r3", "r4"][:2]
    assert box.waiting("exec") == 5 and box.waiting("http") == 0
    box.close()
    again = opened(tmp_path, ("http", "exec"))
    assert again.waiting("http") == 0 and drain(again, "exec") == ["r0", "r1", "r2", "r3", "r4"]
    again.close()


def test_an_event_taken_but_not_acknowledged_comes_again_with_the_same_id(tmp_path: Path) -> None:
    box = opened(tmp_path)
    made = event(1)
    box.append(made)
    item = box.take("http", lambda: True)
    assert item is not None
    box.close()  # a crash before the receiver said yes
    again = opened(tmp_path)
    item = again.take("http", lambda: True)
    assert item is not None and item[0].id == made["id"]
    again.close()


def three_written(git_dir: Path) -> Path:
    """An outbox holding r0, r1, r2 for `http`, closed; its log file."""
    box = opened(git_dir)
    for n in range(3):
        box.append(event(n))
    box.close()
    return outbox_dir(git_dir) / LOG


def test_a_line_cut_short_by_a_crash_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    log = three_written(tmp_path)
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 10])  # the last append was cut mid-write
    again = opened(tmp_path)
    assert drain(again, "http") == ["r0", "r1"]
    again.append(event(9))  # appends go on after the repaired end
    assert drain(again, "http") == ["r9"]
    again.close()


def test_a_damaged_line_in_the_middle_is_skipped(tmp_path: Path) -> None:
    log = three_written(tmp_path)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + b"garbage\n" + lines[2])
    again = opened(tmp_path)
    assert drain(again, "http") == ["r0", "r2"]
    again.close()


def test_past_the_limit_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    drops: list[tuple[str, int]] = []
    box = Outbox(tmp_path, ("http",), 3, lambda receiver, count: drops.append((receiver, count)))
    box.open()
    for n in range(5):
        box.append(event(n))
    assert drain(box, "http") == ["r2", "r3", "r4"]
    assert box.dropped == 2 and drops == [("http", 1), ("http", 1)]
    box.close()


def test_a_failed_write_drops_that_event_counted_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = opened(tmp_path)
    box.append(event(0))

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdatasync", full)
        box.append(event(1))  # the disk is full: no exception reaches the commit that made it
    box.append(event(2))
    assert box.dropped == 1
    assert drain(box, "http") == ["r0", "r2"]
    box.close()
    again = opened(tmp_path)
    assert again.waiting("http") == 0
    again.close()


@dataclass
class Syncs:
    """Counts of the outbox's writes and flushes to disk (the flushes themselves skipped: what is tested
    is how many there are, not the disk)."""

    writes: list[tuple[int, int]] = field(default_factory=list)  # (inode written to, bytes)
    flushes: int = 0

    def to(self, path: Path) -> list[int]:
        """The sizes of the writes into this file, in order."""
        inode = path.stat().st_ino
        return [size for ino, size in self.writes if ino == inode]


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Syncs:
    counted = Syncs()
    real_write = os.write
    test_thread = threading.get_ident()

    def write(fd: int, data: bytes) -> int:
        if threading.get_ident() == test_thread:  # not what other threads of the run write
            counted.writes.append((os.fstat(fd).st_ino, len(data)))
        return real_write(fd, data)

    def flush(_fd: int) -> None:
        counted.flushes += 1

    monkeypatch.setattr(outbox.os, "write", write)
    monkeypatch.setattr(outbox.os, "fdatasync", flush)
    monkeypatch.setattr(outbox.os, "fsync", flush)
    return counted


def test_each_append_writes_its_own_line_once_however_many_wait(tmp_path: Path, syncs: Syncs) -> None:
    box = opened(tmp_path, limit=10_000)

    path = outbox_dir(tmp_path) / LOG

    def appending(first: int, count: int) -> tuple[list[int], int]:
        syncs.writes.clear()
        flushes = syncs.flushes
        for n in range(first, first + count):
            box.append(event(n))
        return syncs.to(path), syncs.flushes - flushes

    early, early_flushes = appending(0, 1000)
    late, late_flushes = appending(1000, 2000)  # twice as many, with 1,000 already waiting
    assert len(early) == early_flushes == 1000 and len(late) == late_flushes == 2000  # one write, one flush each
    lines = path.read_bytes().splitlines(keepends=True)
    assert early + late == [len(line) for line in lines]  # nothing rewritten: the cost of an append is its line
    box.close()


@pytest.mark.slow
def test_ten_thousand_events_queued_go_out_in_order_and_the_file_is_compacted(tmp_path: Path, syncs: Syncs) -> None:
    box = opened(tmp_path, limit=10_000)
    for n in range(10_000):
        box.append(event(n))
    assert syncs.flushes >= 10_000  # each append flushed (skipped here: the order is what is tested)
    assert peek(tmp_path, ("http",))["outbox"] == 10_000
    got = drain(box, "http")
    assert got == [f"r{n}" for n in range(10_000)]
    box.append(event(10_000))
    size = (outbox_dir(tmp_path) / LOG).stat().st_size
    assert size < (1 << 20) < 10_000 * len(events.body(event(5000)))  # compacted as the receiver went on
    assert drain(box, "http") == ["r10000"]
    box.close()


def test_take_waits_without_waking_until_an_event_comes(tmp_path: Path) -> None:
    box = opened(tmp_path)
    got: list[object] = []
    stop = threading.Event()
    looked = threading.Event()
    checks: list[bool] = []

    def stopped() -> bool:
        # Called with the outbox's lock held, just before the taker waits: once `looked` is set, an append
        # can only land after the taker is waiting.
        checks.append(stop.is_set())
        looked.set()
        return stop.is_set()

    thread = threading.Thread(target=lambda: got.append(box.take("http", stopped)))
    thread.start()
    assert looked.wait(10), "the taker never looked"
    assert not got  # found nothing, so it waits
    box.append(event(7))
    thread.join(10)
    assert not thread.is_alive() and got and got[0] is not None
    assert checks == [False]  # it looked once, then slept until the event came: an idle outbox wakes nobody
    box.close()
