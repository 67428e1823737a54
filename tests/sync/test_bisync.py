"""Beside rclone bisync (the real one, between two local folders): its conflict renames become committer's
conflicts, and a pulled version overwritten right after the pull stays visible as a conflict copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, committer, git, show, tree_files, wait_for
from tests.sync.test_pull import Clone

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")]

FILLER = {f"filler/f{n}.md": f"filler {n}\n" for n in range(10)}  # bisync refuses when every file changed


def bisync(one: Path, two: Path, workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """One `rclone bisync` run between the two folders, as a timer would start it."""
    return subprocess.run(["rclone", "bisync", str(one), str(two), "--workdir", str(workdir), *extra],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "RCLONE_CONFIG": "/dev/null"})


def put(root: Path, files: dict[str, str], mtime: float | None = None) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if mtime is not None:
            os.utime(path, (mtime, mtime))


def status(env: dict[str, str]) -> dict[str, object]:
    return json.loads(committer("status", "--json", env=env).stdout)  # type: ignore[no-any-return]


def head_text(layout: Layout, path: str) -> str | None:
    return show(layout.git_dir, path).decode() if path in tree_files(layout.git_dir) else None


def test_a_bisync_conflict_is_folded_into_one_commit_and_reported(
    layout: Layout, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    local, work = tmp_path / "local", tmp_path / "bisync"
    put(layout.data, {**FILLER, "notes/n.md": "first\n"}, mtime=1_000_000)
    assert committer("init", env=layout.env).returncode == 0
    local.mkdir()
    assert bisync(local, layout.data, work, "--resync").returncode == 0
    daemon = start_daemon()
    put(local, {"notes/n.md": "edited in the local folder\n"}, mtime=1_000_100)
    put(layout.data, {"notes/n.md": "edited in the data directory\n"}, mtime=1_000_200)
    wait_for(lambda: head_text(layout, "notes/n.md") == "edited in the data directory\n", 15, "the edit committed")
    commits = int(git(layout.git_dir, "rev-list", "--count", "HEAD"))
    run = bisync(local, layout.data, work)
    assert run.returncode == 0 and "..path1" in run.stderr, run.stderr
    [event] = daemon.wait_event("git_conflict", where=lambda e: e.get("kind") == "bisync")
    copy = event["copy"]
    assert event["path"] == "notes/n.md" and copy.startswith("notes/n (conflict from bisync, ") and copy.endswith(".md")
    wait_for(lambda: copy in tree_files(layout.git_dir), 15, "the fold committed")
    files = tree_files(layout.git_dir)
    assert not any("..path" in f for f in files)
    assert head_text(layout, "notes/n.md") == "edited in the data directory\n"  # the newer one
    assert head_text(layout, copy) == "edited in the local folder\n"
    # One commit for the fold, and the note never left its path in any commit.
    assert int(git(layout.git_dir, "rev-list", "--count", "HEAD")) - commits == 1
    assert '"op":"conflict"' in git(layout.git_dir, "log", "-1", "--format=%B")  # flagged on the history pages
    listed = status(layout.env)["conflicts"]
    assert isinstance(listed, list)
    assert {"path": "notes/n.md", "copy": copy, "kind": "bisync"}.items() <= listed[-1].items()
    assert f"notes/n.md: the other version is in {copy!r}" in committer("status", env=layout.env).stdout
    # The next bisync run carries the fold to the local folder, and nothing moves after it.
    assert bisync(local, layout.data, work).returncode == 0
    assert (local / "notes/n.md").read_text() == "edited in the data directory\n"
    assert (local / copy).read_text() == "edited in the local folder\n"
    assert not list(local.rglob("*..path*"))
    before = git(layout.git_dir, "rev-parse", "HEAD")
    assert bisync(local, layout.data, work).returncode == 0
    daemon.stop()
    assert git(layout.git_dir, "rev-parse", "HEAD") == before


def test_keep_leaves_rclone_files_as_they_are_but_reports_them(
    layout: Layout, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    local, work = tmp_path / "local", tmp_path / "bisync"
    put(layout.data, {**FILLER, "n.md": "first\n"}, mtime=1_000_000)
    assert committer("init", env=layout.env).returncode == 0
    local.mkdir()
    assert bisync(local, layout.data, work, "--resync").returncode == 0
    daemon = start_daemon("--bisync-conflicts", "keep")
    put(local, {"n.md": "local\n"}, mtime=1_000_100)
    put(layout.data, {"n.md": "data\n"}, mtime=1_000_200)
    wait_for(lambda: head_text(layout, "n.md") == "data\n", 15, "the edit committed")
    assert bisync(local, layout.data, work).returncode == 0
    [event] = daemon.wait_event("git_conflict", where=lambda e: e.get("kind") == "bisync")
    assert {event["path"], event["copy"]} == {"n.md..path1", "n.md..path2"}
    wait_for(lambda: {"n.md..path1", "n.md..path2"} <= tree_files(layout.git_dir), 15, "rclone's files committed")


def test_a_pulled_version_overwritten_at_once_stays_as_a_conflict_copy(
    layout: Layout, mirror: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    base = "---\ntitle: N\npermalink: n\n---\n" + "".join(f"line {n}\n" for n in range(1, 11))
    env = {**layout.env, "COMMITTER_REMOTE": f"file://{mirror}"}
    put(layout.data, {"n.md": base, "m.md": base})
    assert committer("init", env=env).returncode == 0
    daemon = start_daemon(env=env)
    wait_for(lambda: git(mirror, "rev-parse", "main", check=False).strip() == git(layout.git_dir, "rev-parse", "HEAD")
             .strip(), 15, "the first push")
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote = base.replace("line 2\n", "line 2, changed on the remote\n")
    clone.commit({"n.md": remote, "m.md": remote})
    local = base.replace("line 9\n", "line 9, changed in the local folder\n")
    assert committer("pull", env=env).returncode == 0
    assert (layout.data / "n.md").read_text() == remote
    # A sync tool that listed the folder before the pull now copies its side's version over the pulled one;
    # an editor that had read the pulled version saves its own change on top of it: an ordinary edit.
    both = remote + "more\n"
    put(layout.data, {"n.md": local, "m.md": both})
    [event] = daemon.wait_event("git_conflict", where=lambda e: e.get("kind") == "pull_overwritten")
    assert event["path"] == "n.md" and event["copy"].startswith("n (conflict from main, ")
    wait_for(lambda: event["copy"] in tree_files(layout.git_dir), 15, "the copy committed")
    assert head_text(layout, "n.md") == local
    copy = head_text(layout, event["copy"])  # the pulled version, a note of its own (its frontmatter title)
    assert copy is not None and copy.startswith("---\ntitle: N (conflict from main, ")
    assert copy.split("---\n", 2)[2] == remote.split("---\n", 2)[2]
    assert head_text(layout, "m.md") == both
    assert len(daemon.events("git_conflict")) == 1
