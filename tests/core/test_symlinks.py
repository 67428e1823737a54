"""Symlinks never carry history or writes outside the data directory: stored as links, never followed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.core.fsio import LinkInPath, Tree
from tests.commit.test_pipeline import make_pipeline
from tests.conftest import DaemonProcess, Layout, committer, git, show, tree_files, wait_for

Start = Callable[..., DaemonProcess]
SECRET = b"OUTSIDE-THE-DATA-DIRECTORY-7f3a9c"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the data directory holding files a symlink could reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "passwd").write_bytes(SECRET + b" passwd\n")
    (folder / "hosts").write_bytes(SECRET + b" hosts\n")
    return folder


@pytest.fixture(params=["openat2", "component walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of reaching a path: the kernel's openat2, and the O_NOFOLLOW walk of older kernels."""
    from committer.core import beneath

    if request.param == "component walk":
        monkeypatch.setattr(beneath._kernel, "syscall", None)
    return str(request.param)


def all_objects(git_dir: Path) -> bytes:
    """The content of every object in the repository, reachable or not."""
    listing = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
        capture_output=True, check=True,
    ).stdout
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"], input=listing, capture_output=True, check=True,
    ).stdout


def assert_never_read(*git_dirs: Path) -> None:
    for git_dir in git_dirs:
        assert SECRET not in all_objects(git_dir), f"outside content in {git_dir}"


def replace_by_link(layout: Layout, rel: str, target: Path) -> None:
    shutil.rmtree(layout.data / rel)
    (layout.data / rel).symlink_to(target)


def test_tree_reaches_nothing_through_a_symlink(tmp_path: Path, outside: Path, resolution: str) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f").write_text("inside")
    (root / "etc").symlink_to(outside)
    (root / "real" / "up").symlink_to("..")
    with Tree(root) as tree:
        assert tree.read("real/f") == b"inside"
        for rel in ("etc/passwd", "real/up/real/f", "../outside/passwd", "real/../../outside/passwd"):
            with pytest.raises(FileNotFoundError):
                tree.read(rel)
        with pytest.raises(LinkInPath) as caught:
            tree.open_dir("etc")
        assert caught.value.link == "etc"
        assert tree.first_link("etc/deeper/x") == "etc" and tree.first_link("real/f") is None
        assert tree.readlink("etc") == os.fsencode(outside)
        with pytest.raises(LinkInPath):
            tree.write("etc/passwd", b"overwritten")
        with pytest.raises(LinkInPath):
            tree.remove("etc/hosts")
    assert (outside / "passwd").read_bytes() == SECRET + b" passwd\n"
    assert (outside / "hosts").exists()


def test_a_directory_replaced_by_a_symlink_is_committed_as_the_link(
    layout: Layout, outside: Path, resolution: str, reconcile_way: str) -> None:
    (layout.data / "etc").mkdir()
    (layout.data / "etc" / "passwd").write_text("the data directory's own passwd notes")
    (layout.data / "keep.md").write_text("k")
    p = make_pipeline(layout)
    p.reconcile()
    replace_by_link(layout, "etc", outside)
    result = p.commit(["etc", "etc/passwd"])
    assert result.sha is not None
    assert tree_files(layout.git_dir) == {"etc", "keep.md"}
    assert git(layout.git_dir, "ls-tree", "HEAD", "etc").split()[0] == "120000"
    assert show(layout.git_dir, "etc") == os.fsencode(outside)
    assert result.changes.counts.deleted == 1 and result.changes.counts.added == 1
    # Later edits of the outside file are never committed.
    (outside / "passwd").write_bytes(SECRET + b" edited\n")
    assert p.commit(["etc/passwd", "etc"]).sha is None
    assert p.reconcile().sha is None
    assert_never_read(layout.git_dir)


def test_backfill_and_reconcile_never_follow_a_link(layout: Layout, outside: Path, reconcile_way: str) -> None:
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "a.md").write_text("a")
    (layout.data / "etc").symlink_to(outside)
    (layout.data / "notes" / "secret.md").symlink_to(outside / "passwd")
    (layout.data / "loop").symlink_to(".")
    p = make_pipeline(layout)
    p.reconcile()
    assert tree_files(layout.git_dir) == {"notes/a.md", "etc", "notes/secret.md", "loop"}
    assert show(layout.git_dir, "notes/secret.md") == os.fsencode(outside / "passwd")
    assert_never_read(layout.git_dir)


