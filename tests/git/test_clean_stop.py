"""The start-up check skipped after a clean stop: only when the repository is exactly as that stop left it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Layout, committer, git, tree_files, wait_for
from tests.git.test_repair import healed_from_the_reflog, loosen
from tests.podman import json_lines

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def stamp(git_dir: Path) -> Path:
    return git_dir / "committer" / "clean-stop.json"


def events(text: str, name: str) -> list[dict[str, Any]]:
    return [event for event in json_lines(text) if event.get("event") == name]


def once(layout: Layout, git_dir: Path | None = None) -> list[dict[str, Any]]:
    """`run --once` as a process: its repo_checked events."""
    where = ["--data-dir", str(layout.data), "--git-dir", str(git_dir or layout.git_dir)]
    proc = committer("run", "--once", *where)
    assert proc.returncode == 0, proc.stderr
    return events(proc.stdout + proc.stderr, "repo_checked")


def two_clean_stops(layout: Layout) -> tuple[str, str]:
    """Two commits by `run --once`, each ending in a clean stop: (first, second)."""
    (layout.data / "a.md").write_text("a")
    assert once(layout) == []  # a new repository: nothing to check
    first = git(layout.git_dir, "rev-parse", "HEAD").strip()
    (layout.data / "b.md").write_text("b")
    checked = once(layout)
    assert checked[0]["check"] == "skipped" and checked[0]["clean_stop"] == "matched"
    assert stamp(layout.git_dir).is_file()
    return first, git(layout.git_dir, "rev-parse", "HEAD").strip()


def test_a_start_after_a_clean_stop_skips_the_check_and_says_when_that_stop_was(
    layout: Layout, start_daemon: Start
) -> None:
    two_clean_stops(layout)
    daemon = start_daemon()
    checked = daemon.events("repo_checked")[0]
    assert checked["result"] == "ok" and checked["check"] == "skipped" and checked["clean_stop_at"]
    assert not stamp(layout.git_dir).exists()  # taken away while the daemon runs
    (layout.data / "c.md").write_text("c")
    wait_for(lambda: "c.md" in tree_files(layout.git_dir), what="c.md committed")
    assert daemon.stop() == 0
    assert stamp(layout.git_dir).is_file()
    names = [event.get("event") for event in daemon.events()]
    assert names[-2:] == ["clean_stop_recorded", "daemon_stop"], names  # daemon_stop stays the last line
    assert once(layout)[0]["check"] == "skipped"


def test_a_start_after_kill_9_runs_the_check(layout: Layout, start_daemon: Start) -> None:
    two_clean_stops(layout)
    start_daemon().kill()
    assert not stamp(layout.git_dir).exists()
    checked = once(layout)[0]
    assert checked["check"] == "fsck" and checked["clean_stop"] == "missing"


def test_init_leaves_the_stamp_a_start_then_trusts(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a")
    assert committer("init", *layout.args()).returncode == 0
    assert once(layout)[0]["check"] == "skipped"


def _ref_moved(git_dir: Path, first: str) -> None:
    git(git_dir, "update-ref", "refs/heads/main", first)


def _packed_refs_edited(git_dir: Path, first: str) -> None:
    with (git_dir / "packed-refs").open("a") as out:
        out.write(f"{first} refs/tags/by-hand\n")


def _loose_object_added(git_dir: Path, first: str) -> None:
    subprocess.run(["git", f"--git-dir={git_dir}", "hash-object", "-w", "--stdin"], input=b"new", check=True)


def _repacked(git_dir: Path, first: str) -> None:
    git(git_dir, "repack", "-a", "-d", "-q")


@pytest.mark.parametrize("touch", [_ref_moved, _packed_refs_edited, _loose_object_added, _repacked])
def test_a_repository_touched_after_the_clean_stop_is_checked(
    layout: Layout, touch: Callable[[Path, str], None]
) -> None:
    first, _ = two_clean_stops(layout)
    touch(layout.git_dir, first)
    checked = once(layout)[0]
    assert checked["check"] == "fsck" and checked["clean_stop"] == "changed"


def test_a_pack_deleted_after_the_clean_stop_is_found_and_repaired(layout: Layout, start_daemon: Start) -> None:
    first, second = two_clean_stops(layout)
    newest = max((layout.git_dir / "objects" / "pack").glob("pack-*.pack"), key=lambda p: p.stat().st_mtime_ns)
    assert git(layout.git_dir, "cat-file", "-t", second).strip() == "commit"
    for part in newest.parent.glob(f"{newest.stem}.*"):
        part.unlink()
    daemon = start_daemon()
    repaired = daemon.events("repo_repaired")
    assert repaired and repaired[0]["head"] == first
    wait_for(lambda: tree_files(layout.git_dir) == {"a.md", "b.md"}, what="data directory committed again")
    # the branch is whole; the reflog still names the lost commit, which a full fsck would report
    assert subprocess.run(["git", f"--git-dir={layout.git_dir}", "fsck", "--no-dangling", "HEAD"]).returncode == 0
    assert daemon.stop() == 0


def test_an_object_deleted_after_the_clean_stop_is_found_and_repaired(layout: Layout, start_daemon: Start) -> None:
    first, second = two_clean_stops(layout)
    loosen(layout.git_dir)
    assert once(layout)[0]["check"] == "fsck"  # the packs changed: checked, then a stamp of the loose objects
    assert stamp(layout.git_dir).is_file()
    assert healed_from_the_reflog(layout, start_daemon, first, second).stop() == 0


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"version": 1}', b'{"version": 99, "repo": {}}'])
def test_a_corrupt_stamp_is_ignored_and_the_check_runs(layout: Layout, content: bytes) -> None:
    two_clean_stops(layout)
    stamp(layout.git_dir).write_bytes(content)
    checked = once(layout)[0]
    assert checked["check"] == "fsck" and checked["clean_stop"] == "unreadable"


def test_a_stamp_of_another_git_dir_is_not_trusted(layout: Layout) -> None:
    two_clean_stops(layout)
    copy = layout.git_dir.with_name("copy.git")
    shutil.copytree(layout.git_dir, copy, copy_function=shutil.copy2)  # times kept, other files
    checked = once(layout, copy)[0]
    assert checked["check"] == "fsck" and checked["clean_stop"] == "changed"


def test_each_project_of_a_per_project_layout_leaves_its_own_stamp(layout: Layout, tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    env = {**layout.env, "COMMITTER_LAYOUT": "per-project", "COMMITTER_GIT_DIR": str(repos)}
    for name in ("alpha", "beta"):
        (layout.data / name).mkdir()
        (layout.data / name / f"{name}.md").write_text(name)
    for _ in range(2):
        proc = committer("run", "--once", "--data-dir", str(layout.data), env=env)
        assert proc.returncode == 0, proc.stderr
    assert all(stamp(repos / f"{name}.git").is_file() for name in ("alpha", "beta"))
    checked = events(proc.stdout + proc.stderr, "repo_checked")
    assert sorted(e.get("project") for e in checked) == ["alpha", "beta"]
    assert {e["check"] for e in checked} == {"skipped"}


def test_the_time_of_the_last_whole_check_is_carried_and_a_day_old_one_is_checked_again(layout: Layout) -> None:
    """Skips do not renew the trust: the stamp keeps the time of the last whole check, and once that is a day
    old the next start checks (damage done by something else while a daemon ran is found within a day)."""
    two_clean_stops(layout)
    first = json.loads(stamp(layout.git_dir).read_text())["checked_at"]
    (layout.data / "c.md").write_text("c")
    assert once(layout)[0]["check"] == "skipped"
    data = json.loads(stamp(layout.git_dir).read_text())
    assert data["checked_at"] == first
    data["checked_at"] = "2020-01-01T00:00:00Z"
    stamp(layout.git_dir).write_text(json.dumps(data))
    checked = once(layout)[0]
    assert checked["check"] == "fsck" and checked["clean_stop"] == "expired"
    assert json.loads(stamp(layout.git_dir).read_text())["checked_at"] != "2020-01-01T00:00:00Z"  # renewed


def test_packs_kept_elsewhere_through_links_are_always_checked(layout: Layout, tmp_path: Path) -> None:
    """A pack that is a link (moved to another disk) could vanish with that disk while its link looks the same."""
    two_clean_stops(layout)
    elsewhere = tmp_path / "other-disk"
    elsewhere.mkdir()
    pack = next((layout.git_dir / "objects" / "pack").glob("*.pack"))
    shutil.move(pack, elsewhere / pack.name)
    pack.symlink_to(elsewhere / pack.name)
    for _ in range(2):
        checked = once(layout)[0]
        assert checked["check"] == "fsck"
