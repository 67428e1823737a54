"""A moved file or folder is a rename: paired before the mass-deletion guard counts anything."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.commit.step import Sizes
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


def test_renames_count_toward_max_batch_files(layout: Layout) -> None:
    """A move counts once: a huge move is commits of at most max_batch_files renames, moves first, each
    with both sides of its renames, so no commit carries a half-moved file."""
    old = folder(layout, "big", 500)
    p = make_pipeline(layout, max_batch_files="100")
    p.reconcile()
    before = commit_count(layout.git_dir)
    (layout.data / "big").rename(layout.data / "moved")
    for i in range(150):
        (layout.data / f"new{i}.md").write_text(f"fresh {i}")
    result = p.commit(["big", "moved", *(f"new{i}.md" for i in range(150))])
    assert commit_count(layout.git_dir) == before + 7  # 500 renames and 150 additions, 100 a commit
    metas = [trailer(layout, f"HEAD~{n}") for n in range(6, -1, -1)]
    assert [m["part"] for m in metas] == [f"{n}/7" for n in range(1, 8)]
    assert [m["renamed"] for m in metas] == [100] * 5 + [0, 0]
    assert [m["added"] for m in metas] == [0] * 5 + [100, 50]
    assert not any(m["deleted"] for m in metas)
    counts = result.changes.counts
    assert (counts.renamed, counts.added, counts.deleted) == (500, 150, 0)
    assert tree_files(layout.git_dir) == {path.replace("big/", "moved/", 1) for path in old} | {
        f"new{i}.md" for i in range(150)}
    for n in range(7):  # every commit holds each note once, under one name or the other
        files = tree_files(layout.git_dir, f"HEAD~{n}")
        assert len({f.rpartition("/")[2] for f in files if f.startswith(("big/", "moved/"))}) == 500


def test_pairing_with_records_on_disk_pairs_as_in_memory(layout: Layout, tmp_path: Path) -> None:
    """The same moves (same names, edits, identical contents in many files, a real deletion) paired with
    every record list on disk and sorted in runs of a few records, and in memory: the same commits."""
    for i in range(60):
        folder(layout, f"f{i % 4}", 1, start=i)
        (layout.data / f"same{i}.md").write_text("identical\n")
    (layout.data / "doomed.md").write_text("bye\n")
    (layout.data / "edited.md").write_text("".join(f"line {n} of a note\n" for n in range(40)))
    shutil.copytree(layout.data, tmp_path / "start")
    results = []
    for keep in (3, 20_000):
        shutil.rmtree(layout.data)
        shutil.copytree(tmp_path / "start", layout.data)
        shutil.rmtree(layout.git_dir, ignore_errors=True)
        p = make_pipeline(layout, Sizes(records_in_memory=keep), max_batch_files="25")
        p.reconcile()
        (layout.data / "f1").rename(layout.data / "g1")
        (layout.data / "f2").rename(layout.data / "f2-moved")
        for i in range(0, 60, 3):
            (layout.data / f"same{i}.md").rename(layout.data / "f3" / f"copy{i}.md")
        (layout.data / "doomed.md").unlink()
        edited = (layout.data / "edited.md").read_text() + "one more line\n"
        (layout.data / "edited.md").unlink()
        (layout.data / "f0" / "edited-moved.md").write_text(edited)
        result = p.commit([""])
        results.append((
            result.changes.counts, sorted(result.changes.renames.items()),
            [[o.path, n.path] for o, n in result.changes.moved_pairs()],
            git(layout.git_dir, "log", "--format=%T %s", "main").splitlines(),
        ))
        assert result.changes.moved == 30 + 20
        result.changes.close()
    assert results[0][0].renamed == 51 and results[0][0].deleted == 1
    assert results[0] == results[1]


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
