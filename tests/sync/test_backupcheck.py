"""`committer verify`: the remote copy fetched into a temporary repository proves restorable, or the check
says why not: an object removed behind our back, an LFS object missing on the storage host, a rewritten
branch, a remote that is down."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from committer.core.settings import Settings
from committer.git import lfs
from committer.git.repo import GitRepo
from committer.sync import backupcheck
from tests.conftest import Layout, committer
from tests.git.test_lfs_http import storage_saw_no_token
from tests.gitserver import GitHTTPServer, git, git_server

__all__ = ["git_server"]

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not lfs.available(), reason="git-lfs is not installed")]

BIG = os.urandom(5000)  # above the LFS threshold these tests set


@pytest.fixture
def pushed(git_server: GitHTTPServer, layout: Layout, tmp_path: Path) -> Settings:
    """A repository with a note and an LFS file, pushed to the loopback server; the settings to verify it."""
    (layout.data / "note.md").write_text("a note\n")
    (layout.data / "big.bin").write_bytes(BIG)
    token_file = tmp_path / "token"
    token_file.write_text(git_server.token)
    env = {**layout.env, "COMMITTER_REMOTE": git_server.url, "COMMITTER_TOKEN_FILE": str(token_file),
           "COMMITTER_LFS_THRESHOLD": "1000"}
    done = committer("init", env=env)
    assert done.returncode == 0, done.stderr
    assert git_server.storage.objects, "the LFS object was not uploaded"
    return Settings(data_dir=layout.data, git_dir=layout.git_dir, remote=git_server.url, token_file=token_file,
                    push_timeout=20.0)


def check(settings: Settings) -> backupcheck.Verified:
    return backupcheck.verify(settings, GitRepo.of(settings))


def test_a_good_remote_verifies_with_its_lfs_objects_and_leaves_nothing_behind(
    pushed: Settings, git_server: GitHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    downloads = len([m for m, _p in git_server.storage.requests if m == "GET"])
    result = check(pushed)
    assert result.ok, result
    assert result.commit == result.remote_head == git_server.head()
    assert result.lfs_objects == 1 and result.lfs_bytes == len(BIG) and result.objects >= 4
    assert len([m for m, _p in git_server.storage.requests if m == "GET"]) == downloads + 1  # really downloaded
    assert storage_saw_no_token(git_server)
    assert list(scratch.iterdir()) == []  # the temporary repository is gone
    assert git_server.token not in (pushed.git_dir / "config").read_text()


def test_an_object_removed_behind_our_back_fails_the_check(pushed: Settings, git_server: GitHTTPServer) -> None:
    note = git("--git-dir", str(git_server.repo), "rev-parse", "main:note.md")
    loose = git_server.repo / "objects" / note[:2] / note[2:]
    if not loose.exists():  # received as a pack: unpack it so that one object can go
        git("--git-dir", str(git_server.repo), "repack", "-a", "-d", "--unpack-unreachable=now")
        for pack in (git_server.repo / "objects" / "pack").glob("*.pack"):
            git("--git-dir", str(git_server.repo), "unpack-objects", "-r", input=pack.read_bytes())
    loose.unlink()
    result = check(pushed)
    assert not result.ok
    assert result.reason == "objects_missing", result
    assert note in result.message


def test_an_lfs_object_missing_on_the_storage_host_fails_the_check(
    pushed: Settings, git_server: GitHTTPServer,
) -> None:
    oid = hashlib.sha256(BIG).hexdigest()
    del git_server.storage.objects[oid]
    result = check(pushed)
    assert not result.ok
    assert result.reason == "lfs_missing", result
    assert "big.bin" in result.message and oid[:12] in result.message


def test_a_rewritten_branch_fails_the_check(pushed: Settings, git_server: GitHTTPServer, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git("init", "-q", "-b", "main", str(other))
    (other / "note.md").write_text("someone else's history\n")
    git("-C", str(other), "add", "-A")
    git("-C", str(other), "commit", "-q", "-m", "rewritten")
    git("--git-dir", str(git_server.repo), "fetch", "-q", str(other), "+main:refs/heads/main")  # a forced update
    result = check(pushed)
    assert not result.ok
    assert result.reason == "rewritten", result
    assert result.remote_head == git_server.head()


def test_the_command_records_the_result_and_a_remote_that_is_down_is_exit_1(
    pushed: Settings, git_server: GitHTTPServer, layout: Layout,
) -> None:
    env = {**layout.env, "COMMITTER_REMOTE": git_server.url, "COMMITTER_TOKEN_FILE": str(pushed.token_file)}
    done = committer("verify", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    git_server.set_mode("503")
    done = committer("verify", env=env)
    assert done.returncode == 1
    assert "verify failed (unreachable)" in done.stderr
    assert git_server.token not in done.stderr + done.stdout  # nor in any log line
    record = backupcheck.last(layout.git_dir)
    assert record is not None and record["reason"] == "unreachable" and record["last_ok_at"]
    status = json.loads(committer("status", "--json", env=env).stdout)
    assert status["verified"]["reason"] == "unreachable"
    shown = committer("status", env=env).stdout
    assert re.search(r"^verified +FAILED .*\(unreachable\).*; last verified ", shown, re.MULTILINE), shown
