"""committer restore: files, folders, deleted files, dry runs and bad input; with and without a daemon."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.conftest import DaemonProcess, Layout, commit_count, committer, git, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def once(layout: Layout) -> str:
    proc = committer("run", "--once", *layout.args())
    assert proc.returncode == 0, proc.stderr
    return git(layout.git_dir, "rev-parse", "HEAD").strip()


def meta(layout: Layout, rev: str = "HEAD") -> dict[str, object]:
    value = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)", rev))
    assert isinstance(value, dict)
    return value


@pytest.fixture
def history(layout: Layout) -> dict[str, str]:
    """v1: notes/a.md, notes/b.md, top.md; v2: a edited, b deleted, c added."""
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "a.md").write_text("a v1")
    (layout.data / "notes" / "b.md").write_text("b v1")
    (layout.data / "top.md").write_text("top v1")
    (layout.data / "run.sh").write_text("#!/bin/sh\n")
    (layout.data / "run.sh").chmod(0o755)
    v1 = once(layout)
    (layout.data / "notes" / "a.md").write_text("a v2")
    (layout.data / "notes" / "b.md").unlink()
    (layout.data / "notes" / "c.md").write_text("c v2")
    (layout.data / "top.md").write_text("top v2")
    v2 = once(layout)
    return {"v1": v1, "v2": v2}


def test_restore_a_file_as_a_new_audited_commit(layout: Layout, history: dict[str, str]) -> None:
    proc = committer("restore", "notes/a.md", "--to", history["v1"], *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "notes" / "a.md").read_text() == "a v1"
    assert (layout.data / "top.md").read_text() == "top v2"
    m = meta(layout)
    assert m["op"] == "restore" and m["source"] == history["v1"] and m["modified"] == 1
    assert git(layout.git_dir, "rev-parse", "HEAD^").strip() == history["v2"]


def test_restore_a_deleted_file(layout: Layout, history: dict[str, str]) -> None:
    proc = committer("restore", "notes/b.md", "--to", "main~1", *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "notes" / "b.md").read_text() == "b v1"
    assert "notes/b.md" in tree_files(layout.git_dir)


def test_restore_a_folder_removes_what_came_later(layout: Layout, history: dict[str, str]) -> None:
    assert committer("restore", "notes", "--to", history["v1"], *layout.args()).returncode == 0
    assert sorted(p.name for p in (layout.data / "notes").iterdir()) == ["a.md", "b.md"]
    assert {f for f in tree_files(layout.git_dir) if f.startswith("notes/")} == {"notes/a.md", "notes/b.md"}
    assert "notes/c.md" in tree_files(layout.git_dir, history["v2"])  # still in history


def test_restore_everything_and_modes(layout: Layout, history: dict[str, str]) -> None:
    (layout.data / "run.sh").chmod(0o644)
    once(layout)
    assert committer("restore", ".", "--to", history["v1"], *layout.args()).returncode == 0
    assert tree_files(layout.git_dir) == tree_files(layout.git_dir, history["v1"])
    assert (layout.data / "run.sh").stat().st_mode & 0o111
    assert (layout.data / "top.md").read_text() == "top v1"


def test_dry_run_lists_and_changes_nothing(layout: Layout, history: dict[str, str]) -> None:
    before = commit_count(layout.git_dir)
    proc = committer("restore", "notes", "--to", history["v1"], "--dry-run", *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert "would write notes/a.md" in proc.stdout and "would write notes/b.md" in proc.stdout
    assert "would delete notes/c.md" in proc.stdout
    assert (layout.data / "notes" / "a.md").read_text() == "a v2"
    assert commit_count(layout.git_dir) == before


def test_dates_git_understands(layout: Layout, history: dict[str, str]) -> None:
    second = int(time.time())
    wait_for(lambda: int(time.time()) > second, what="the next second")
    (layout.data / "top.md").write_text("top v3")
    once(layout)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
    proc = committer("restore", "top.md", "--to", stamp, *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "top.md").read_text() == "top v2"


@pytest.mark.parametrize(("args", "named"), [
    (["notes/a.md", "--to", "no-such-rev"], "--to"),
    (["notes/a.md", "--to", "2000-01-01"], "--to"),
    (["never/was.md", "--to", "HEAD~1"], "path"),
    (["../outside", "--to", "HEAD"], "path"),
])
def test_bad_revisions_and_paths_are_one_clear_error(
    layout: Layout, history: dict[str, str], args: list[str], named: str
) -> None:
    before = commit_count(layout.git_dir)
    proc = committer("restore", *args, *layout.args())
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("committer: error: ") and named in last and "Traceback" not in proc.stderr
    assert commit_count(layout.git_dir) == before


def test_restore_while_the_daemon_runs_makes_exactly_one_commit(
    layout: Layout, history: dict[str, str], start_daemon: Start
) -> None:
    daemon = start_daemon("--debounce", "30s", "--max-delay", "60s")
    (layout.data / "top.md").write_text("an edit still inside the debounce window")
    before = commit_count(layout.git_dir)
    proc = committer("restore", "notes", "--to", history["v1"], *layout.args())
    assert proc.returncode == 0, proc.stderr
    # the pending edit was committed first, then the restore: two commits, and no echo afterwards
    assert commit_count(layout.git_dir) == before + 2
    assert meta(layout)["op"] == "restore"
    assert "top.md" in git(layout.git_dir, "show", "--name-only", "--format=", "HEAD^")
    assert daemon.stop() == 0
    assert commit_count(layout.git_dir) == before + 2
    assert sorted(p.name for p in (layout.data / "notes").iterdir()) == ["a.md", "b.md"]
