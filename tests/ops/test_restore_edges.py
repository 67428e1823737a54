"""Restore edges: a path that cannot be written makes the command fail after doing the rest; a name that
looks like committer's escaped form is taken as typed when the revision being restored holds it."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import Layout, committer

pytestmark = pytest.mark.integration


def run_once(layout: Layout) -> None:
    proc = committer("run", "--once", *layout.args())
    assert proc.returncode == 0, proc.stderr


def test_a_restore_that_cannot_write_a_path_says_so_and_exits_1(layout: Layout) -> None:
    top = layout.data / "top"
    top.mkdir()
    (top / "x").write_text("a file at first\n")
    (top / "k.md").write_text("k1\n")
    assert committer("init", *layout.args()).returncode == 0
    (top / "x").unlink()
    (top / "x").mkdir()
    (top / "x" / "c.md").write_text("c\n")
    (top / "k.md").write_text("k2\n")
    run_once(layout)
    (top / "x" / "u.md").write_text("in no commit\n")  # keeps the folder top/x where the file would go
    proc = committer("restore", "top", "--to", "HEAD~1", *layout.args())
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "could not restore top/x" in proc.stdout
    assert "except 1 path(s) that could not be written" in proc.stdout
    assert (top / "x" / "u.md").read_text() == "in no commit\n"
    assert (top / "k.md").read_text() == "k1\n"  # the rest is restored


def test_a_name_that_looks_escaped_is_restored_as_typed_when_the_revision_holds_it(layout: Layout) -> None:
    literal = layout.data / "bad\\xff.md"  # a backslash, an x, two letters: not an escape
    byte = os.fsencode(layout.data) + b"/bad\xff.md"
    literal.write_text("the literal name, v1\n")
    with open(byte, "wb") as handle:
        handle.write(b"the byte name, v1\n")
    assert committer("init", *layout.args()).returncode == 0
    literal.unlink()
    run_once(layout)
    proc = committer("restore", *layout.args(), "--to", "HEAD~1", "--", "bad\\xff.md")
    assert proc.returncode == 0, proc.stderr
    assert literal.read_text() == "the literal name, v1\n"
    with open(byte, "rb") as handle:
        assert handle.read() == b"the byte name, v1\n"  # untouched
    listing = subprocess.run(["git", f"--git-dir={layout.git_dir}", "ls-tree", "-z", "--name-only", "HEAD"],
                             capture_output=True, check=True).stdout
    assert b"bad\\xff.md" in listing.split(b"\0")
