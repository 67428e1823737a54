"""LFS over HTTPS as GitHub serves it: the batch API on the git host, objects on a separate storage host.

The credential reaches the git host only; the storage host sees nothing but the one-time headers the
batch API handed out, and a redirect to another host gets no credential either.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from committer.core.settings import Settings
from committer.git import lfs
from committer.git.repo import GitRepo
from committer.sync.errors import PushError
from committer.sync.pusher import Pusher
from tests.conftest import Layout, committer
from tests.gitserver import USER, GitHTTPServer, git, git_server

__all__ = ["git_server"]

pytestmark = pytest.mark.skipif(not lfs.available(), reason="git-lfs is not installed")


def forbidden(token: str) -> list[str]:
    """Every form in which the token could travel."""
    return [token, base64.b64encode(f"{USER}:{token}".encode()).decode(), base64.b64encode(token.encode()).decode()]


def storage_saw_no_token(server: GitHTTPServer) -> bool:
    seen = " ".join(a or "" for a in server.storage.authorizations)
    return not any(form in seen for form in forbidden(server.token))


def test_large_file_goes_to_the_storage_host_and_comes_back_by_init_and_pull(
    git_server: GitHTTPServer, tmp_path: Path
) -> None:
    """An 11 MB file is pushed through the batch API to the storage host and downloaded back; the token stays home."""
    env = {"COMMITTER_TOKEN": git_server.token, "COMMITTER_REMOTE": git_server.url}
    first = Layout(tmp_path / "a", tmp_path / "a" / "data", tmp_path / "a" / "git" / "k.git")
    first.data.mkdir(parents=True)
    big = os.urandom(11_000_000)
    (first.data / "big.bin").write_bytes(big)
    done = committer("init", *first.args(), env=env)
    assert done.returncode == 0, done.stderr
    oid = hashlib.sha256(big).hexdigest()
    pointer = git("--git-dir", str(git_server.repo), "cat-file", "blob", "main:big.bin")
    assert lfs.parse(pointer.encode() + b"\n") == (oid, len(big))
    assert git_server.storage.objects[oid] == big
    assert git_server.storage.authorizations and all(
        (a or "").startswith("RemoteAuth ") for a in git_server.storage.authorizations
    )
    assert storage_saw_no_token(git_server)

    second = Layout(tmp_path / "b", tmp_path / "b" / "data", tmp_path / "b" / "git" / "k.git")
    second.data.mkdir(parents=True)
    done = committer("init", "--from-remote", *second.args(), env=env)
    assert done.returncode == 0, done.stderr
    assert (second.data / "big.bin").read_bytes() == big

    bigger = os.urandom(11_500_000)
    (first.data / "more.bin").write_bytes(bigger)
    done = committer("init", *first.args(), env=env)  # on an existing repository: commit what changed, push
    assert done.returncode == 0, done.stderr
    done = committer("pull", *second.args(), env=env)
    assert done.returncode == 0, done.stderr
    assert (second.data / "more.bin").read_bytes() == bigger
    downloads = [path for method, path in git_server.storage.requests if method == "GET"]
    assert len(downloads) == 2
    assert storage_saw_no_token(git_server)


def test_a_redirect_to_another_host_gets_no_credential(git_server: GitHTTPServer, tmp_path: Path) -> None:
    """A git host that redirects to another host fails the push as auth; that host never sees the token."""
    (tmp_path / "data").mkdir()
    repo = GitRepo(tmp_path / "git.git", tmp_path / "data", "main")
    repo.init()
    tree = git("--git-dir", str(repo.git_dir), "mktree", input=b"")
    sha = git("--git-dir", str(repo.git_dir), "commit-tree", "-m", "one", tree)
    git("--git-dir", str(repo.git_dir), "update-ref", repo.ref, sha)
    token_file = tmp_path / "token"
    token_file.write_text(git_server.token)
    settings = Settings(git_dir=repo.git_dir, data_dir=repo.data_dir, remote=git_server.url,
                        token_file=token_file, push_timeout=10.0)
    git_server.set_mode("redirect")
    with pytest.raises(PushError) as info:
        Pusher(settings, repo).push_now()
    assert info.value.kind == "auth", info.value
    assert git_server.storage.requests, "the redirect was followed"
    assert storage_saw_no_token(git_server)
    assert git_server.head() is None
