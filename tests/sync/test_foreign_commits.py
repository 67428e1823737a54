"""Commits and tags another writer made are data: a message that is not UTF-8, a date git cannot read,
a tag whose name holds odd bytes or a line separator never stop status, a push or the daemon."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Layout, committer, git

pytestmark = pytest.mark.integration
ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def raw_git(git_dir: Path, *args: bytes, input: bytes | None = None) -> bytes:
    proc = subprocess.run([b"git", b"--git-dir=" + bytes(git_dir), *args], input=input, capture_output=True,
                          env=ENV, check=True)
    return proc.stdout.strip()


def foreign_commit(git_dir: Path, message: bytes, committer_line: bytes) -> str:
    """A commit on main made with plumbing as an old import or another tool might: same tree as HEAD."""
    tree = raw_git(git_dir, b"rev-parse", b"HEAD^{tree}")
    parent = raw_git(git_dir, b"rev-parse", b"HEAD")
    body = (b"tree " + tree + b"\nparent " + parent + b"\nauthor o <o@x> 1700000000 +0100\n"
            + committer_line + b"\n\n" + message)
    sha = raw_git(git_dir, b"hash-object", b"-t", b"commit", b"-w", b"--literally", b"--stdin", input=body)
    raw_git(git_dir, b"update-ref", b"refs/heads/main", sha)
    return sha.decode()


def test_pending_commits_of_other_writers_never_stop_status_push_or_the_daemon(layout: Layout,
                                                                               mirror: Path) -> None:
    (layout.data / "a.md").write_text("a\n")
    assert committer("init", *layout.args()).returncode == 0
    foreign_commit(layout.git_dir, b"R\xe9sum\xe9 notes, Latin-1 without an encoding header\n",
                   b"committer o <o@x> 1700000000 +0100")
    last = foreign_commit(layout.git_dir, b"a date git cannot read\n", b"committer <> -5 -0000")
    raw_git(layout.git_dir, b"update-ref", b"refs/tags/caf\xe9", b"HEAD")
    raw_git(layout.git_dir, b"update-ref", "refs/tags/line\u2028sep".encode(), b"HEAD")
    remote = ["--remote", f"file://{mirror}"]
    status = committer("status", "--json", *layout.args(), *remote)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pending_commits"] == 3
    text = committer("status", *layout.args(), *remote)
    assert text.returncode == 0 and "Traceback" not in text.stderr, text.stderr
    proc = committer("run", "--once", *layout.args(), *remote)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert git(mirror, "rev-parse", "main").strip() == last
    tags = subprocess.run(["git", f"--git-dir={mirror}", "for-each-ref", "--format=%(refname)", "refs/tags/"],
                          capture_output=True, env=ENV, check=True).stdout
    assert set(tags.split(b"\n")) >= {b"refs/tags/caf\xe9", "refs/tags/line\u2028sep".encode()}
    listed = committer("snapshot", "--list", "--json", *layout.args())
    assert listed.returncode == 0, listed.stderr
    again = committer("status", "--json", *layout.args(), *remote)
    assert again.returncode == 0 and json.loads(again.stdout)["pending_commits"] == 0, again.stderr
