"""Half-written files never reach history: real slow writers (Python's tempfile, a plain slow writer, rsync
--bwlimit, vim) against the daemon with a 1 s debounce, with inotify and with the poll observer."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.conftest import DaemonProcess, Layout, committer, git, show, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
LINE = "a line of a long note that is written slowly, one line at a time\n"
POLL = ("--observer", "poll", "--poll-interval", "300ms")
# (daemon flags, the writer's pause between two lines): each pause is longer than the debounce, so only
# knowing that the file is still being written keeps its batch open. inotify says so (open, written, not
# closed); the poll observer sees the file change between two polls, so there the writer writes faster
# than the poll interval (a writer pausing longer is caught by its temp name, or committed as it is
# and completed by the next batch, see docs/failures.md).
PACES = {"inotify": (("--observer", "inotify", "--debounce", "1s"), 1.5),
         "poll": (("--observer", "poll", "--poll-interval", "300ms", "--debounce", "200ms"), 0.25)}


def history_paths(layout: Layout) -> set[str]:
    """Every path any commit of the branch ever held."""
    out = git(layout.git_dir, "log", "--format=", "--name-only", "--no-renames", "-z", "main")
    return {p for p in out.replace("\n", "\0").split("\0") if p}


def versions(layout: Layout, path: str) -> list[bytes]:
    shas = git(layout.git_dir, "log", "--format=%H", "main", "--", path).split()
    return [show(layout.git_dir, path, sha) for sha in shas]


def start(layout: Layout, start_daemon: Start, *extra: str) -> DaemonProcess:
    (layout.data / "a.md").write_text("a")
    assert committer("init", *layout.args()).returncode == 0
    args = list(extra)
    if "--debounce" not in args:
        args += ["--debounce", "1s"]
    return start_daemon("--max-delay", "30s", *args)


def slow_lines(handle: BinaryIO, seconds: float, pause: float) -> bytes:
    """Write a line every `pause` seconds for `seconds`, flushed each time: the file grows on disk."""
    written = b""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        handle.write(LINE.encode())
        handle.flush()
        written += LINE.encode()
        time.sleep(pause)  # the writer's own pace, not a wait for the daemon
    return written


@pytest.mark.parametrize("observer", ["inotify", "poll"])
def test_a_temp_file_held_open_6s_then_replaced_never_reaches_history(
    layout: Layout, start_daemon: Start, observer: str
) -> None:
    flags, pause = PACES[observer]
    start(layout, start_daemon, *flags)
    ideas = layout.data / "ideas"
    ideas.mkdir()
    with tempfile.NamedTemporaryFile(dir=ideas, delete=False) as handle:
        temp = Path(handle.name)
        content = slow_lines(handle, 6.0, pause)
    os.replace(temp, ideas / "idea.md")
    wait_for(lambda: "ideas/idea.md" in tree_files(layout.git_dir), timeout=40, what="idea.md committed")
    assert f"ideas/{temp.name}" not in history_paths(layout)
    assert versions(layout, "ideas/idea.md") == [content]


def test_the_periodic_reconcile_waits_for_a_file_being_written(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "a.md").write_text("a")
    assert committer("init", *layout.args()).returncode == 0
    daemon = start_daemon("--debounce", "1s", env={"COMMITTER_RECONCILE_INTERVAL": "1s"})
    with tempfile.NamedTemporaryFile(dir=layout.data, delete=False) as handle:
        temp = Path(handle.name)
        content = slow_lines(handle, 5.0, 1.5)
    os.replace(temp, layout.data / "idea.md")
    wait_for(lambda: "idea.md" in tree_files(layout.git_dir), timeout=40, what="idea.md committed")
    assert temp.name not in history_paths(layout)
    assert versions(layout, "idea.md") == [content]
    assert [e for e in daemon.events("reconcile") if e.get("why") == "periodic"]  # they ran, around the write


@pytest.mark.parametrize("observer", ["inotify", "poll"])
def test_a_temp_file_closed_then_renamed_later_never_reaches_history(
    layout: Layout, start_daemon: Start, observer: str
) -> None:
    """Closed 3 s before its rename (longer than the debounce): its temp name keeps it waiting."""
    daemon = start(layout, start_daemon, *(POLL if observer == "poll" else ()))
    fd, name = tempfile.mkstemp(dir=layout.data)
    os.write(fd, b"complete, but not yet in place\n")
    os.close(fd)
    (layout.data / "other.md").write_text("an unrelated change in the same batch")
    time.sleep(3)  # the writer's own pause before its rename, three debounces long
    assert "other.md" not in tree_files(layout.git_dir)  # the batch waits for the temp file
    os.replace(name, layout.data / "final.md")
    wait_for(lambda: {"final.md", "other.md"} <= tree_files(layout.git_dir), timeout=40, what="both committed")
    assert Path(name).name not in history_paths(layout)
    daemon.stop()


@pytest.mark.parametrize("observer", ["inotify", "poll"])
def test_a_note_written_slowly_in_place_is_committed_whole(
    layout: Layout, start_daemon: Start, observer: str
) -> None:
    flags, pause = PACES[observer]
    start(layout, start_daemon, *flags)
    with (layout.data / "slow.md").open("wb") as handle:
        content = slow_lines(handle, 5.0, pause)
    wait_for(lambda: "slow.md" in tree_files(layout.git_dir), timeout=40, what="slow.md committed")
    assert versions(layout, "slow.md") == [content]  # never a partial version


def test_a_file_never_closed_is_committed_at_max_delay_as_it_is(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "a.md").write_text("a")
    assert committer("init", *layout.args()).returncode == 0
    start_daemon("--debounce", "500ms", "--max-delay", "3s")
    with (layout.data / "open.md").open("wb") as handle:
        handle.write(b"first part\n")
        handle.flush()
        wait_for(lambda: "open.md" in tree_files(layout.git_dir), timeout=20, what="committed at max_delay")
        assert show(layout.git_dir, "open.md") == b"first part\n"
        handle.write(b"second part\n")
    wait_for(lambda: show(layout.git_dir, "open.md") == b"first part\nsecond part\n", timeout=20,
             what="the next batch brings the rest")


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed (scripts/system-deps.sh)")
def test_rsync_with_a_bandwidth_limit_never_commits_its_temp_file(
    layout: Layout, start_daemon: Start, tmp_path: Path
) -> None:
    start(layout, start_daemon)
    source = tmp_path / "src"
    source.mkdir()
    content = (LINE * 3000).encode()  # ~200 kB: about 6 s at 30 kB/s
    (source / "Big rsync.md").write_bytes(content)
    (layout.data / "rsynced").mkdir()
    subprocess.run(["rsync", "--bwlimit=30", str(source / "Big rsync.md"), str(layout.data / "rsynced") + "/"],
                   check=True, timeout=60)
    wait_for(lambda: "rsynced/Big rsync.md" in tree_files(layout.git_dir), timeout=40, what="rsync's file")
    assert not [p for p in history_paths(layout) if p.startswith("rsynced/.")], history_paths(layout)
    assert versions(layout, "rsynced/Big rsync.md") == [content]


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
def test_vim_saving_a_note_commits_the_note_only(layout: Layout, start_daemon: Start) -> None:
    start(layout, start_daemon)
    note = layout.data / "note.md"
    note.write_text("first\n")
    wait_for(lambda: "note.md" in tree_files(layout.git_dir), what="note.md committed")
    # swap file on, a backup kept, the 4913 probe: all of vim's litter
    subprocess.run(["vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-c", "set swapfile backup writebackup",
                    "-c", "normal! Gosecond", "-c", "wq", str(note)], check=True, timeout=30,
                   stdin=subprocess.DEVNULL, cwd=layout.data)
    wait_for(lambda: show(layout.git_dir, "note.md") == b"first\nsecond\n", what="vim's save committed")
    assert history_paths(layout) == {"a.md", "note.md"}
