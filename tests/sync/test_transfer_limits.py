"""Every network transfer is bounded: a server that streams an endless pack or an endless LFS body is cut
off at max_transfer (bytes written here, on a disk or on tmpfs) or transfer_timeout (however busy it is),
the error says which, and nothing it sent stays on disk, also when a signal stops the command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from committer.git import lfs
from tests.conftest import Layout, committer, wait_for
from tests.git.test_lfs_endpoint import remote_commit
from tests.gitserver import GitHTTPServer, git_server

__all__ = ["git_server"]


def leftovers(git_dir: Path) -> list[str]:
    """Temporary packs and LFS partials under the git dir."""
    found = []
    for folder in ("objects/pack", "lfs/incomplete", "lfs/tmp"):
        place = git_dir / folder
        if place.is_dir():
            found += [f"{folder}/{name}" for name in os.listdir(place)
                      if folder != "objects/pack" or name.startswith("tmp_")]
    return found


def layout(tmp_path: Path, name: str) -> Layout:
    made = Layout(tmp_path / name, tmp_path / name / "data", tmp_path / name / "git" / "k.git")
    made.data.mkdir(parents=True)
    return made


@pytest.fixture
def served(git_server: GitHTTPServer) -> Iterator[GitHTTPServer]:
    """The git server with one commit on main."""
    remote_commit(git_server, "note.md", b"hello\n")
    yield git_server


def on_tmpfs(path: str) -> bool:
    with open("/proc/mounts") as fh:
        return any(line.split()[1] == path and line.split()[2] == "tmpfs" for line in fh)


@pytest.fixture(params=["disk", "tmpfs"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """Where the repository lives: the test's folder, or /dev/shm (tmpfs: /proc counts no write_bytes there)."""
    if request.param == "disk":
        yield tmp_path
        return
    if not os.path.isdir("/dev/shm") or not on_tmpfs("/dev/shm"):
        pytest.skip("/dev/shm is missing or not tmpfs")
    made = Path(tempfile.mkdtemp(prefix="committer-test-", dir="/dev/shm"))
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def env_for(server: GitHTTPServer, **more: str) -> dict[str, str]:
    return {"COMMITTER_TOKEN": server.token, "COMMITTER_REMOTE": server.url, **more}


def test_an_endless_pack_is_cut_at_max_transfer_and_leaves_nothing(served: GitHTTPServer, place: Path) -> None:
    served.set_mode("endless_pack")
    target = layout(place, "b")
    done = committer("init", "--from-remote", *target.args(), env=env_for(served, COMMITTER_MAX_TRANSFER="5MB"),
                     timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("{")]  # not log events
    assert len(lines) == 1 and "(transfer_limit)" in lines[0] and "max_transfer" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert served.sent > 5_000_000  # it really was sending more than the limit
    assert not leftovers(target.git_dir)
    stopped = [json.loads(line) for line in done.stdout.splitlines() + done.stderr.splitlines()
               if line.startswith("{") and '"transfer_stopped"' in line]
    assert stopped and stopped[0]["limit"] == "max_transfer"
    assert '"transfer_leftovers_removed"' in done.stderr  # a temporary pack was there, and is gone


def test_a_slow_endless_pack_is_cut_at_transfer_timeout(served: GitHTTPServer, tmp_path: Path) -> None:
    served.drip = 0.05  # bytes keep coming (the idle watchdog never fires), a few MB a second at most
    served.set_mode("endless_pack")
    target = layout(tmp_path, "b")
    env = env_for(served, COMMITTER_TRANSFER_TIMEOUT="3s", COMMITTER_PUSH_TIMEOUT="60s")
    done = committer("init", "--from-remote", *target.args(), env=env, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("{")]  # not log events
    assert len(lines) == 1 and "(transfer_limit)" in lines[0] and "transfer_timeout" in lines[0], done.stderr
    assert not leftovers(target.git_dir)


@pytest.mark.skipif(not lfs.available(), reason="git-lfs is not installed")
def test_an_endless_lfs_body_is_cut_at_max_transfer_and_leaves_no_partial(
    git_server: GitHTTPServer, tmp_path: Path, place: Path
) -> None:
    source = layout(tmp_path, "a")
    big = os.urandom(300_000)
    (source.data / "big.bin").write_bytes(big)
    env = env_for(git_server, COMMITTER_LFS_THRESHOLD="1000")
    done = committer("init", *source.args(), env=env)
    assert done.returncode == 0, done.stderr
    git_server.storage.endless = True
    target = layout(place, "b")
    done = committer("init", "--from-remote", *target.args(), env={**env, "COMMITTER_MAX_TRANSFER": "3MB"},
                     timeout=120)
    git_server.storage.endless = False
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert git_server.storage.sent > 3_000_000
    failed = [json.loads(line) for line in output.splitlines() if '"lfs_fetch_failed"' in line]
    assert failed and "transfer_limit" in failed[0]["error"], output
    assert '"transfer_leftovers_removed"' in output  # a partial download was there, and is gone
    assert not leftovers(target.git_dir)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_command_stopped_during_a_fetch_leaves_no_partial_pack(
    served: GitHTTPServer, place: Path, signum: int
) -> None:
    served.set_mode("endless_pack")
    target = layout(place, "b")
    env = {**os.environ, "COMMITTER_LOG_FORMAT": "json", **env_for(served)}
    proc = subprocess.Popen([sys.executable, "-m", "committer", "init", "--from-remote", *target.args()], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: leftovers(target.git_dir), timeout=60, what="a temporary pack being received")
        proc.send_signal(signum)
        err = proc.communicate(timeout=30)[1].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert not leftovers(target.git_dir)
    assert '"transfer_leftovers_removed"' in err  # a temporary pack was there, and is gone
