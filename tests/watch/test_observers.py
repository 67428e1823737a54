"""The observer seam: a fake observer registered in watch.observers plugs into the Watcher (its paths
and its lost events are drained like inotify's), auto picks and falls back through the registry, a
restart counts and starts afresh, and both real observers see a real write."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from structlog.testing import capture_logs

from committer.policy.filters import PathFilter
from committer.watch import observers
from committer.watch.inbox import Inbox
from committer.watch.inotify import InotifyObserver
from committer.watch.mounts import filesystem_type
from committer.watch.observer import Observer, Scope
from committer.watch.observers import Entry
from committer.watch.poll import PollObserver
from committer.watch.watcher import Watcher
from tests.conftest import wait_for


class Fake:
    """An observer that sees what the test tells it, on the test's thread."""

    kind = "fake"
    made: ClassVar[list[Fake]] = []

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.running = False
        Fake.made.append(self)

    def start(self) -> None:
        self.running = True

    def stop(self, timeout: float | None = None) -> None:
        self.running = False

    def alive(self) -> bool:
        return self.running

    def saw(self, *paths: str) -> None:
        self.scope.inbox.changed(paths)

    def overflowed(self) -> None:
        self.scope.inbox.lost()


class Refused(Fake):
    """An observer whose start fails the way inotify's does when the kernel's limits are reached."""

    kind = "refused"

    def start(self) -> None:
        raise OSError(24, "inotify instance limit reached")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Entry]:
    Fake.made = []
    table: dict[str, Entry] = {}
    monkeypatch.setattr(observers, "OBSERVERS", table)
    return table


def watcher(root: Path, requested: str = "auto") -> tuple[Watcher, list[int]]:
    woken: list[int] = []
    return Watcher(root, PathFilter(root), lambda: woken.append(1), requested, poll_interval=0.05), woken


def test_a_registered_fake_observer_feeds_the_watcher(tmp_path: Path, registry: dict[str, Entry]) -> None:
    registry["fake"] = Entry(Fake)
    w, woken = watcher(tmp_path, "fake")
    assert w.start() == "fake" and w.alive()
    fake = Fake.made[-1]
    assert fake.scope.root == str(tmp_path) and fake.scope.poll_interval == 0.05
    fake.saw("notes/a.md", "b.md")
    fake.overflowed()
    assert woken and w.drain() == (["b.md", "notes/a.md"], True)
    assert w.drain() == ([], False)
    w.stop()
    assert not w.alive() and not fake.running


def test_auto_skips_an_observer_blind_on_this_filesystem(tmp_path: Path, registry: dict[str, Entry]) -> None:
    filesystem = filesystem_type(str(tmp_path))
    assert filesystem
    registry["blind"] = Entry(Refused, blind=(filesystem,))
    registry["fake"] = Entry(Fake)
    w, _ = watcher(tmp_path)
    with capture_logs() as logs:
        assert w.start() == "fake"
    assert [e for e in logs if e["event"] == "observer_auto"] == [
        {"event": "observer_auto", "observer": "fake", "filesystem": filesystem, "reason": "blind sees nothing there",
         "log_level": "info"}
    ]


def test_auto_falls_back_to_the_next_observer_when_one_cannot_start(
    tmp_path: Path, registry: dict[str, Entry]
) -> None:
    registry["refused"] = Entry(Refused, hint="raise the limit")
    registry["fake"] = Entry(Fake)
    w, _ = watcher(tmp_path)
    with capture_logs() as logs:
        assert w.start() == "fake"
    fallback = [e for e in logs if e["event"] == "observer_fallback"]
    assert len(fallback) == 1 and fallback[0]["observer"] == "fake" and fallback[0]["hint"] == "raise the limit"
    assert "instance limit" in fallback[0]["reason"] and fallback[0]["log_level"] == "warning"


def test_an_observer_asked_for_by_name_does_not_fall_back(tmp_path: Path, registry: dict[str, Entry]) -> None:
    registry["refused"] = Entry(Refused)
    registry["fake"] = Entry(Fake)
    with pytest.raises(OSError, match="instance limit"):
        watcher(tmp_path, "refused")[0].start()


def test_a_restart_starts_a_new_observer_and_keeps_what_was_queued(
    tmp_path: Path, registry: dict[str, Entry]
) -> None:
    registry["fake"] = Entry(Fake)
    w, _ = watcher(tmp_path, "fake")
    w.start()
    first = Fake.made[-1]
    first.saw("a.md")
    first.running = False  # it died
    assert not w.alive()
    assert w.restart() == "fake" and w.restarts == 1 and w.alive()
    assert Fake.made[-1] is not first
    assert w.drain() == (["a.md"], False)


def test_a_restart_that_cannot_start_is_logged_and_returns_none(tmp_path: Path, registry: dict[str, Entry]) -> None:
    registry["fake"] = Entry(Fake)
    w, _ = watcher(tmp_path, "fake")
    w.start()
    registry["fake"] = Entry(Refused)
    with capture_logs() as logs:
        assert w.restart() is None
    assert not w.alive() and w.restarts == 1
    assert [e["event"] for e in logs] == ["watcher_restart_failed"]


@pytest.mark.parametrize("kind", ["inotify", "poll"])
def test_each_real_observer_sees_a_write(tmp_path: Path, kind: str) -> None:
    w, woken = watcher(tmp_path, kind)
    assert w.start() == kind
    try:
        seen: list[str] = []

        def arrived() -> bool:
            seen.extend(w.drain()[0])
            return "new.md" in seen

        (tmp_path / "new.md").write_text("hello")
        wait_for(arrived, timeout=10, what=f"{kind} to report new.md")
        assert woken
    finally:
        w.stop()
    assert not w.alive()


def test_the_real_observers_are_observers(tmp_path: Path) -> None:
    scope = Scope(str(tmp_path), PathFilter(tmp_path), Inbox(lambda: None))
    assert isinstance(InotifyObserver(scope), Observer) and isinstance(PollObserver(scope), Observer)
    assert list(observers.OBSERVERS) == ["inotify", "poll"]