@pytest.mark.integration
def test_run_once_after_the_swap_commits_the_link_and_pushes_no_outside_byte(
    layout: Layout, outside: Path, mirror: Path
) -> None:
    (layout.data / "etc").mkdir()
    (layout.data / "etc" / "passwd").write_text("notes")
    remote = ["--remote", f"file://{mirror}"]
    assert committer("run", "--once", *layout.args(), *remote).returncode == 0
    replace_by_link(layout, "etc", outside)
    proc = committer("run", "--once", *layout.args(), *remote)
    assert proc.returncode == 0, proc.stderr
    assert tree_files(mirror) == {"etc"} and git(mirror, "ls-tree", "HEAD", "etc").split()[0] == "120000"
    assert_never_read(layout.git_dir, mirror)


@pytest.mark.integration
def test_the_running_daemon_commits_the_link_and_pushes_no_outside_byte(
    layout: Layout, outside: Path, mirror: Path, start_daemon: Start
) -> None:
    (layout.data / "etc").mkdir()
    (layout.data / "etc" / "passwd").write_text("notes")
    (layout.data / "etc" / "hosts").write_text("more notes")
    daemon = start_daemon("--remote", f"file://{mirror}")
    replace_by_link(layout, "etc", outside)
    wait_for(lambda: tree_files(layout.git_dir) == {"etc"}, what="the link committed")
    wait_for(lambda: tree_files(mirror) == {"etc"}, what="the link pushed")
    (outside / "passwd").write_bytes(SECRET + b" edited while running\n")
    (outside / "new").write_bytes(SECRET + b" new\n")
    assert daemon.stop() == 0
    assert tree_files(layout.git_dir) == {"etc"}
    assert_never_read(layout.git_dir, mirror)


def test_a_link_swapped_in_during_a_burst_never_lets_outside_content_in(
    layout: Layout, outside: Path, resolution: str
) -> None:
    """Race: a directory and a symlink trade places over and over while files are written and committed."""
    p = make_pipeline(layout)
    p.reconcile()
    stop = threading.Event()
    rounds = [0]

    def swapper() -> None:
        d, moved = layout.data / "d", layout.data / "d.moved"
        while not stop.is_set():
            d.mkdir(exist_ok=True)
            for i in range(5):
                (d / f"passwd{i}").write_text(f"inside {rounds[0]} {i}")
            d.rename(moved)
            d.symlink_to(outside)
            d.unlink()
            moved.rename(d)
            shutil.rmtree(d)
            d.symlink_to(outside)
            d.unlink()
            rounds[0] += 1

    thread = threading.Thread(target=swapper)
    thread.start()
    # Until both sides have done enough, however the machine shares its time between them (a fixed
    # duration gives a loaded machine too few rounds); the deadline only bounds a failure.
    deadline = time.monotonic() + 120
    commits = 0
    try:
        while rounds[0] <= 20 or commits <= 5:
            assert thread.is_alive(), "the swapper stopped"
            assert time.monotonic() < deadline, f"{rounds[0]} swaps and {commits} commits after 120 s"
            result = p.commit(["d", *(f"d/passwd{i}" for i in range(5)), "d/hosts", "d.moved"])
            commits += result.sha is not None
            p.reconcile()
    finally:
        stop.set()
        thread.join()
    assert_never_read(layout.git_dir)
    p.reconcile()
    assert not any(path.startswith("d/") and "passwd" not in path for path in tree_files(layout.git_dir))


def test_bmmeta_and_bmignore_that_are_links_are_not_read(layout: Layout, outside: Path) -> None:
    (outside / "meta.json").write_text('{"secret": "OUTSIDE-THE-DATA-DIRECTORY-7f3a9c"}')
    (outside / "ignore").write_text("*.md\n")
    (layout.data / ".bmmeta").symlink_to(outside / "meta.json")
    (layout.data / ".bmignore").symlink_to(outside / "ignore")
    (layout.data / "a.md").write_text("a")
    p = make_pipeline(layout)
    p.reconcile()
    assert "a.md" in tree_files(layout.git_dir)  # the linked ignore rules were not read
    assert_never_read(layout.git_dir)


