"""git reads nothing from the data directory for its own behaviour: a .gitattributes there (filters,
line endings, ident, encodings) and a .gitignore there are content, committed byte-exact, and steer
nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.commit.committer import Committer
from committer.core.settings import load_settings
from committer.git import lfs
from committer.git.attributes import NEUTRAL
from committer.git.setup import open_repository
from committer.policy.filters import PathFilter
from tests.conftest import DaemonProcess, Layout, committer, git, show, tree_files, wait_for

Start = Callable[..., DaemonProcess]

HOSTILE = (b"* filter=lfs diff=lfs merge=lfs -text\n* text eol=crlf\n* ident\n"
           b"* working-tree-encoding=UTF-16\n[attr]evil filter=lfs\n*.md evil\n")
FILES = {
    ".gitattributes": HOSTILE,
    ".gitignore": b"*\n!.gitignore\n",
    ".gitmodules": b'[submodule "notes"]\n\tpath = notes\n\turl = ../elsewhere.git\n',
    "notes/a.md": b"line one\nline two\n$Id$\n",
    "notes/crlf.txt": b"windows\r\nline\r\n",
    "notes/blob.bin": bytes(range(256)) * 4,
    "notes/latin1.txt": "caf\u00e9\n".encode("latin-1"),
}


def make(layout: Layout) -> Committer:
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir)})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    return Committer(settings, open_repository(settings, pfilter), pfilter)


def fill(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def lfs_objects(git_dir: Path) -> list[str]:
    store = git_dir / "lfs" / "objects"
    return [str(p) for p in store.rglob("*") if p.is_file()] if store.exists() else []


def assert_byte_exact(layout: Layout, files: dict[str, bytes]) -> None:
    assert tree_files(layout.git_dir) == set(files)
    for rel, data in files.items():
        assert show(layout.git_dir, rel) == data, rel


@pytest.mark.skipif(not lfs.available(), reason="git-lfs is not installed (scripts/system-deps.sh)")
@pytest.mark.usefixtures("reconcile_way")
def test_a_hostile_gitattributes_and_gitignore_change_nothing(layout: Layout) -> None:
    fill(layout.data, FILES)
    p = make(layout)
    p.reconcile(op="init")
    assert_byte_exact(layout, FILES)
    # edits found by the reconcile's git status (or committer's walk), where attributes would apply
    changed = {**FILES, "notes/a.md": b"line one\nline 2\n$Id$\n", "notes/new.md": b"new\n"}
    fill(layout.data, changed)
    p.reconcile()
    assert_byte_exact(layout, changed)
    assert lfs_objects(layout.git_dir) == []  # git-lfs clean never ran on the data directory's files
    status = git(layout.git_dir, f"--work-tree={layout.data}", "status", "--porcelain", "--ignored")
    assert status == "", status  # git agrees: nothing differs, nothing hidden


def test_the_neutral_attributes_are_written_and_repaired_at_every_start(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a")
    make(layout)
    attributes = layout.git_dir / "info" / "attributes"
    assert attributes.read_text().startswith(NEUTRAL)
    attributes.write_text("* filter=lfs\n")  # tampered with, or written by an older version
    make(layout)
    assert attributes.read_text().startswith(NEUTRAL)
    config = git(layout.git_dir, "config", "--local", "--list")
    assert "core.autocrlf=false" in config and "core.safecrlf=false" in config


def test_lfs_paths_keep_the_neutral_line_first(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a")
    make(layout)
    lfs.write_attributes(layout.git_dir, ["big.bin"])
    text = (layout.git_dir / "info" / "attributes").read_text()
    assert text.startswith(NEUTRAL) and "/big.bin filter=lfs" in text


@pytest.mark.integration
def test_the_daemon_commits_a_hostile_data_directory_byte_exact(layout: Layout, start_daemon: Start) -> None:
    fill(layout.data, FILES)
    assert committer("init", *layout.args()).returncode == 0
    start_daemon()
    more = {**FILES, "notes/b.md": b"b\nwith $Id$\n"}
    fill(layout.data, more)
    wait_for(lambda: "notes/b.md" in tree_files(layout.git_dir), what="b.md committed")
    assert_byte_exact(layout, more)
    assert lfs_objects(layout.git_dir) == [] or not lfs.available()
    assert not [n for n in os.listdir(layout.data) if n not in {".gitattributes", ".gitignore", ".gitmodules", "notes"}]
