"""A whole listing of a large tree goes in parts (groups of its top-level entries): the same entries, in the
same order, as one `ls-tree -r`, whatever the names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from committer.git import repo as gitrepo
from committer.git.repo import GitRepo

NAMES = ["-n", ":(glob)x", "*", "a", "a b", "a.md", "a-b", "a0", "b", "ä", "z", "zz.md", "[x]", "\\", "~", "e\u0301"]


def make(tmp_path: Path) -> GitRepo:
    work, git_dir = tmp_path / "work", tmp_path / "repo.git"
    work.mkdir()
    for name in NAMES:
        (work / name).mkdir()
        (work / name / "in.md").write_text(name)
        (work / name / "sub").mkdir()
        (work / name / "sub" / "deep.md").write_text(name)
        (work / f"{name}.txt").write_text(name)
    (work.joinpath(os.fsdecode(b"raw\xff")).write_text("not UTF-8"))
    env = {**os.environ, "GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work), "GIT_CONFIG_GLOBAL": os.devnull}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], check=True, env=env, cwd=work)
    return GitRepo(git_dir, work, "main")


def test_a_listing_in_parts_is_the_same_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make(tmp_path)
    head = repo.head()
    assert head is not None
    with repo.ls_tree_stream(head, [""]) as listed:
        whole = list(listed)
    assert len(whole) == 3 * len(NAMES) + 1
    monkeypatch.setattr(gitrepo, "_LISTING_IN_PARTS_ABOVE", 10)
    assert 1 < len(repo._listing_parts(head)) <= gitrepo._LISTING_PARTS
    with repo.ls_tree_stream(head, [""]) as listed:
        assert list(listed) == whole
    with repo.ls_tree_stream(head, [f"n{i}" for i in range(gitrepo._FULL_LISTING_ABOVE + 1)] + ["a"]) as listed:
        assert [path for path, _ in listed] == ["a/in.md", "a/sub/deep.md"]
    with repo.ls_tree_stream(head, [""]) as listed:
        assert next(listed) == whole[0]  # left early: the running ls-tree is stopped
    assert not repo.runner._running