# -- writes --------------------------------------------------------------------------------------------


@pytest.fixture
def linked_cfg(layout: Layout, tmp_path: Path) -> tuple[Path, str]:
    """cfg/important.conf committed, then cfg replaced by a link to an outside folder holding its own file."""
    (layout.data / "cfg").mkdir()
    (layout.data / "cfg" / "important.conf").write_text("v1 inside")
    assert committer("init", *layout.args()).returncode == 0
    first = git(layout.git_dir, "rev-parse", "HEAD").strip()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "important.conf").write_text("outside, must not change")
    shutil.rmtree(layout.data / "cfg")
    (layout.data / "cfg").symlink_to(elsewhere)
    return elsewhere, first


@pytest.mark.integration
def test_restore_through_a_symlinked_folder_is_refused(layout: Layout, linked_cfg: tuple[Path, str]) -> None:
    elsewhere, first = linked_cfg
    for target in ("cfg/important.conf", "cfg", "."):
        proc = committer("restore", target, "--to", first, *layout.args())
        assert proc.returncode == 1, (target, proc.stdout, proc.stderr)
        lines = [line for line in proc.stderr.splitlines() if not line.startswith("{")]  # log events are JSON
        assert len(lines) == 1 and "cfg is a symbolic link" in lines[0] and "rm cfg" in lines[0], lines
        assert "Traceback" not in proc.stderr
    assert (elsewhere / "important.conf").read_text() == "outside, must not change"
    assert (layout.data / "cfg").is_symlink()
    # The documented way back: remove the link, then restore.
    (layout.data / "cfg").unlink()
    proc = committer("restore", "cfg", "--to", first, *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "cfg" / "important.conf").read_text() == "v1 inside"


@pytest.mark.integration
def test_restore_through_a_symlinked_folder_is_refused_by_the_daemon_too(
    layout: Layout, linked_cfg: tuple[Path, str], start_daemon: Start
) -> None:
    elsewhere, first = linked_cfg
    start_daemon()
    proc = committer("restore", "cfg/important.conf", "--to", first, *layout.args())
    assert proc.returncode == 1 and "cfg is a symbolic link" in proc.stderr, proc.stderr
    assert len([line for line in proc.stderr.splitlines() if not line.startswith("{")]) == 1
    assert (elsewhere / "important.conf").read_text() == "outside, must not change"


@pytest.mark.integration
def test_a_pull_never_writes_or_deletes_through_a_symlinked_folder(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    from tests.sync.test_pull import Clone

    (layout.data / "cfg").mkdir()
    (layout.data / "cfg" / "important.conf").write_text("v1")
    (layout.data / "cfg" / "old.conf").write_text("old")
    remote = ["--remote", f"file://{mirror}"]
    assert committer("init", *layout.args(), *remote).returncode == 0
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.commit({"cfg/important.conf": "v2 from the remote", "cfg/old.conf": None, "cfg/new.conf": "new"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "important.conf").write_text("v1")  # the same content: the pull would take it as unchanged
    (elsewhere / "old.conf").write_text("old")
    shutil.rmtree(layout.data / "cfg")
    (layout.data / "cfg").symlink_to(elsewhere)
    committer("pull", *layout.args(), *remote)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["important.conf", "old.conf"]
    assert (elsewhere / "important.conf").read_text() == "v1"


@pytest.mark.integration
def test_init_from_remote_refuses_a_data_directory_holding_a_link(
    layout: Layout, mirror: Path, tmp_path: Path, outside: Path
) -> None:
    source = tmp_path / "source"
    (source / "cfg").mkdir(parents=True)
    (source / "cfg" / "passwd").write_text("from the remote")
    other = Layout(tmp_path, source, tmp_path / "source.git")
    assert committer("init", *other.args(), "--remote", f"file://{mirror}").returncode == 0
    (layout.data / "cfg").symlink_to(outside)
    proc = committer("init", "--from-remote", *layout.args(), "--remote", f"file://{mirror}")
    assert proc.returncode == 1 and "not empty" in proc.stderr, proc.stderr
    assert (outside / "passwd").read_bytes() == SECRET + b" passwd\n"
