"""rclone bisync's conflict files: the names recognised, the fold on a real folder, and the commit step
folding them (no daemon)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from committer.commit import bisync
from committer.commit.bisync import Group, find, fold, original
from committer.commit.committer import Committer
from committer.commit.pulled import WINDOW, PullWrites
from committer.core import events, fsio
from committer.core.settings import load_settings
from committer.git.setup import open_repository
from committer.policy.filters import PathFilter
from committer.serve.access import Access
from committer.serve.pages import Pages
from tests.conftest import Layout, show, tree_files
from tests.serve.test_pages import fetch, perform, serving

WHEN = 1795404900.0  # 2026-11-23T03:35:00Z
COPY = "notes/n (conflict from bisync, 2026-11-23T03-35-00Z).md"


def test_rclone_conflict_names_of_every_version_are_recognised() -> None:
    assert original("n.md..path1") == ("n.md", True)
    assert original("n.md..path2") == ("n.md", True)
    assert original("n.md.conflict1") == ("n.md", False)
    assert original("n.md.conflict12") == ("n.md", False)
    assert original("n.conflict2.md") == ("n.md", False)  # --suffix-keep-extension
    for name in ("n.md", "n.md.path1", "n.md..path3", "n.md..path1.abc123.partial", "conflict1.md", "n.md~"):
        assert original(name) is None, name


def write(root: Path, name: str, text: str, mtime: float) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def groups(root: Path, candidates: list[str], in_head: set[str] = frozenset()) -> list[Group]:  # type: ignore[assignment]
    with fsio.Tree(root) as tree:
        return find(tree, candidates, lambda notes: set(notes) & in_head)


def folded(root: Path, group: Group, now: float = 2e9) -> bisync.Folded | None:
    with fsio.Tree(root) as tree:
        return fold(tree, group, WHEN, lambda _n: False, now=lambda: now)


def test_the_newer_side_keeps_the_note_path_and_the_other_becomes_a_conflict_copy(tmp_path: Path) -> None:
    write(tmp_path, "notes/n.md..path1", "from the local folder\n", 1000)
    write(tmp_path, "notes/n.md..path2", "from the remote\n", 2000)
    write(tmp_path, "notes/other.md", "other\n", 1000)
    found = groups(tmp_path, ["notes/n.md..path2", "notes/other.md"])
    assert found == [Group("notes/n.md", ["notes/n.md..path1", "notes/n.md..path2"], False)]
    done = folded(tmp_path, found[0])
    assert done is not None and done.copies == [COPY]
    assert (tmp_path / "notes/n.md").read_text() == "from the remote\n"
    assert (tmp_path / COPY).read_text() == "from the local folder\n"
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == sorted(["n.md", Path(COPY).name, "other.md"])
    assert (tmp_path / COPY).stat().st_mtime == 1000  # rclone sees the versions it knows, moved


def test_a_note_gone_from_its_path_beside_its_conflict_files_is_that_conflict_not_a_deletion(tmp_path: Path) -> None:
    """rclone renamed the note to its conflict names; a batch may hold only the note's going (the conflict
    files' coming is in the next one): it is the conflict, folded or waited for, never a deletion to commit."""
    write(tmp_path, "notes/n.md..path1", "from the local folder\n", 1000)
    write(tmp_path, "notes/other.md", "other\n", 1000)
    found = groups(tmp_path, ["notes/n.md", "notes/gone.md", "notes/other.md"])
    assert found == [Group("notes/n.md", ["notes/n.md..path1"], False)]
    assert groups(tmp_path, ["notes/gone.md"]) == []  # a deletion with no conflict file beside it stays one


def test_a_newer_conflict_file_takes_the_place_of_an_older_note(tmp_path: Path) -> None:
    write(tmp_path, "notes/n.md", "kept by rclone\n", 1000)
    write(tmp_path, "notes/n.md.conflict1", "newer\n", 3000)
    found = groups(tmp_path, ["notes/n.md.conflict1"])
    done = folded(tmp_path, found[0])
    assert done is not None
    assert (tmp_path / "notes/n.md").read_text() == "newer\n"
    assert (tmp_path / COPY).read_text() == "kept by rclone\n"


def test_the_same_content_on_both_sides_makes_no_copy(tmp_path: Path) -> None:
    write(tmp_path, "n.md..path1", "same\n", 1000)
    write(tmp_path, "n.md..path2", "same\n", 2000)
    done = folded(tmp_path, groups(tmp_path, ["n.md..path1"])[0])
    assert done is not None and done.copies == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.md"]


def test_one_side_deleted_by_the_user_leaves_the_other_at_the_note_path(tmp_path: Path) -> None:
    write(tmp_path, "n.md..path2", "the one kept\n", 1000)
    done = folded(tmp_path, groups(tmp_path, ["n.md..path2"])[0])
    assert done is not None and done.copies == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.md"]


def test_a_file_still_being_written_is_not_folded(tmp_path: Path) -> None:
    write(tmp_path, "n.md..path1", "half", 1000)
    write(tmp_path, "n.md..path2", "whole\n", 2000)
    group = groups(tmp_path, ["n.md..path1"])[0]
    assert folded(tmp_path, group, now=(tmp_path / "n.md..path1").stat().st_ctime + 0.1) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.md..path1", "n.md..path2"]


