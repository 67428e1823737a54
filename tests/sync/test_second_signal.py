"""A second SIGTERM or SIGINT during a slow shutdown (a last push to a hung remote) exits at once, after
one line saying what was left undone; the first one alone keeps waiting for the bounded last push."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.daemon.service import REPEAT_WINDOW
from tests.conftest import DaemonProcess, Layout, wait_for
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
    started = time.monotonic()
    daemon.proc.send_signal(second)
    code = daemon.proc.wait(timeout=20)
    assert code == 128 + second, daemon.output()
    assert time.monotonic() - started < 20
    told = daemon.events("daemon_stopped_now")
    assert len(told) == 1, daemon.output()
    assert told[0]["unpushed_commits"] >= 1 and told[0]["uncommitted_paths"] == 0
    assert told[0]["signal"] == signal.Signals(second).name and told[0]["exit_code"] == code
    assert "Traceback" not in daemon.output()
    wait_for(lambda: not processes_naming(f"127.0.0.1:{port}"), timeout=5, what="the network git ended")
