"""Lock files and crash reports a dead git left in the repository do not stop the next daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Layout
from tests.faults.harness import Daemons, fsck, ref_sha, settle, stale_locks

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def _first_history(layout: Layout, daemons: Daemons) -> str:
    (layout.data / "a.md").write_text("first\n")
    daemon = daemons.start(layout)
    settle(layout)
    assert daemon.stop() == 0, daemon.output()
    head = ref_sha(layout.git_dir)
    assert head
    return head


def _removed(events: list[dict[str, object]], git_dir: Path) -> set[str]:
    return {Path(str(e["path"])).relative_to(git_dir).as_posix() for e in events if e.get("path")}


def test_stale_git_locks_are_removed_at_start_and_commits_go_on(layout: Layout, daemons: Daemons) -> None:
    head = _first_history(layout, daemons)
    locks = {
        "index.lock": b"DIRC half an index",
        "refs/heads/main.lock": f"{head}\n".encode(),
        "packed-refs.lock": b"",
    }
    for name, content in locks.items():
        (layout.git_dir / name).write_bytes(content)
    # changes made while no daemon ran: only the start-up reconcile (which needs the index) sees them
    (layout.data / "a.md").write_text("changed while stopped\n")
    (layout.data / "b.md").write_text("new while stopped\n")

    daemon = daemons.start(layout)
    removed = _removed(daemon.events("stale_lock_removed"), layout.git_dir)
    assert set(locks) <= removed, daemon.output()
    assert all(e["level"] == "warning" for e in daemon.events("stale_lock_removed"))
    assert not any((layout.git_dir / name).exists() for name in locks)
    settle(layout)  # the reconcile commit (index and branch were locked)
    (layout.data / "c.md").write_text("after the start\n")
    settle(layout)  # and a watcher batch (the branch's ref was locked)
    assert ref_sha(layout.git_dir) != head
    assert daemon.stop() == 0, daemon.output()
    check = fsck(layout.git_dir)
    assert check.ok and check.strict_ok, check
    assert not stale_locks(layout.git_dir)


def _crash_report(layout: Layout) -> Path:
    crash = layout.git_dir / "fast_import_crash_4242"
    crash.write_text(
        "fast-import crash report:\n    fast-import process: 4242\n    parent process     : 1\n\n"
        "fatal: stream ends early\n\nMost Recent Commands Before Crash\n"
        "---------------------------------\n  blob\n  mark :1\n* data 12\n"
    )
    return crash


def test_a_leftover_fast_import_crash_report_does_not_stop_commits(layout: Layout, daemons: Daemons) -> None:
    _first_history(layout, daemons)
    _crash_report(layout)
    (layout.data / "b.md").write_text("new while stopped\n")
    daemon = daemons.start(layout)
    settle(layout)
    (layout.data / "c.md").write_text("after the start\n")
    settle(layout)
    assert daemon.stop() == 0, daemon.output()
    assert fsck(layout.git_dir).ok


def test_a_leftover_fast_import_crash_report_is_removed_and_logged(layout: Layout, daemons: Daemons) -> None:
    _first_history(layout, daemons)
    crash = _crash_report(layout)
    daemon = daemons.start(layout)
    removed = _removed(daemon.events("stale_lock_removed") + daemon.events("leftover_removed"),
                       layout.git_dir)
    assert crash.name in removed, daemon.output()
    assert not crash.exists()