def test_numbered_names_count_only_for_a_known_note(tmp_path: Path) -> None:
    write(tmp_path, "report.conflict1", "a file of the user's\n", 1000)
    assert groups(tmp_path, ["report.conflict1"]) == []
    assert groups(tmp_path, ["report.conflict1"], in_head={"report"}) == [Group("report", ["report.conflict1"], False)]
    write(tmp_path, "report.conflict2", "its pair\n", 1000)
    assert len(groups(tmp_path, ["report.conflict1"])) == 1


@pytest.mark.parametrize("name", ["n.md..path1", "n.md.conflict1"])
def test_a_symlink_with_a_conflict_name_is_never_folded(tmp_path: Path, name: str) -> None:
    write(tmp_path, "n.md", "note\n", 1000)
    (tmp_path / name).symlink_to("n.md")
    assert groups(tmp_path, [name]) == []


# -- the commit step, in-process on a real repository ------------------------------------------------


def make(layout: Layout, told: list[events.Event], **flags: object) -> Committer:
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir), **flags})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    return Committer(settings, open_repository(settings, pfilter), pfilter, emit=told.append)


def test_a_fold_that_must_wait_holds_its_files_back_and_asks_to_be_tried_again(layout: Layout) -> None:
    write(layout.data, "n.md", "first\n", 1000)
    write(layout.data, "other.md", "other\n", 1000)
    told: list[events.Event] = []
    committer = make(layout, told)
    assert committer.reconcile().sha is not None
    os.rename(layout.data / "n.md", layout.data / "n.md..path2")
    write(layout.data, "n.md..path1", "from the local folder\n", 2000)
    write(layout.data, "other.md", "other, edited\n", 1000)
    beside = committer.step.beside
    waited: list[float] = []
    beside.pause = waited.append  # rclone still writing: the wait passes, the files are as fresh
    beside.config = dataclasses.replace(beside.config, settled=3600.0)
    committer.commit(["n.md", "n.md..path1", "n.md..path2", "other.md"])
    assert waited == [3600.0] and beside.fold_again == 3600.0 and beside.folding == {"n.md"}
    assert tree_files(layout.git_dir) == {"n.md", "other.md"}  # other.md went on; the note was not deleted
    assert show(layout.git_dir, "n.md") == b"first\n"
    beside.config = dataclasses.replace(beside.config, settled=0.0)
    result = committer.reconcile()  # what the daemon runs `fold_again` seconds later
    assert result.sha is not None and beside.folding == set() and beside.fold_again is None
    files = tree_files(layout.git_dir)
    copy = next(f for f in files if f.startswith("n (conflict from bisync, "))
    assert files == {"n.md", "other.md", copy}
    assert show(layout.git_dir, "n.md") == b"from the local folder\n"  # the newer
    assert show(layout.git_dir, copy) == b"first\n"
    assert [(e["path"], e["copy"]) for e in told if e["event"] == events.GIT_CONFLICT] == [("n.md", copy)]


def test_the_same_content_from_both_sides_is_folded_without_a_conflict(layout: Layout) -> None:
    write(layout.data, "n.md", "first\n", 1000)
    told: list[events.Event] = []
    committer = make(layout, told)
    committer.reconcile()
    os.rename(layout.data / "n.md", layout.data / "n.md..path1")
    write(layout.data, "n.md..path2", "first\n", 2000)
    assert committer.commit(["n.md", "n.md..path1", "n.md..path2"]).sha is None  # nothing changed in the end
    assert sorted(p.name for p in layout.data.iterdir()) == ["n.md"]
    assert [e for e in told if e["event"] == events.GIT_CONFLICT] == []


def test_the_history_pages_flag_the_fold_and_its_copy(layout: Layout) -> None:
    write(layout.data, "n.md", "first\n", 1000)
    committer = make(layout, [])
    committer.reconcile()
    os.rename(layout.data / "n.md", layout.data / "n.md..path1")
    write(layout.data, "n.md..path2", "from the remote side\n", 2000)
    sha = committer.commit(["n.md", "n.md..path1", "n.md..path2"]).sha
    assert sha is not None
    pages = Pages(committer.repo, Access("open"), dict, perform(committer))
    with serving(pages) as port:
        text = fetch(port, "/").text
    assert '<span class="flag">conflict copy</span>' in text
    assert 'class="added conflict-copy"' in text and "n (conflict from bisync, " in text
    assert "..path" not in text


def test_what_a_pull_wrote_is_watched_for_a_minute_only(layout: Layout) -> None:
    clock = [1000.0]
    watched = PullWrites(now=lambda: clock[0])
    watched.wrote("n.md", "a" * 40, "b" * 40)
    assert len(watched) == 1
    clock[0] += WINDOW + 1
    write(layout.data, "n.md", "anything\n", 1000)
    repo = make(layout, []).repo
    assert watched.check(repo, ["n.md"], lambda _n: False, layout.root / "scratch") == []
    assert len(watched) == 0
