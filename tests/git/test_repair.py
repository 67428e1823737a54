"""Start-up check and repair: damaged objects healed from the reflog or the remote, or the git dir moved aside."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, committer, git, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def loose(git_dir: Path, sha: str) -> Path:
    return git_dir / "objects" / sha[:2] / sha[2:]


def two_commits(layout: Layout, *extra: str) -> tuple[str, str]:
    (layout.data / "a.md").write_text("a")
    assert committer("run", "--once", *layout.args(), *extra).returncode == 0
    first = git(layout.git_dir, "rev-parse", "HEAD").strip()
    (layout.data / "b.md").write_text("b")
    assert committer("run", "--once", *layout.args(), *extra).returncode == 0
    loosen(layout.git_dir)
    return first, git(layout.git_dir, "rev-parse", "HEAD").strip()


def loosen(git_dir: Path) -> None:
    """Every object as a loose file (each commit is a pack of its own), so one can be damaged alone."""
    for pack in (git_dir / "objects" / "pack").glob("pack-*.pack"):
        moved = git_dir.parent / pack.name  # out of the repository: unpacked objects are new to it
        pack.rename(moved)
        for other in pack.parent.glob(f"{pack.stem}.*"):
            other.unlink()
        with moved.open("rb") as stream:
            subprocess.run(["git", f"--git-dir={git_dir}", "unpack-objects", "-q"], stdin=stream, check=True)
        moved.unlink()


def fsck_clean(git_dir: Path) -> bool:
    return subprocess.run(["git", f"--git-dir={git_dir}", "fsck", "--full", "--no-dangling"],
                          capture_output=True).returncode == 0


def test_empty_objects_and_crash_leftovers_are_removed(layout: Layout, start_daemon: Start) -> None:
    two_commits(layout)
    empty = layout.git_dir / "objects" / "ab" / ("c" * 38)
    empty.parent.mkdir(exist_ok=True)
    empty.write_bytes(b"")
    (layout.git_dir / "fast_import_crash_4242").write_text("crash report")
    daemon = start_daemon()
    assert daemon.events("empty_object_removed") and not empty.exists()
    assert not (layout.git_dir / "fast_import_crash_4242").exists()
    assert daemon.events("repo_checked")[0]["result"] == "ok"


def test_a_missing_tree_is_healed_from_the_reflog_and_the_data_directory(
    layout: Layout, start_daemon: Start
) -> None:
    first, second = two_commits(layout)
    healed_from_the_reflog(layout, start_daemon, first, second)


def healed_from_the_reflog(layout: Layout, start_daemon: Start, first: str, second: str) -> DaemonProcess:
    """The second commit's tree deleted: the next start moves the branch back to the first commit and the
    data directory is committed on top; the running daemon."""
    loose(layout.git_dir, git(layout.git_dir, "rev-parse", f"{second}^{{tree}}").strip()).unlink()
    daemon = start_daemon()
    repaired = daemon.events("repo_repaired")
    assert repaired and repaired[0]["head"] == first
    wait_for(lambda: tree_files(layout.git_dir) == {"a.md", "b.md"}, what="data directory committed again")
    assert fsck_clean(layout.git_dir)
    return daemon


def test_missing_objects_are_fetched_back_from_the_remote(layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    _, second = two_commits(layout, "--remote", f"file://{mirror}")
    loose(layout.git_dir, second).unlink()  # the newest commit itself
    daemon = start_daemon("--remote", f"file://{mirror}")
    repaired = daemon.events("repo_repaired")
    assert repaired and "remote" in repaired[0]["how"]
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == second
    assert fsck_clean(layout.git_dir)


def test_a_repository_beyond_repair_is_moved_aside_never_deleted(layout: Layout, start_daemon: Start) -> None:
    two_commits(layout)
    for path in (layout.git_dir / "objects").glob("??/*"):
        path.write_bytes(b"garbage")
    daemon = start_daemon()
    assert daemon.events("repo_moved_aside")
    aside = list(layout.git_dir.parent.glob("knowledge.git.broken-*"))
    assert len(aside) == 1 and (aside[0] / "HEAD").is_file()
    wait_for(lambda: tree_files(layout.git_dir) == {"a.md", "b.md"}, what="a new repository from the data directory")
    assert fsck_clean(layout.git_dir)
    assert daemon.stop() == 0
