"""/healthz while the daemon stops: the push loop making its last push is alive, not down."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import pytest

from tests.conftest import DaemonProcess, Layout, wait_for
from tests.daemon.test_daemon_http import free_port, get
from tests.gitserver import GitHTTPServer, git_server

__all__ = ["git_server"]

pytestmark = pytest.mark.integration


def test_the_push_loop_stays_alive_on_healthz_during_its_last_push(
    git_server: GitHTTPServer, layout: Layout, start_daemon: Callable[..., DaemonProcess],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"COMMITTER_TOKEN": git_server.token, "COMMITTER_SHUTDOWN_TIMEOUT": "120s",
           "COMMITTER_PUSH_TIMEOUT": "120s"}
    daemon = start_daemon("--remote", git_server.url, "--http", f"127.0.0.1:{port}", env=env)
    wait_for(lambda: json.loads(get(f"{base}/healthz")[1])["push_loop"] == "alive", what="the push loop running")
    git_server.set_mode("hang")
    (layout.data / "note.md").write_text("hello\n")
    daemon.wait_event("git_commit")
    wait_for(lambda: git_server.hanging >= 1, timeout=30, what="a push hanging on the remote")
    daemon.proc.send_signal(signal.SIGTERM)
    # Logged after the pull loop and the watcher stopped, before the last push (which hangs on the remote).
    daemon.wait_event("reconcile", where=lambda e: e.get("why") == "shutdown")
    _, body = get(f"{base}/healthz")  # 503: the watcher is stopped
    assert daemon.proc.poll() is None
    assert json.loads(body)["push_loop"] == "alive", body
    git_server.set_mode("normal")
    assert daemon.proc.wait(timeout=120) == 0, daemon.output()
