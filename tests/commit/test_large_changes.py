"""A change too large for one fast-import process: written by several in turn, the branch moved once."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from committer.commit.committer import Committer
from committer.commit.step import Sizes
from committer.core.records import Spill
from committer.git.fastimport import FastImport
from tests.commit.test_pipeline import make_pipeline
from tests.conftest import Layout, commit_count, git, tree_files


def notes(layout: Layout, n: int, text: str = "v1") -> set[str]:
    for i in range(n):
        folder = layout.data / f"d{i % 7}"
        folder.mkdir(exist_ok=True)
        (folder / f"n{i:04}.md").write_text(f"{text} {i}\n")
    return {f"d{i % 7}/n{i:04}.md" for i in range(n)}


def pipeline_with(layout: Layout, **env: str) -> Committer:
    """The commit side with fast-import processes of 50 objects, so a few hundred files need several."""
    return make_pipeline(layout, Sizes(process_objects=50), **env)


def reflog(layout: Layout) -> list[str]:
    return git(layout.git_dir, "reflog", "show", "--format=%H", "refs/heads/main").split()


def test_spill_keeps_order_in_memory_and_on_disk(tmp_path: Path) -> None:
    with Spill(tmp_path, keep=3) as spill:
        for i in range(10):
            spill.append(b"r%d" % i + b"\0\n" * i)
        assert len(spill) == 10 and [r[:2] for r in spill] == [b"r%d" % i for i in range(10)]
        assert list(spill) == list(spill)  # iterable again
        spill.append(b"last")
        assert list(spill)[-1] == b"last"
    assert not list(tmp_path.iterdir())  # the temporary file was never linked


def test_a_first_commit_through_several_processes_moves_the_branch_once(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = notes(layout, 300)
    p = pipeline_with(layout, max_batch_files="40")
    started: list[int] = []
    real = FastImport.__init__

    def counting(self: FastImport, git_dir: Path) -> None:
        started.append(1)
        real(self, git_dir)

    monkeypatch.setattr(FastImport, "__init__", counting)
    result = p.reconcile()
    assert result.sha is not None and tree_files(layout.git_dir) == files
    assert commit_count(layout.git_dir) == 8  # 300 paths, 40 a commit
    assert len(reflog(layout)) == 1  # one move of the branch, after the last process
    assert git(layout.git_dir, "for-each-ref", "refs/committer/staging") == ""
    assert len(started) >= 12  # 300 blobs and 300 changed paths, at most 50 a process
    assert git(layout.git_dir, "--work-tree", str(layout.data), "status", "--porcelain") == ""
    git(layout.git_dir, "fsck", "--strict")


def test_a_large_change_with_a_mass_deletion_holds_the_deletions_and_commits_the_rest(
    layout: Layout, reconcile_way: str) -> None:
    notes(layout, 300)
    p = pipeline_with(layout, max_batch_files="40")
    p.reconcile()
    before = git(layout.git_dir, "rev-parse", "HEAD").strip()
    notes(layout, 300, text="v2")
    for i in range(7):
        shutil.rmtree(layout.data / f"d{i}") if i < 3 else None
    result = p.reconcile()
    assert result.sha is not None and p.holds.hold is not None and len(p.holds.hold.paths) > 100
    assert all(path in tree_files(layout.git_dir) for path in p.holds.hold.paths)  # nothing held was deleted
    assert git(layout.git_dir, "show", "HEAD:d5/n0005.md") == "v2 5\n"
    assert reflog(layout)[0] == result.sha and reflog(layout)[1] == before


def test_a_pass_cut_short_moves_nothing_and_the_next_one_commits_it(
    layout: Layout, monkeypatch: pytest.MonkeyPatch, reconcile_way: str) -> None:
    notes(layout, 120)
    p = pipeline_with(layout, max_batch_files="20")
    p.reconcile()
    head = git(layout.git_dir, "rev-parse", "HEAD").strip()
    notes(layout, 120, text="v2")
    real = FastImport.write_commit
    calls = []

    def failing(self: FastImport, *args: object, **kwargs: object) -> str:
        calls.append(1)
        if len(calls) == 4:
            raise OSError("disk went away")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(FastImport, "write_commit", failing)
    with pytest.raises(OSError):
        p.commit(["d0", "d1", "d2", "d3", "d4", "d5", "d6"])
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == head  # the branch never moved
    monkeypatch.setattr(FastImport, "write_commit", real)
    p.refresh_head()
    result = p.reconcile()
    assert result.sha is not None and git(layout.git_dir, "show", "HEAD:d3/n0003.md") == "v2 3\n"
    assert git(layout.git_dir, "for-each-ref", "refs/committer/staging") == ""
    parts = [json.loads(line)["part"] for line in git(
        layout.git_dir, "log", "--format=%(trailers:key=BM-Meta,valueonly)", f"{head}..HEAD").split("\n") if line]
    assert parts == [f"{n}/6" for n in range(6, 0, -1)]


def test_git_status_of_a_huge_change_is_folded_into_directories(layout: Layout) -> None:
    notes(layout, 70)
    p = make_pipeline(layout)
    p.reconcile()
    notes(layout, 70, text="v2")
    assert p.repo.changed_paths(most=20) == {f"d{i}" for i in range(7)}
    assert len(p.repo.changed_paths()) == 70


def test_the_reconcile_sees_what_batches_committed_since_the_index_was_written(
        layout: Layout, reconcile_way: str) -> None:
    """Batches move HEAD without touching the index: HEAD, the index and the disk are compared together."""
    (layout.data / "kept.md").write_text("k")
    (layout.data / "edited.md").write_text("v1")
    p = make_pipeline(layout)
    p.reconcile()  # the index is written here
    (layout.data / "added.md").write_text("a")
    (layout.data / "edited.md").write_text("v2")
    p.commit(["added.md", "edited.md"])  # a batch: HEAD moves, the index does not
    (layout.data / "added.md").unlink()
    os.utime(layout.data / "kept.md", ns=(1, 1))  # stat data changed, content not: no commit
    result = p.reconcile()
    assert result.sha is not None and tree_files(layout.git_dir) == {"kept.md", "edited.md"}
    assert git(layout.git_dir, "show", "HEAD:edited.md") == "v2"
    assert p.reconcile().sha is None
    assert git(layout.git_dir, "--work-tree", str(layout.data), "status", "--porcelain") == ""
