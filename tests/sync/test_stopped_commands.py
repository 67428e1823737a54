"""A CLI command stopped with SIGTERM or SIGINT while its git talks to a hung remote ends that git (and
its helpers) and exits: nothing keeps running behind it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.gitserver import GitHTTPServer, git_server

__all__ = ["git_server"]


def processes_naming(text: str) -> set[int]:
    """Live processes (not zombies) whose command line holds `text`."""
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if text.encode() in cmdline and state != b"Z":
            found.add(int(pid))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("command", ["init", "push", "doctor"])
def test_a_stopped_command_ends_its_network_git(
    git_server: GitHTTPServer, tmp_path: Path, signum: int, command: str
) -> None:
    data, git_dir = tmp_path / "data", tmp_path / "git" / "k.git"
    data.mkdir()
    (data / "note.md").write_text("hello\n")
    env = {**os.environ, "COMMITTER_TOKEN": git_server.token, "COMMITTER_LOG_FORMAT": "json",
           "COMMITTER_REMOTE": git_server.url}
    if command == "push":  # a repository with a commit to push
        made = subprocess.run([sys.executable, "-m", "committer", "init", "--data-dir", str(data), "--git-dir",
                               str(git_dir)], env={**env, "COMMITTER_REMOTE": ""}, capture_output=True, check=False)
        assert made.returncode == 0, made.stderr
    git_server.set_mode("hang")
    proc = subprocess.Popen([sys.executable, "-m", "committer", command, "--data-dir", str(data),
                             "--git-dir", str(git_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: git_server.hanging >= 1, timeout=30, what="git waiting on the hung server")
        port = git_server.url.split(":")[2].split("/")[0]
        network = wait_for(lambda: processes_naming(f"127.0.0.1:{port}"), timeout=10, what="the network git")
        proc.send_signal(signum)
        err = proc.communicate(timeout=20)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    lines = [line for line in err.decode().splitlines() if not line.startswith("{")]
    assert lines == [f"committer: stopped by {signal.Signals(signum).name}; the git processes it started "
                     "were ended"], err
    wait_for(lambda: not processes_naming(f"127.0.0.1:{port}") & network, timeout=5, what="the network git ended")
