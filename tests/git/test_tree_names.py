"""Trees written through a private index (the merge of a pull) keep any name byte-exact."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from committer.git.objects import MODE_FILE, TreeEntry
from committer.git.repo import GitRepo
from committer.git.trees import write_tree

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def test_write_tree_takes_names_with_newlines_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "r.git", tmp_path / "data", "main")
    repo.init()
    sha = subprocess.run(["git", f"--git-dir={repo.git_dir}", "hash-object", "-w", "--stdin"], input=b"x\n",
                         capture_output=True, check=True).stdout.decode().strip()
    names = [b"\x01bad\xff.md", b"new\nline.md", b"dir\xe9/in.md", b"back\\slash.md", b"plain.md"]
    tree = write_tree(repo, EMPTY_TREE, {os.fsdecode(n): TreeEntry(MODE_FILE, sha) for n in names})
    listed = subprocess.run(["git", f"--git-dir={repo.git_dir}", "ls-tree", "-r", "-z", "--name-only", tree],
                            capture_output=True, check=True).stdout
    assert sorted(p for p in listed.split(b"\0") if p) == sorted(names)
    # and an override of None removes such a name again
    smaller = write_tree(repo, tree, {os.fsdecode(b"\x01bad\xff.md"): None, "new\nline.md": None})
    listed = subprocess.run(["git", f"--git-dir={repo.git_dir}", "ls-tree", "-r", "-z", "--name-only", smaller],
                            capture_output=True, check=True).stdout
    assert sorted(p for p in listed.split(b"\0") if p) == sorted([b"dir\xe9/in.md", b"back\\slash.md", b"plain.md"])
