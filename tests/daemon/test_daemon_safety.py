"""Safety rules with the daemon as a process: holds, confirm-deletes, a vanishing data directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Layout, committer, git, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def status(layout: Layout) -> dict[str, Any]:
    out = committer("status", "--json", *layout.args()).stdout
    value = json.loads(out)
    assert isinstance(value, dict)
    return value


def populate(layout: Layout, n: int) -> set[str]:
    (layout.data / "kb").mkdir()
    for i in range(n):
        (layout.data / "kb" / f"{i:03}.md").write_text(str(i))
    return {f"kb/{i:03}.md" for i in range(n)}


def test_a_mass_deletion_is_held_shown_and_confirmed(layout: Layout, start_daemon: Start) -> None:
    names = populate(layout, 150)
    daemon = start_daemon()
    shutil.rmtree(layout.data / "kb")
    (layout.data / "new.md").write_text("committed despite the hold")
    wait_for(lambda: "new.md" in tree_files(layout.git_dir), what="the other change committed")
    daemon.wait_event("hold")
    assert tree_files(layout.git_dir) == {*names, "new.md"}
    held = wait_for(lambda: status(layout)["held"], what="hold in status")
    assert held["reason"] == "max_delete" and held["count"] == 150 and held["since"].endswith("Z")
    assert "HOLD" in committer("status", *layout.args()).stdout
    proc = committer("confirm-deletes", *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert "committed the held deletion of 150 file(s)" in proc.stdout
    assert tree_files(layout.git_dir) == {"new.md"}
    meta = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))
    assert meta["op"] == "confirm-deletes" and meta["deleted"] == 150
    assert status(layout)["held"] is None
    assert len(daemon.events("hold")) == 1


def test_an_emptied_data_directory_is_held_and_confirmable_without_a_daemon(
    layout: Layout, start_daemon: Start
) -> None:
    names = populate(layout, 3)
    daemon = start_daemon()
    shutil.rmtree(layout.data / "kb")
    daemon.wait_event("hold", where=lambda e: e["reason"] == "data_dir_empty")
    assert daemon.stop() == 0
    assert tree_files(layout.git_dir) == names
    assert status(layout)["held"]["reason"] == "data_dir_empty"
    assert committer("confirm-deletes", *layout.args()).returncode == 0
    assert tree_files(layout.git_dir) == set()
    assert committer("confirm-deletes", *layout.args()).stdout.strip() == "nothing is held"


def test_a_removed_data_directory_is_waited_for(layout: Layout, start_daemon: Start) -> None:
    names = populate(layout, 3)
    daemon = start_daemon()
    shutil.rmtree(layout.data)
    daemon.wait_event("data_dir_missing", timeout=20)
    assert daemon.proc.poll() is None
    layout.data.mkdir()
    populate(layout, 3)  # the same files come back, as after a remount
    (layout.data / "kb" / "back.md").write_text("after the remount")
    daemon.wait_event("data_dir_back", timeout=20)
    wait_for(lambda: "kb/back.md" in tree_files(layout.git_dir), timeout=20, what="commits resumed")
    assert names <= tree_files(layout.git_dir)


needs_lfs = pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")


def _clone_and_pull(remote: str, into: Path) -> Path:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_LFS_SKIP_SMUDGE": "1"}
    subprocess.run(["git", "clone", "-q", remote, str(into)], check=True, env=env, capture_output=True)
    subprocess.run(["git", "-C", str(into), "lfs", "install", "--local"], check=True, env=env,
                   capture_output=True)
    subprocess.run(["git", "-C", str(into), "lfs", "pull"], check=True, env=env, capture_output=True)
    return into


@needs_lfs
def test_large_files_go_through_lfs_and_come_back_from_a_fresh_clone(
    layout: Layout, start_daemon: Start, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    daemon = start_daemon("--remote", f"file://{mirror}", env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    big = os.urandom(11_000_000)
    (layout.data / "media").mkdir()
    (layout.data / "media" / "talk.mp4").write_bytes(big)
    with (layout.data / "media" / "disk.img").open("wb") as handle:
        handle.truncate(101_000_000)  # sparse: over GitHub's hard limit, fine through LFS
    (layout.data / "notes.md").write_text("small")
    wanted = {"media/talk.mp4", "media/disk.img", "notes.md"}
    wait_for(lambda: wanted <= tree_files(mirror, "refs/heads/main"), timeout=60, what="LFS push")
    daemon.wait_event("lfs_stored")
    assert daemon.stop() == 0
    show_pointer = ["git", f"--git-dir={layout.git_dir}", "cat-file", "blob", "HEAD:media/talk.mp4"]
    pointer = subprocess.run(show_pointer, capture_output=True, check=True).stdout
    assert pointer.startswith(b"version https://git-lfs.github.com/spec/v1")
    # after the index resync, git status sees the LFS files clean: they are not re-read on every scan
    assert git(layout.git_dir, f"--work-tree={layout.data}", "status", "--porcelain") == ""
    clone = _clone_and_pull(f"file://{mirror}", tmp_path / "clone")
    assert (clone / "media" / "talk.mp4").read_bytes() == big
    assert (clone / "media" / "disk.img").stat().st_size == 101_000_000


def test_without_lfs_a_101mb_file_is_held_and_never_blocks_the_push(
    layout: Layout, start_daemon: Start, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    daemon = start_daemon("--remote", f"file://{mirror}",
                          env={"COMMITTER_PUSH_INTERVAL": "200ms", "COMMITTER_LFS_THRESHOLD": "0"})
    with (layout.data / "disk.img").open("wb") as handle:
        handle.truncate(101_000_000)
    (layout.data / "notes.md").write_text("pushed anyway")
    wait_for(lambda: tree_files(mirror, "refs/heads/main") == {"notes.md"}, timeout=30, what="push")
    skip = daemon.wait_event("skip", where=lambda e: e["path"] == "disk.img")[0]
    assert "max_file_size" in skip["reason"]
    assert {"path": "disk.img", "reason": skip["reason"]} in status(layout)["held_files"]


def test_status_without_flags_shows_the_running_daemons_remote(
    layout: Layout, start_daemon: Start, mirror: Path
) -> None:
    (layout.data / "a.md").write_text("a")
    start_daemon("--remote", f"file://{mirror}")
    wait_for(lambda: git(mirror, "rev-parse", "-q", "--verify", "main", check=False).strip(), what="first push")
    shown = status(layout)
    assert shown["remote"] == f"file://{mirror}"
    assert shown["settings"]["remote"] == {"value": f"file://{mirror}", "source": "flag",
                                           "from": "the running daemon"}
    assert shown["settings"]["debounce"]["value"] == 0.15 and shown["pending_commits"] == 0
    human = committer("status", *layout.args()).stdout
    assert f"file://{mirror} (the running daemon's, from flag)" in human


def test_fifos_and_sockets_are_listed_in_held_files(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "a.md").write_text("a")
    os.mkfifo(layout.data / "before.fifo")
    assert committer("init", *layout.args()).returncode == 0
    daemon = start_daemon()
    os.mkfifo(layout.data / "while.fifo")
    (layout.data / "b.md").write_text("b")
    wait_for(lambda: "b.md" in tree_files(layout.git_dir), what="b.md committed")

    def listed() -> set[str]:
        return {item["path"] for item in status(layout)["held_files"]}

    wait_for(lambda: {"before.fifo", "while.fifo"} <= listed(), what="both FIFOs in held_files")
    assert all("FIFO" in item["reason"] for item in status(layout)["held_files"])
    (layout.data / "while.fifo").unlink()
    daemon.stop()
    assert listed() == {"before.fifo"}
    assert tree_files(layout.git_dir) == {"a.md", "b.md"}


def test_a_hard_link_edited_through_its_other_name_is_committed_at_shutdown(
    layout: Layout, start_daemon: Start, tmp_path: Path
) -> None:
    """inotify reports the name that was written; the shutdown reconcile catches the other one."""
    (layout.data / "note.md").write_text("v1")
    os.link(layout.data / "note.md", tmp_path / "other-name.md")  # outside: no event for the data directory
    daemon = start_daemon()
    with (tmp_path / "other-name.md").open("w") as handle:
        handle.write("v2 through the other name")
    assert daemon.stop() == 0
    assert git(layout.git_dir, "show", "HEAD:note.md") == "v2 through the other name"


def test_put_back_and_allow_secret_go_through_the_running_daemon(layout: Layout, start_daemon: Start) -> None:
    names = populate(layout, 6)
    daemon = start_daemon(env={"COMMITTER_MAX_DELETE": "3"})
    wait_for(lambda: tree_files(layout.git_dir) == names, what="the notes committed")
    for name in sorted(names)[:5]:
        (layout.data / name).unlink()
    daemon.wait_event("hold")
    wait_for(lambda: status(layout)["held"], what="hold in status")
    proc = committer("put-back", *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert "put back 5 file(s) from the last commit" in proc.stdout
    assert {p.relative_to(layout.data).as_posix() for p in (layout.data / "kb").iterdir()} == names
    wait_for(lambda: status(layout)["held"] is None, what="the hold released")
    token = "ghp_" + "Zq8Lm3Rt7Vx1Bn5Kc9Hd2Fg6Js4Pw0Ye8Ua3M"[:36]
    (layout.data / "kb" / "example.md").write_text(f"an example:\n{token}\n")
    wait_for(lambda: any(f["path"] == "kb/example.md" for f in status(layout)["held_files"]), what="held")
    proc = committer("allow-secret", "kb/example.md", *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert "kb/example.md" in tree_files(layout.git_dir)
    meta = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))
    assert meta["allowed_secret"] == "kb/example.md"
    assert daemon.events("secret_allowed")[0]["by"] == "cli"
