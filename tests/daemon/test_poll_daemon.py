"""The poll observer inside the running daemon: changes on a real directory, with inotify off, are
committed within poll_interval + debounce + a margin."""

from __future__ import annotations

import datetime
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, show, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
INTERVAL, DEBOUNCE = 1.0, 0.3
MARGIN = 1.5  # a loaded 2-core machine; the target is 1 s, measured by `make bench`
DEADLINE = INTERVAL + DEBOUNCE + MARGIN


def _landed(daemon: DaemonProcess, path: str, content: bytes, since: int) -> float | None:
    """When the commit that gave `path` this content reached the branch (its git_commit event)."""
    for event in daemon.events("git_commit")[since:]:
        if show_or_none(daemon.layout.git_dir, path, event["sha"]) == content:
            return datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    return None


def _write_in_second(path: Path, text: str, second: int) -> float:
    """Write `text` and give the file the mtime `second`, as a filesystem with 1 s timestamps does."""
    path.write_text(text)
    os.utime(path, ns=(second * 10**9, second * 10**9))
    return time.time()


def test_poll_observer_commits_new_changed_and_same_size_rewritten_files_in_time(
    layout: Layout, start_daemon: Start
) -> None:
    for i in range(200):
        (layout.data / f"d{i // 20}").mkdir(exist_ok=True)
        (layout.data / f"d{i // 20}" / f"n{i}.md").write_text(f"note {i}\n")
    daemon = start_daemon("--observer", "poll", "--poll-interval", f"{INTERVAL:g}s", "--debounce",
                          f"{int(DEBOUNCE * 1000)}ms")
    assert daemon.events("daemon_start")[0]["observer"] == "poll"
    assert len(tree_files(layout.git_dir)) == 200
    latencies = []

    def expect(rel: str, content: bytes, written: float, commits_before: int) -> None:
        landed = wait_for(lambda: _landed(daemon, rel, content, commits_before), timeout=DEADLINE,
                          what=f"{rel} committed within poll_interval + debounce + {MARGIN} s")
        latencies.append(landed - written)

    # A new file in an existing directory.
    before = len(daemon.events("git_commit"))
    (layout.data / "d3" / "new.md").write_text("a new note\n")
    expect("d3/new.md", b"a new note\n", time.time(), before)

    # An existing file modified, in a new directory.
    before = len(daemon.events("git_commit"))
    (layout.data / "fresh").mkdir()
    (layout.data / "fresh" / "n.md").write_text("in a new folder\n")
    (layout.data / "d0" / "n0.md").write_text("note 0, edited\n")
    written = time.time()
    expect("fresh/n.md", b"in a new folder\n", written, before)
    expect("d0/n0.md", b"note 0, edited\n", written, before)

    # Rewritten with the same size and the same mtime second, twice, as on a 1 s filesystem.
    second = int(time.time())
    before = len(daemon.events("git_commit"))
    rewritten = layout.data / "d1" / "n25.md"
    expect("d1/n25.md", b"version 1\n", _write_in_second(rewritten, "version 1\n", second), before)
    before = len(daemon.events("git_commit"))
    written = _write_in_second(rewritten, "version 2\n", second)
    assert rewritten.stat().st_size == len("version 1\n") and rewritten.stat().st_mtime_ns == second * 10**9
    expect("d1/n25.md", b"version 2\n", written, before)

    print("\nwrite -> commit with the poll observer:", ", ".join(f"{s:.2f} s" for s in latencies))
    assert daemon.stop() == 0


def show_or_none(git_dir: Path, rel: str, rev: str) -> bytes | None:
    try:
        return show(git_dir, rel, rev)
    except subprocess.CalledProcessError:
        return None
