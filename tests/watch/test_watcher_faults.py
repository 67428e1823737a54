"""Watcher faults with the real kernel limits: queue overflow and inotify refusing to start."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, committer, tree_files, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.serial]
SYSCTL = Path("/proc/sys/fs/inotify")
LIMITS_LOCK = "/tmp/committer-tests-inotify-limits.lock"
Start = Callable[..., DaemonProcess]


def _writable() -> bool:
    return os.access(SYSCTL / "max_queued_events", os.W_OK)


needs_sysctl = pytest.mark.skipif(not _writable(), reason="needs write access to /proc/sys/fs/inotify")


@contextlib.contextmanager
def kernel_limit(name: str, value: int) -> Iterator[None]:
    """Set an inotify limit for the duration of the block (it applies to instances made meanwhile). The
    limits are the whole machine's: two test runs at once take turns through a lock file, or the second
    would read the first's lowered value as the one to put back and leave inotify off for everyone."""
    path = SYSCTL / name
    with open(LIMITS_LOCK, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = path.read_text().strip()
        path.write_text(str(value))
        try:
            yield
        finally:
            path.write_text(old)


@needs_sysctl
def test_queue_overflow_leads_to_a_full_reconcile(layout: Layout, start_daemon: Start) -> None:
    with kernel_limit("max_queued_events", 16):
        daemon = start_daemon("--debounce", "300ms")
    for i in range(3000):
        (layout.data / f"f{i:04}.md").write_text(str(i))
    daemon.wait_event("watcher_overflow", timeout=20)
    wait_for(lambda: len(tree_files(layout.git_dir)) == 3000, timeout=60, what="every file committed")
    daemon.wait_event("reconcile", where=lambda e: e.get("why") == "overflow")


@needs_sysctl
def test_auto_falls_back_to_polling_when_inotify_cannot_start(layout: Layout, start_daemon: Start) -> None:
    with kernel_limit("max_user_instances", 0):
        daemon = start_daemon("--observer", "auto", "--poll-interval", "200ms")
    fallback = daemon.events("observer_fallback")
    assert fallback and fallback[0]["observer"] == "poll" and fallback[0]["level"] == "warning"
    assert daemon.events("daemon_start")[0]["observer"] == "poll"
    (layout.data / "seen.md").write_text("by polling")
    wait_for(lambda: "seen.md" in tree_files(layout.git_dir), what="commit through the poll observer")


@needs_sysctl
def test_inotify_requested_but_unavailable_is_one_clear_error(layout: Layout) -> None:
    with kernel_limit("max_user_instances", 0):
        proc = committer("run", "--observer", "inotify", *layout.args())
    assert proc.returncode == 2
    assert "observer: inotify cannot watch" in proc.stderr and "Traceback" not in proc.stderr
