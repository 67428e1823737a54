"""LFS goes where committer says: a `.lfsconfig` that a remote commit brings cannot send uploads (or the
credential) to a third host, and the real storage receives every object the pushed commits point at."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from committer.git import lfs
from tests.conftest import Layout, committer
from tests.gitserver import GitHTTPServer, git, git_server

__all__ = ["git_server"]

pytestmark = pytest.mark.skipif(not lfs.available(), reason="git-lfs is not installed")


@pytest.fixture
def third(tmp_path: Path) -> Iterator[GitHTTPServer]:
    """Another loopback git host with LFS, which must receive nothing."""
    server = GitHTTPServer(tmp_path / "third", token="another-token-0123456789")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def remote_commit(server: GitHTTPServer, path: str, content: bytes) -> str:
    """Someone else's commit on the served branch, adding one file."""
    gd = ("--git-dir", str(server.repo))
    index = server.repo / "someone-index"
    env = {"GIT_INDEX_FILE": str(index), "GIT_AUTHOR_NAME": "o", "GIT_AUTHOR_EMAIL": "o@x",
           "GIT_COMMITTER_NAME": "o", "GIT_COMMITTER_EMAIL": "o@x"}
    head = server.head()
    subprocess.run(["git", *gd, "read-tree", head or "--empty"], check=True, env={**os.environ, **env})
    blob = git(*gd, "hash-object", "-w", "--stdin", input=content)
    git(*gd, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
    tree = git(*gd, "write-tree", env=env)
    sha = git(*gd, "commit-tree", tree, *(["-p", head] if head else []), "-m", f"add {path}", env=env)
    git(*gd, "update-ref", "refs/heads/main", sha)
    index.unlink()
    return sha


@pytest.mark.parametrize("keys", [("url",), ("pushurl",), ("url", "pushurl"), ("insteadof",)])
def test_a_pulled_lfsconfig_cannot_redirect_uploads(
    git_server: GitHTTPServer, third: GitHTTPServer, tmp_path: Path, keys: tuple[str, ...]
) -> None:
    env = {"COMMITTER_TOKEN": git_server.token, "COMMITTER_REMOTE": git_server.url, "COMMITTER_LFS_THRESHOLD": "1000"}
    layout = Layout(tmp_path / "a", tmp_path / "a" / "data", tmp_path / "a" / "git" / "k.git")
    layout.data.mkdir(parents=True)
    (layout.data / "note.md").write_text("hello\n")
    done = committer("init", *layout.args(), env=env)
    assert done.returncode == 0, done.stderr
    endpoint = third.url + "/info/lfs"
    if keys == ("insteadof",):  # git-lfs 3.3 does not take url.*.insteadOf from .lfsconfig: kept as a guard
        real = git_server.url.rsplit("/", 1)[0] + "/"
        lfsconfig = f'[url "{third.url.rsplit("/", 1)[0]}/"]\n\tinsteadOf = {real}\n\tpushInsteadOf = {real}\n'
    else:
        lfsconfig = "[lfs]\n" + "".join(f"\t{key} = {endpoint}\n" for key in keys)
    remote_commit(git_server, ".lfsconfig", lfsconfig.encode())
    done = committer("pull", *layout.args(), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git("--git-dir", str(layout.git_dir), "cat-file", "blob", "main:.lfsconfig") == lfsconfig.strip()

    big = os.urandom(300_000)
    (layout.data / "big.bin").write_bytes(big)
    done = committer("init", *layout.args(), env=env)  # commits what changed and pushes
    assert done.returncode == 0, done.stdout + done.stderr
    oid = hashlib.sha256(big).hexdigest()
    assert git_server.storage.objects.get(oid) == big
    assert not third.requests and not third.storage.requests
    pointer = git("--git-dir", str(git_server.repo), "cat-file", "blob", "main:big.bin")
    assert lfs.parse(pointer.encode() + b"\n") == (oid, len(big))

    # A fresh repository taking that history downloads from the remote's storage too, never from the third host.
    other = Layout(tmp_path / "b", tmp_path / "b" / "data", tmp_path / "b" / "git" / "k.git")
    other.data.mkdir(parents=True)
    done = committer("init", "--from-remote", *other.args(), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (other.data / "big.bin").read_bytes() == big
    assert not third.requests and not third.storage.requests


def test_a_pulled_lfsconfig_cannot_make_downloads_skip_objects(git_server: GitHTTPServer, tmp_path: Path) -> None:
    """`fetchexclude = *` in a committed .lfsconfig would leave pointer files where the content belongs."""
    env = {"COMMITTER_TOKEN": git_server.token, "COMMITTER_REMOTE": git_server.url, "COMMITTER_LFS_THRESHOLD": "1000"}
    source = Layout(tmp_path / "a", tmp_path / "a" / "data", tmp_path / "a" / "git" / "k.git")
    source.data.mkdir(parents=True)
    big = os.urandom(300_000)
    (source.data / "big.bin").write_bytes(big)
    done = committer("init", *source.args(), env=env)
    assert done.returncode == 0, done.stderr
    remote_commit(git_server, ".lfsconfig", b"[lfs]\n\tfetchexclude = *\n\tfetchinclude = nothing\n")
    other = Layout(tmp_path / "b", tmp_path / "b" / "data", tmp_path / "b" / "git" / "k.git")
    other.data.mkdir(parents=True)
    done = committer("init", "--from-remote", *other.args(), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (other.data / "big.bin").read_bytes() == big
