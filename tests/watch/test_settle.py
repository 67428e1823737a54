"""Files not ready to commit (open for writing, temp names) hold their batch open, up to max_delay:
the batcher with an injected clock, the open/close bookkeeping, and the watcher fed watchdog's events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from watchdog.events import (
    EventsLostEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from committer.policy.filters import PathFilter
from committer.watch.batcher import Batcher
from committer.watch.inotify import EventHandler
from committer.watch.settle import Settling, looks_temporary
from committer.watch.watcher import Watcher


def test_a_batch_holding_a_file_being_written_waits_for_it_up_to_max_delay() -> None:
    b = Batcher(debounce=1.0, max_delay=30.0)
    b.add("ideas/tmpoylrxc9e", now=100.0)
    b.settle({"ideas/tmpoylrxc9e"})
    assert b.next_deadline() == 130.0 and not b.due(101.0) and not b.due(129.9)
    b.settle(set())  # closed and renamed away
    b.add("ideas/idea.md", now=106.0)
    assert b.next_deadline() == 107.0 and b.due(107.0)


def test_a_file_never_closed_is_committed_at_max_delay() -> None:
    b = Batcher(debounce=1.0, max_delay=30.0)
    b.add("log.md", now=0.0)
    b.settle({"log.md"})
    assert not b.due(29.9) and b.due(30.0)
    batch = b.take()
    assert batch is not None and batch.paths == {"log.md"} and not b.waiting()


def test_a_busy_path_outside_the_batch_does_not_hold_it() -> None:
    b = Batcher(debounce=1.0, max_delay=30.0)
    b.settle({"other/tmpabcdefgh"})
    b.add("notes/a.md", now=10.0)
    assert b.next_deadline() == 11.0


def test_a_folder_in_the_batch_holds_the_busy_files_below_it() -> None:
    b = Batcher(debounce=1.0, max_delay=30.0)
    b.add("rsynced", now=10.0)
    b.settle({"rsynced/.Big rsync.md.iZSkPc"})
    assert b.next_deadline() == 40.0
    b.add("", now=11.0)  # the whole tree
    assert b.waiting()


@pytest.mark.parametrize(("name", "temp"), [
    ("ideas/tmpoylrxc9e", True), ("tmp_ab12cd3.md", True), ("rsynced/.Big rsync.md.iZSkPc", True),
    (".note.md.a1B2c3", True), (".idea2.k3_x9qzw", True),
    ("tmp.md", False), ("notes/tmpfile.md", False), ("idea.md", False),
    (".bmignore", False), ("a.md.iZSkPc", False),
])
def test_temp_names_of_python_and_rsync(name: str, temp: bool) -> None:
    assert looks_temporary(name) is temp


def test_a_file_is_busy_from_its_first_write_to_its_last_close() -> None:
    s = Settling()
    s.opened("a.md")  # a reader: opened, nothing written
    assert s.busy() == frozenset()
    s.opened("a.md")
    s.written("a.md")
    assert s.busy() == {"a.md"}
    s.closed("a.md")  # the reader goes; the writer still has it open
    assert s.busy() == {"a.md"}
    s.closed("a.md", wrote=True)
    assert s.busy() == frozenset()
    s.closed("a.md")  # a close of an open made before the watch started
    assert s.busy() == frozenset()


def test_a_writers_close_ends_the_wait_when_readers_closes_were_merged_into_one() -> None:
    """Two readers (git during a reconcile) open the file; the kernel merges their two identical closes
    into one event. A writer that comes later is done at its own close, not at max_delay."""
    s = Settling()
    s.opened(".gitattributes")
    s.opened(".gitattributes")
    s.closed(".gitattributes")  # the second reader's close was merged into the first
    s.opened(".gitattributes")
    s.written(".gitattributes")
    assert s.busy() == {".gitattributes"}
    s.closed(".gitattributes", wrote=True)
    assert s.busy() == frozenset()


def test_a_temp_file_is_busy_until_renamed_away_and_an_open_file_follows_its_rename() -> None:
    s = Settling()
    s.written("d/tmpoylrxc9e")
    s.opened("d/tmpoylrxc9e")
    s.written("d/tmpoylrxc9e")
    assert s.busy() == {"d/tmpoylrxc9e"}
    s.moved("d/tmpoylrxc9e", "d/idea.md")  # renamed while still open
    assert s.busy() == {"d/idea.md"}
    s.closed("d/idea.md", wrote=True)
    assert s.busy() == frozenset()
    s.written("d/.x.md.AbC123")
    s.deleted("d")
    assert s.busy() == frozenset()


def test_lost_events_forget_what_was_open() -> None:
    s = Settling()
    s.opened("a.md")
    s.written("a.md")
    s.lost()
    assert s.busy() == frozenset()


class Fed:
    """A watcher fed watchdog's events by hand, as its inotify observer's thread feeds it."""

    def __init__(self, root: Path, notify: Callable[[], None]) -> None:
        watcher = Watcher(root, PathFilter(root), notify)
        self.on_any_event = EventHandler(watcher.root, watcher.pfilter, watcher.inbox).on_any_event
        self.busy, self.drain = watcher.busy, watcher.drain


def watcher(root: Path) -> tuple[Fed, list[int]]:
    woken: list[int] = []
    return Fed(root, lambda: woken.append(1)), woken


def test_the_watcher_follows_a_slow_writer_from_watchdogs_events(tmp_path: Path) -> None:
    w, woken = watcher(tmp_path)
    tmp, final = str(tmp_path / "ideas" / "tmpoylrxc9e"), str(tmp_path / "ideas" / "idea.md")
    for event in (FileCreatedEvent(tmp), FileOpenedEvent(tmp), FileModifiedEvent(tmp)):
        w.on_any_event(event)
    assert w.busy() == {"ideas/tmpoylrxc9e"} and woken
    assert w.drain() == (["ideas/tmpoylrxc9e"], False)
    w.on_any_event(FileClosedEvent(tmp))
    assert w.busy() == {"ideas/tmpoylrxc9e"}  # closed, but a temp name: it waits for its rename
    w.on_any_event(FileMovedEvent(tmp, final))
    assert w.busy() == frozenset()
    assert w.drain() == (["ideas/idea.md", "ideas/tmpoylrxc9e"], False)


def test_opens_and_reads_wake_nothing(tmp_path: Path) -> None:
    w, woken = watcher(tmp_path)
    path = str(tmp_path / "a.md")
    w.on_any_event(FileOpenedEvent(path))
    w.on_any_event(FileClosedNoWriteEvent(path))
    assert woken == [] and w.drain() == ([], False)


def test_events_lost_is_an_overflow_and_forgets_open_files(tmp_path: Path) -> None:
    w, woken = watcher(tmp_path)
    path = str(tmp_path / "a.md")
    for event in (FileOpenedEvent(path), FileModifiedEvent(path)):
        w.on_any_event(event)
    assert w.busy() == {"a.md"}
    w.on_any_event(EventsLostEvent(str(tmp_path), is_directory=True))
    assert woken and w.busy() == frozenset()
    assert w.drain() == (["a.md"], True)
