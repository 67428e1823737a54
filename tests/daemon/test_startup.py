"""Start-up: what a daemon imports before it is ready, and the watches armed beside the repository's check
without losing a change made meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from tests.conftest import DaemonProcess, Layout, show, tree_files, wait_for

Start = Callable[..., DaemonProcess]

PAGES_SERVER = ("starlette", "uvicorn", "jinja2", "markdown_it", "httpx")


def test_a_daemon_without_http_imports_no_pages_server() -> None:
    """What `committer run` imports for one repository: the pages' server comes with --http only."""
    code = (
        "import sys, committer.cli, committer.daemon.service, committer.daemon.startup, committer.watch.inotify\n"
        f"print(','.join(m for m in {PAGES_SERVER!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == ""


@pytest.mark.integration
def test_ready_says_where_start_up_went_and_a_change_made_meanwhile_is_committed(
    layout: Layout, start_daemon: Start
) -> None:
    for i in range(40):
        (layout.data / f"d{i % 8}" / f"f{i}.md").parent.mkdir(exist_ok=True)
        (layout.data / f"d{i % 8}" / f"f{i}.md").write_text("before")
    start_daemon().stop()
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:  # from before the process starts until after it is ready
        n = 0
        while not stop.is_set() or n < 3:
            n += 1
            for i in range(40):
                (layout.data / f"d{i % 8}" / f"f{i}.md").write_text(f"rev {n}")
            written.append(n)
            stop.wait(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        daemon = start_daemon()
    finally:
        stop.set()
        writer.join()
    ready = daemon.wait_event("daemon_ready")[0]
    assert {"prepare_s", "watch_s", "open_and_watch_s", "reconcile_s"} <= set(ready)
    last = f"rev {written[-1]}".encode()
    wait_for(lambda: all(show(layout.git_dir, f"d{i % 8}/f{i}.md") == last for i in range(40)),
             timeout=20, what="every file's last write committed")
    assert len(tree_files(layout.git_dir)) == 40
