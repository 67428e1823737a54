"""HEAD's entries of a batch's files through one long-running cat-file: the same answers as ls-tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from committer.commit.headlookup import HeadLookup
from committer.git.repo import GitRepo


def make(tmp_path: Path) -> GitRepo:
    work, git_dir = tmp_path / "work", tmp_path / "repo.git"
    (work / "a" / "b").mkdir(parents=True)
    (work / "a" / "b" / "note.md").write_text("note")
    (work / "a" / "run.sh").write_text("#!/bin/sh\n")
    (work / "a" / "run.sh").chmod(0o755)
    os.symlink("b/note.md", work / "a" / "link")
    (work / "top.md").write_text("top")
    (work / "file").write_text("a file, not a folder")
    env = {**os.environ, "GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(work), "GIT_CONFIG_GLOBAL": os.devnull}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], check=True, env=env, cwd=work)
    return GitRepo(git_dir, work, "main")


def test_entries_match_ls_tree(tmp_path: Path) -> None:
    repo = make(tmp_path)
    head = repo.head()
    assert head is not None
    lookup = HeadLookup(repo)
    paths = ["top.md", "a/run.sh", "a/link", "a/b/note.md", "a/new.md", "gone/x.md", "file/below.md"]
    with repo.ls_tree_stream(head, paths) as listed:
        expected = list(listed)
    assert lookup.entries(head, paths) == expected
    assert [e.mode for _, e in expected] == ["100644", "120000", "100755", "100644"]
    assert lookup.entries(head, paths) == expected  # the process is kept and answers again
    lookup.close()
    assert lookup.entries(head, ["top.md"]) == [p for p in expected if p[0] == "top.md"]


def test_a_folder_or_many_paths_are_left_to_ls_tree(tmp_path: Path) -> None:
    repo = make(tmp_path)
    head = repo.head()
    assert head is not None
    lookup = HeadLookup(repo)
    assert lookup.entries(head, ["a/b"]) is None
    assert lookup.entries(head, [""]) is None
    assert lookup.entries(head, [f"n{i}.md" for i in range(100)]) is None
    assert lookup.entries("0" * 40, ["top.md"]) is None
    lookup.close()
