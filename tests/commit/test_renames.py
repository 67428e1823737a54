"""A moved file or folder is a rename: paired before the mass-deletion guard counts anything."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.policy.guard import pair_renames
from tests.commit.test_pipeline import make_pipeline, trailer
from tests.conftest import DaemonProcess, Layout, SentEvents, commit_count, committer, git, tree_files, wait_for

Start = Callable[..., DaemonProcess]


def folder(layout: Layout, name: str, n: int, start: int = 0) -> set[str]:
    (layout.data / name).mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (layout.data / name / f"{i:04}.md").write_text(f"note {i}\n")
    return {f"{name}/{i:04}.md" for i in range(start, start + n)}


def test_pairs_prefer_the_same_file_name_within_one_content() -> None:
    deleted = {"a/x.md": "s1", "a/y.md": "s1", "a/z.md": "s2", "gone.md": "s3"}
    added = {"b/y.md": "s1", "b/x.md": "s1", "b/z2.md": "s2", "new.md": "s4"}
    assert pair_renames(added, deleted) == {"a/x.md": "b/x.md", "a/y.md": "b/y.md", "a/z.md": "b/z2.md"}
    assert pair_renames({}, deleted) == {} and pair_renames(added, {}) == {}


def test_a_moved_folder_is_one_commit_of_renames_and_no_hold(layout: Layout) -> None:
    old = folder(layout, "big", 500)
    p = make_pipeline(layout)
    p.reconcile()
    (layout.data / "big").rename(layout.data / "big2")
    result = p.commit(["big", "big2"])
    assert result.sha is not None and p.holds.hold is None
    assert tree_files(layout.git_dir) == {path.replace("big/", "big2/", 1) for path in old}
    meta = trailer(layout)
    assert (meta["renamed"], meta["added"], meta["deleted"]) == (500, 0, 0)


def test_a_rename_plus_real_deletions_holds_only_the_deletions(layout: Layout) -> None:
    moved = folder(layout, "big", 300)
    doomed = folder(layout, "old", 101)
    p = make_pipeline(layout)
    p.reconcile()
    (layout.data / "big").rename(layout.data / "big2")
    shutil.rmtree(layout.data / "old")
    result = p.commit(["big", "big2", "old"])
    assert result.sha is not None
    assert p.holds.hold is not None and p.holds.hold.paths == frozenset(doomed)
    files = tree_files(layout.git_dir)
    assert doomed <= files and not (moved & files)
    assert trailer(layout)["renamed"] == 300 and trailer(layout)["deleted"] == 0


def test_a_move_in_two_steps_is_taken_out_of_the_hold(layout: Layout, tmp_path: Path) -> None:
    """Moved out of the data directory in one batch (held: 150 deletions), back under another name later."""
    old = folder(layout, "kb", 150)
    p = make_pipeline(layout)
    p.reconcile()
    (layout.data / "kb").rename(tmp_path / "parked")
    assert p.commit(["kb"]).sha is None
    assert p.holds.hold is not None and len(p.holds.hold.paths) == 150
    (tmp_path / "parked").rename(layout.data / "archive")
    (layout.data / "other.md").write_text("unrelated")
    result = p.commit(["archive", "other.md"])
    assert result.sha is not None and p.holds.hold is None
    assert tree_files(layout.git_dir) == {path.replace("kb/", "archive/", 1) for path in old} | {"other.md"}
    assert trailer(layout)["renamed"] == 150


def test_renames_do_not_count_toward_max_batch_files(layout: Layout) -> None:
    folder(layout, "big", 500)
    p = make_pipeline(layout, max_batch_files="100")
    p.reconcile()
    before = commit_count(layout.git_dir)
    (layout.data / "big").rename(layout.data / "moved")
    for i in range(150):
        (layout.data / f"new{i}.md").write_text(f"fresh {i}")
    p.commit(["big", "moved", *(f"new{i}.md" for i in range(150))])
    assert commit_count(layout.git_dir) == before + 2  # 500 renames and 100 additions, then 50 additions
    first = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)", "HEAD~1"))
    assert first["renamed"] == 500 and first["part"] == "1/2"


@pytest.mark.integration
def test_the_daemon_commits_a_moved_folder_as_renames_and_log_shows_them(
    layout: Layout, start_daemon: Start, sent_events: SentEvents
) -> None:
    old = folder(layout, "big", 500)
    start_daemon(env=sent_events.env())
    before = commit_count(layout.git_dir)
    (layout.data / "big").rename(layout.data / "big2")
    want = {path.replace("big/", "big2/", 1) for path in old}
    wait_for(lambda: tree_files(layout.git_dir) == want, timeout=20, what="the move committed")
    assert commit_count(layout.git_dir) == before + 1
    assert trailer(layout)["renamed"] == 500
    moved = sent_events.wait("git_commit", count=2)[-1]  # the first commit, then the move
    assert len(moved["paths"]["renamed"]) == 500 and not sent_events("hold")  # a hold would have come before
    status = json.loads(committer("status", "--json", *layout.args()).stdout)
    assert status["held"] is None
    shown = committer("log", "-n", "1", *layout.args()).stdout
    assert "big/0000.md → big2/0000.md" in shown and "+495 more moved" in shown
    entry = json.loads(committer("log", "-n", "1", "--json", *layout.args()).stdout)
    assert ["big/0499.md", "big2/0499.md"] in entry["renamed"] and len(entry["renamed"]) == 500
