"""The issue's scenario against the daemon as a process: a commit of long repeated-token lines, 45
abandoned requests for its page (what an `<img src>` on another site makes), then health checks, a new
commit and SIGTERM. Nothing waits behind the pages."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, tree_files, wait_for
from tests.daemon.test_daemon_http import free_port

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def lines(separator: str) -> str:
    sizes = [1990] * 10 + [4000] * 10
    return "\n".join((f"{n} " + f"a{separator} " * size)[:size] for n, size in enumerate(sizes)) + "\n"


def test_abandoned_commit_pages_leave_health_commits_and_sigterm_untouched(
        layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", "--remote", f"file://{mirror}",
                          env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    (layout.data / "long.md").write_text(lines(","))
    wait_for(lambda: "long.md" in tree_files(mirror, "refs/heads/main"), timeout=30, what="the first push")
    (layout.data / "long.md").write_text(lines(";"))
    commits = len(daemon.events("git_commit"))
    sha = daemon.wait_event("git_commit", count=commits + 1, timeout=30)[commits]["sha"]

    clients = []
    for _ in range(45):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET /commit/{sha} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        clients.append(sock)
    for sock in clients:  # abandoned, as an <img> on a page someone closed
        sock.close()
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert answer.status == 200 and json.loads(answer.read())["healthy"] is True
    health_seconds = time.monotonic() - started

    (layout.data / "after.md").write_text("still committed")
    daemon.wait_event("git_commit", count=commits + 2, timeout=30)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/commit/{sha}", timeout=10) as answer:
        assert answer.status == 200 and "long.md" in answer.read().decode()

    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM, timeout=30) == 0
    stop_seconds = time.monotonic() - started
    print(f"/healthz after 45 abandoned pages: {health_seconds * 1000:.0f} ms; SIGTERM to exit: {stop_seconds:.2f}s")
    assert stop_seconds < 15
    assert "Traceback" not in daemon.output() and not daemon.events("http_handler_failed")
