"""Safety rules on a real repository: mass-deletion hold, untracking, size limits, secrets."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from committer.commit.committer import Committer
from committer.core import events
from committer.core.settings import load_settings
from committer.git.setup import open_repository
from committer.policy.filters import PathFilter
from tests.conftest import Layout, git, show, tree_files


def make(layout: Layout, emit: events.Emit = events.nothing, **flags: object) -> Committer:
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir), **flags})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    return Committer(settings, open_repository(settings, pfilter), pfilter, emit=emit)


def holds(sent: list[events.Event], action: str) -> list[events.Event]:
    """The hold events out with this action (set, released)."""
    return [e for e in sent if e["event"] == events.HOLD and e["action"] == action]


def fill(layout: Layout, n: int, folder: str = "notes") -> list[str]:
    (layout.data / folder).mkdir(parents=True, exist_ok=True)
    names = [f"{folder}/n{i:03}.md" for i in range(n)]
    for name in names:
        (layout.data / name).write_text(name)
    return names


def last_meta(layout: Layout) -> dict[str, object]:
    value = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))
    assert isinstance(value, dict)
    return value


def test_150_deletions_are_held_and_the_rest_of_the_batch_committed(layout: Layout) -> None:
    names = fill(layout, 150)
    sent: list[events.Event] = []
    p = make(layout, sent.append)
    p.reconcile(op="init")
    shutil.rmtree(layout.data / "notes")
    (layout.data / "survivor.md").write_text("still here")
    result = p.commit(["notes", "survivor.md"])
    p.commit(["notes"])  # the same deletions again: no second event
    assert result.sha is not None and result.changes.counts.deleted == 0
    assert tree_files(layout.git_dir) == {*names, "survivor.md"}
    held = holds(sent, events.SET)
    assert len(held) == 1 and held[0]["count"] == 150 and held[0]["reason"] == "max_delete"
    assert held[0]["batch"] == result.batch and held[0]["paths"] == sorted(f"notes/n{i:03}.md" for i in range(150))
    assert p.holds.hold is not None and p.holds.hold.status()["count"] == 150
    confirmed = p.confirm_deletes()
    assert confirmed is not None and confirmed.changes.counts.deleted == 150
    assert tree_files(layout.git_dir) == {"survivor.md"}
    assert last_meta(layout)["op"] == "confirm-deletes" and p.holds.hold is None


def test_up_to_max_delete_deletions_are_committed(layout: Layout) -> None:
    fill(layout, 100)
    (layout.data / "keep.md").write_text("the directory is not empty afterwards")
    p = make(layout)
    p.reconcile(op="init")
    shutil.rmtree(layout.data / "notes")
    assert p.commit(["notes"]).changes.counts.deleted == 100
    assert p.holds.hold is None


def test_while_held_smaller_deletions_join_the_hold(layout: Layout) -> None:
    fill(layout, 120, "a")
    fill(layout, 5, "b")
    p = make(layout)
    p.reconcile(op="init")
    shutil.rmtree(layout.data / "a")
    p.commit(["a"])
    shutil.rmtree(layout.data / "b")
    p.commit(["b"])
    assert len(tree_files(layout.git_dir)) == 125
    assert p.holds.hold is not None and len(p.holds.hold.paths) == 125


def test_the_hold_clears_itself_when_the_files_come_back(layout: Layout, tmp_path: Path) -> None:
    fill(layout, 150)
    sent: list[events.Event] = []
    p = make(layout, sent.append)
    p.reconcile(op="init")
    shutil.move(str(layout.data / "notes"), str(tmp_path / "away"))
    p.commit(["notes"])
    assert p.holds.hold is not None and not holds(sent, events.RELEASED)
    shutil.move(str(tmp_path / "away"), str(layout.data / "notes"))
    assert p.commit(["notes"]).sha is None
    released = holds(sent, events.RELEASED)
    assert p.holds.hold is None and len(released) == 1 and released[0]["count"] == 150


def test_an_emptied_data_directory_holds_even_one_deletion(layout: Layout) -> None:
    (layout.data / "only.md").write_text("x")
    (layout.data / ".DS_Store").write_text("litter does not count")
    p = make(layout)
    p.reconcile(op="init")
    (layout.data / "only.md").unlink()
    p.reconcile()
    assert tree_files(layout.git_dir) == {"only.md"}
    assert p.holds.hold is not None and p.holds.hold.reason == "data_dir_empty"


def test_a_missing_data_directory_deletes_nothing(layout: Layout) -> None:
    fill(layout, 3)
    p = make(layout)
    p.reconcile(op="init")
    shutil.rmtree(layout.data)
    p.commit(["notes"])
    assert len(tree_files(layout.git_dir)) == 3
    assert p.holds.hold is not None and p.holds.hold.reason == "data_dir_missing"


def test_files_that_become_ignored_leave_the_tree_but_not_the_disk(layout: Layout) -> None:
    (layout.data / "build").mkdir()
    (layout.data / "build" / "out.bin").write_text("artifact")
    (layout.data / "keep.md").write_text("k")
    p = make(layout)
    p.reconcile(op="init")
    (layout.data / ".bmignore").write_text("build/\n")
    p.pfilter.refresh()
    p.reconcile()
    assert tree_files(layout.git_dir) == {"keep.md", ".bmignore"}
    assert (layout.data / "build" / "out.bin").exists()
    ops = git(layout.git_dir, "log", "--format=%(trailers:key=BM-Meta,valueonly)").split()
    assert any(json.loads(op).get("op") == "untrack" for op in ops)


def test_untracking_more_than_max_delete_is_held(layout: Layout) -> None:
    fill(layout, 20, "logs")
    p = make(layout, max_delete=10)
    p.reconcile(op="init")
    (layout.data / ".bmignore").write_text("logs/\n")
    p.pfilter.refresh()
    p.reconcile()
    assert p.holds.hold is not None and p.holds.hold.reason == "ignore_rules" and len(p.holds.hold.paths) == 20
    assert len([f for f in tree_files(layout.git_dir) if f.startswith("logs/")]) == 20
    p.confirm_deletes()
    assert not [f for f in tree_files(layout.git_dir) if f.startswith("logs/")]
    assert (layout.data / "logs" / "n000.md").exists()


def test_a_gitignore_inside_the_data_directory_is_content_not_rules(layout: Layout) -> None:
    (layout.data / ".gitignore").write_text("*.md\n")
    (layout.data / "note.md").write_text("a note")
    p = make(layout)
    p.reconcile(op="init")
    assert tree_files(layout.git_dir) == {".gitignore", "note.md"}
    (layout.data / "later.md").write_text("found by the reconcile scan too")
    p.reconcile()
    assert "later.md" in tree_files(layout.git_dir)


def sparse(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        handle.truncate(size)


def test_without_lfs_files_at_the_threshold_are_held_and_the_rest_committed(layout: Layout) -> None:
    sparse(layout.data / "video.bin", 11_000_000)
    (layout.data / "small.md").write_text("fine")
    p = make(layout, lfs_threshold="10MB")
    p.step.limits = type(p.step.limits)(lfs_threshold=10_000_000, max_file_size=100_000_000, lfs_store=None)
    p.reconcile(op="init")
    assert tree_files(layout.git_dir) == {"small.md"}
    assert p.held.reasons["video.bin"].startswith("11.0 MB is at or above lfs_threshold")


def test_a_file_above_max_file_size_is_held_when_lfs_is_off(layout: Layout) -> None:
    sparse(layout.data / "huge.iso", 101_000_000)
    (layout.data / "small.md").write_text("fine")
    p = make(layout, lfs_threshold=0)
    p.reconcile(op="init")
    assert tree_files(layout.git_dir) == {"small.md"}
    assert "above max_file_size" in p.held.reasons["huge.iso"]


def test_a_held_file_keeps_its_last_committed_version(layout: Layout) -> None:
    (layout.data / "notes.md").write_text("harmless v1")
    sent: list[events.Event] = []
    p = make(layout, sent.append)
    p.reconcile(op="init")
    token = "ghp_" + "Ab1Cd2Ef3Gh4" * 3
    (layout.data / "notes.md").write_text(f"oops: {token}\n")
    with capture_logs() as logs:
        p.commit(["notes.md"])
    assert show(layout.git_dir, "notes.md") == b"harmless v1"
    [held] = holds(sent, events.SET)
    assert held["paths"] == ["notes.md"] and "secret" in held["reason"]
    assert token not in json.dumps(sent) and token not in json.dumps(logs)  # neither told nor logged
    (layout.data / "notes.md").write_text("token removed\n")
    p.commit(["notes.md"])
    assert show(layout.git_dir, "notes.md") == b"token removed\n"
    assert "notes.md" not in p.held


@pytest.mark.parametrize("name", ["config.yml", "deploy/.secrets.txt"])
def test_secrets_in_new_files_are_never_committed(layout: Layout, name: str) -> None:
    path = layout.data / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("aws_access_key_id = AKIA" + "Q7ZL3XW9PMB2RT5K" + "\n")
    (layout.data / "ok.md").write_text("the word token in prose is fine")
    p = make(layout)
    p.reconcile(op="init")
    assert tree_files(layout.git_dir) == {"ok.md"}
    assert name in p.held
    os.unlink(path)
