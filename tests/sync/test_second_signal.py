"""A second SIGTERM or SIGINT during a slow shutdown (a last push to a hung remote) exits at once, after
one line saying what was left undone, and what a fetch under way was writing removed; the first one alone
keeps waiting for the bounded last push."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.daemon.service import REPEAT_WINDOW
from tests.conftest import DaemonProcess, Layout, wait_for
from tests.git.test_lfs_endpoint import remote_commit
from tests.gitserver import GitHTTPServer, git_server
from tests.sync.test_stopped_commands import processes_naming

__all__ = ["git_server"]


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_during_a_hung_last_push_exits_at_once(
    git_server: GitHTTPServer, layout: Layout, start_daemon: Callable[..., DaemonProcess], tmp_path: Path,
    second: int,
) -> None:
    env = {"COMMITTER_TOKEN": git_server.token, "COMMITTER_SHUTDOWN_TIMEOUT": "120s",
           "COMMITTER_PUSH_TIMEOUT": "120s"}
    daemon = start_daemon("--remote", git_server.url, env=env)
    git_server.set_mode("hang")
    (layout.data / "note.md").write_text("hello\n")
    daemon.wait_event("git_commit")
    wait_for(lambda: git_server.hanging >= 1, timeout=30, what="a push hanging on the remote")
    port = git_server.url.split(":")[2].split("/")[0]
    first = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.send_signal(signal.SIGTERM)  # delivered twice at once: still the one request
    daemon.wait_event("daemon_stopping")
    assert daemon.proc.poll() is None  # the first signal waits for the last push (bounded by shutdown_timeout)
    # A repeat within REPEAT_WINDOW of the first is the same request; a person's second Ctrl-C comes later.
    wait_for(lambda: time.monotonic() - first >= REPEAT_WINDOW + 0.1, what="the repeat window over")
    assert daemon.proc.poll() is None
    daemon.proc.send_signal(second)
    code = daemon.proc.wait(timeout=60)  # at once: not the 120 s the last push and the stop may take
    assert code == 128 + second, daemon.output()
    told = daemon.events("daemon_stopped_now")
    assert len(told) == 1, daemon.output()
    assert told[0]["unpushed_commits"] >= 1 and told[0]["uncommitted_paths"] == 0
    assert told[0]["signal"] == signal.Signals(second).name and told[0]["exit_code"] == code
    assert "Traceback" not in daemon.output()
    wait_for(lambda: not processes_naming(f"127.0.0.1:{port}"), timeout=5, what="the network git ended")


# A fetch under way in a thread of its own when the daemon's second signal arrives (stop_now), in a process
# of its own: stop_now exits it.
_FETCH_THEN_STOP = """
import os, signal, subprocess, sys, threading, time
from pathlib import Path
from committer.core import logs
from committer.core.settings import load_settings
from committer.daemon.stopnow import stop_now
from committer.git.repo import GitRepo
from committer.sync import pull

logs.configure("json")
git_dir = Path(sys.argv[1])
subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(git_dir)], check=True)
settings = load_settings(env=os.environ)
repo = GitRepo(git_dir, git_dir, "main")
fetching = threading.Thread(target=pull.fetch, args=(settings, repo), daemon=True)
fetching.start()
while not any(name.startswith("tmp_pack_") for name in os.listdir(git_dir / "objects" / "pack")):
    if not fetching.is_alive():
        sys.exit("the fetch ended before a temporary pack appeared")
    time.sleep(0.02)
stop_now(signal.SIGTERM, None, None)
"""


def test_a_second_signal_removes_what_a_fetch_under_way_was_writing(git_server: GitHTTPServer, tmp_path: Path
                                                                    ) -> None:
    remote_commit(git_server, "note.md", b"hello\n")
    git_server.set_mode("endless_pack")
    git_dir = tmp_path / "k.git"
    env = {**os.environ, "COMMITTER_TOKEN": git_server.token, "COMMITTER_REMOTE": git_server.url}
    done = subprocess.run([sys.executable, "-c", _FETCH_THEN_STOP, str(git_dir)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 128 + signal.SIGTERM, output
    assert "daemon_stopped_now" in output
    assert not [name for name in os.listdir(git_dir / "objects" / "pack") if name.startswith("tmp_")], output
    assert '"transfer_leftovers_removed"' in output
