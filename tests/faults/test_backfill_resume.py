"""kill -9 in the middle of the first commit of a large directory, then resume: nothing lost, nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Layout, committer
from tests.faults.harness import (
    Daemons,
    Proc,
    alive,
    bytes_read,
    children,
    compare,
    disk_tree,
    fsck,
    git_out,
    head_tree,
    kill_group,
    ref_sha,
    settle,
    sigkill,
    stale_locks,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]
FILES = 6000  # about 18 MB of notes


def _fill(data: Path, count: int, tag: str = "") -> int:
    """`count` files of about 3 KB in directories of 50; returns the bytes written."""
    total = 0
    for i in range(count):
        directory = data / f"d{i // 50:03}"
        directory.mkdir(exist_ok=True)
        text = f"# note {i}{tag}\n" + f"line {i} of a note that is long enough to make a real blob\n" * 50
        (directory / f"n{i:05}{tag}.md").write_text(text)
        total += len(text)
    return total


def _importers(pid: int) -> list[Proc]:
    return [p for p in children(pid) if p.runs("fast-import")]


def _added_once(git_dir: Path) -> list[str]:
    """Paths that more than one commit of the branch added: a resumed backfill must add each once."""
    out = git_out(git_dir, "log", "--format=", "--name-only", "--diff-filter=A", "-z", "main", check=True).stdout
    paths = [p for p in out.replace(b"\n", b"\0").split(b"\0") if p]
    return sorted({os.fsdecode(p) for p in paths if paths.count(p) > 1})


def _clean_status(layout: Layout) -> str:
    return git_out(layout.git_dir, f"--work-tree={layout.data}", "status", "--porcelain",
                   "--untracked-files=all", check=True).stdout.decode()


def test_init_killed_in_its_blob_stream_resumes_with_every_file_once(layout: Layout) -> None:
    size = _fill(layout.data, FILES)
    env = {**os.environ, "COMMITTER_LOG_FORMAT": "json"}
    init = subprocess.Popen([sys.executable, "-m", "committer", "init", *layout.args()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        importer = wait_until(lambda: _importers(init.pid), 60, "git fast-import to start", interval=0.002)[0].pid
        wait_until(lambda: bytes_read(importer) >= 0.3 * size or not alive(importer), 60,
                   "fast-import to read part of the backfill", interval=0.002)
        assert alive(importer), "fast-import ended before the kill: the tree is too small to hit it"
        init.kill()
    finally:
        init.wait(timeout=30)
    wait_until(lambda: not alive(importer), 30, "the orphaned fast-import to end")
    # Without `done` fast-import moved no branch: there is no half commit to resume from.
    assert ref_sha(layout.git_dir) is None
    assert fsck(layout.git_dir).ok

    proc = committer("init", *layout.args(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"committed {FILES} files" in proc.stdout
    assert not compare(disk_tree(layout.data), head_tree(layout.git_dir))
    assert git_out(layout.git_dir, "rev-list", "--count", "main", check=True).stdout.strip() == b"1"
    assert _added_once(layout.git_dir) == []
    assert _clean_status(layout) == ""
    check = fsck(layout.git_dir)
    assert check.ok and check.strict_ok, check
    assert not stale_locks(layout.git_dir)


def test_run_killed_with_its_importer_mid_backfill_resumes_with_every_file_once(
    layout: Layout, daemons: Daemons
) -> None:
    size = _fill(layout.data, FILES)
    daemon = daemons.start(layout, ready=False)
    pid = daemon.proc.pid
    importer = wait_until(lambda: _importers(pid), 60, "git fast-import to start", interval=0.002)[0]
    wait_until(lambda: bytes_read(importer.pid) >= 0.6 * size or not alive(importer.pid), 60,
               "fast-import to read most of the backfill", interval=0.002)
    assert alive(importer.pid), "fast-import ended before the kill: the tree is too small to hit it"
    sigkill(daemon)
    kill_group(importer)  # the whole container goes down, its git processes with it
    wait_until(lambda: not alive(importer.pid), 30, "fast-import to end")
    assert ref_sha(layout.git_dir) is None
    assert fsck(layout.git_dir).ok

    _fill(layout.data, 200, tag="-while-down")  # written while no daemon runs
    daemon = daemons.start(layout)
    settle(layout, timeout=120)
    assert daemon.stop() == 0, daemon.output()
    assert not compare(disk_tree(layout.data), head_tree(layout.git_dir))
    assert _added_once(layout.git_dir) == []
    assert _clean_status(layout) == ""
    check = fsck(layout.git_dir)
    assert check.ok and check.strict_ok, check
    assert not stale_locks(layout.git_dir)

