"""kill -9 exactly while a commit (`git fast-import`) or a push runs, found by watching /proc."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Layout
from tests.faults.harness import (
    Daemons,
    GitWrapper,
    alive,
    bytes_read,
    child_running,
    fsck,
    kill_group,
    nothing_pending,
    ref_sha,
    settle,
    sigkill,
    stale_locks,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]
BURST = 5000


def _burst(directory: Path, version: int) -> int:
    """BURST small files (all new, or all rewritten); returns the bytes written."""
    directory.mkdir(exist_ok=True)
    total = 0
    for i in range(BURST):
        text = f"file {i} version {version}\n" + "lorem ipsum dolor sit amet " * 8
        (directory / f"item-{i:05}.md").write_text(text)
        total += len(text)
    return total


def test_kill_9_in_the_middle_of_a_commit_loses_nothing(layout: Layout, daemons: Daemons) -> None:
    (layout.data / "README.md").write_text("kept\n")
    daemon = daemons.start(layout)
    settle(layout)
    report = []
    # Round 0: 5k new files, killed early in the blob stream; round 1: the same 5k files rewritten,
    # killed when most of the stream has been read.
    for round_, fraction in enumerate((0.1, 0.7)):
        before = ref_sha(layout.git_dir)
        size = _burst(layout.data / "burst", round_)
        pid = daemon.proc.pid
        importer = wait_until(lambda: child_running(pid, "fast-import"), 30,  # noqa: B023
                              "git fast-import to start", interval=0.002)
        wait_until(lambda: bytes_read(importer.pid) >= fraction * size or not alive(importer.pid),  # noqa: B023
                   30, f"fast-import to read {fraction:.0%} of the burst", interval=0.002)
        read = bytes_read(importer.pid)
        assert alive(importer.pid), "fast-import ended before the kill: the burst is too small to hit it"
        sigkill(daemon)
        report.append(f"round {round_}: killed with fast-import at {read}/{size} bytes")
        wait_until(lambda: not alive(importer.pid), 15, "the orphaned fast-import to end")  # noqa: B023
        # Right after the crash, before any repair: the stream never got `done`, so the branch did
        # not move, and nothing points at a missing object.
        assert ref_sha(layout.git_dir) == before
        check = fsck(layout.git_dir)
        assert check.ok, check
        daemon = daemons.start(layout)
        settle(layout, timeout=90)
    print("\n" + "\n".join(report))
    assert daemon.stop() == 0, daemon.output()
    check = fsck(layout.git_dir)
    assert check.ok and check.strict_ok, check
    assert not stale_locks(layout.git_dir)


def test_kill_9_during_a_push_loses_nothing(layout: Layout, daemons: Daemons, git_wrapper: GitWrapper,
                                            remote_url: str) -> None:
    remote = Path(remote_url.removeprefix("file://"))
    git_wrapper.delay("push", 3)  # a slow remote: the push is in flight for 3 s
    env = {**git_wrapper.env(), "COMMITTER_PUSH_INTERVAL": "200ms", "COMMITTER_PUSH_BACKOFF_MAX": "2s"}
    (layout.data / "README.md").write_text("kept\n")
    daemon = daemons.start(layout, "--remote", remote_url, env=env)

    # Kill 1: the daemon alone; its push goes on as an orphan, as after a crash of the daemon only.
    (layout.data / "one.md").write_text("one\n")
    pid = daemon.proc.pid
    orphan = wait_until(lambda: child_running(pid, "push"), 20, "a push in flight", interval=0.01)
    sigkill(daemon)
    assert alive(orphan.pid)
    assert fsck(layout.git_dir).ok
    (layout.data / "two.md").write_text("two, written while no daemon runs\n")

    # Kill 2: the daemon and its push together, as when a container or a cgroup is killed whole.
    daemon = daemons.start(layout, "--remote", remote_url, env=env)
    pid = daemon.proc.pid
    push = wait_until(lambda: child_running(pid, "push"), 20, "a push in flight", interval=0.01)
    sigkill(daemon)
    kill_group(push)
    assert fsck(layout.git_dir).ok
    wait_until(lambda: not alive(orphan.pid), 20, "the orphaned push of kill 1 to end")

    git_wrapper.clear()
    (layout.data / "three.md").write_text("three\n")
    start = time.monotonic()
    daemon = daemons.start(layout, "--remote", remote_url, env=env)
    settle(layout)
    wait_until(lambda: ref_sha(remote) == ref_sha(layout.git_dir), 30, "the remote to catch up")
    wait_until(lambda: nothing_pending(layout, remote_url), 20, "status to show no pending commit",
               interval=0.3)
    print(f"\nremote caught up {time.monotonic() - start:.1f}s after the restart")
    assert daemon.stop() == 0, daemon.output()
    for repo in (layout.git_dir, remote):
        check = fsck(repo)
        assert check.ok and check.strict_ok, check
    assert not stale_locks(layout.git_dir)
