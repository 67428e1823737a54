"""The git dir's filesystem fills up while committing: the commit fails cleanly, nothing points at
a missing object, the daemon keeps running and retries, and commits once space is back."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Layout
from tests.faults.harness import Daemons, fsck, git_out, ref_sha, settle, stale_locks

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def _umount(where: Path) -> None:
    if _run("umount", str(where)).returncode != 0:
        _run("umount", "-l", str(where))  # busy: detach now, the kernel frees it when the last user goes


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB filesystem: tmpfs, else a loop-mounted ext4 image; skipped where neither mounts."""
    where = tmp_path / "small-fs"
    where.mkdir()
    tmpfs = _run("mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(where))
    reasons = [f"tmpfs: {tmpfs.stderr.strip() or tmpfs.returncode}"]
    if tmpfs.returncode != 0:
        image = tmp_path / "small-fs.img"
        with open(image, "wb") as fh:
            fh.truncate(16 << 20)
        mkfs = _run("mkfs.ext4", "-q", "-F", str(image)) if shutil.which("mkfs.ext4") else None
        loop = _run("mount", "-o", "loop", str(image), str(where)) if mkfs and mkfs.returncode == 0 else None
        if loop is None or loop.returncode != 0:
            reasons.append(f"loop ext4: {(loop.stderr.strip() if loop else 'mkfs.ext4 unavailable or failed')}")
            pytest.skip("cannot mount a small filesystem here (" + "; ".join(reasons) + ")")
    try:
        yield where
    finally:
        _umount(where)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem says ENOSPC, down to single bytes: no block is left."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def _refs_resolve(git_dir: Path) -> None:
    """Every reference names an object that exists, with its whole tree."""
    refs = git_out(git_dir, "for-each-ref", "--format=%(objectname) %(refname)", check=True).stdout.decode()
    for line in refs.splitlines():
        sha, ref = line.split(" ", 1)
        assert git_out(git_dir, "cat-file", "-e", sha).returncode == 0, f"{ref} -> missing {sha}"
    assert git_out(git_dir, "ls-tree", "-r", "HEAD").returncode == 0


def test_disk_full_while_committing(tmp_path: Path, small_fs: Path, daemons: Daemons) -> None:
    data = tmp_path / "data"
    data.mkdir()
    layout = Layout(tmp_path, data, small_fs / "knowledge.git")
    (data / "README.md").write_text("kept\n")
    daemon = daemons.start(layout)
    settle(layout)
    head = ref_sha(layout.git_dir)

    filler = _fill(small_fs)
    with contextlib.suppress(OSError):
        (small_fs / "probe").write_bytes(b"x")
    assert os.statvfs(small_fs).f_bavail == 0
    payload = os.urandom(64 << 10)  # incompressible: needs real blocks
    (data / "big.bin").write_bytes(payload)
    (data / "note.md").write_text("written while the git dir's disk is full\n")

    failures = daemon.wait_event("commit_failed", timeout=30, count=2)  # the failure and one retry
    print(f"\nwhile full: {[f['error'][:160] for f in failures]}")
    assert daemon.proc.poll() is None, daemon.output()
    assert ref_sha(layout.git_dir) == head  # the branch did not move to a commit that is not there
    _refs_resolve(layout.git_dir)
    check = fsck(layout.git_dir)
    assert check.ok, check

    filler.unlink()
    settle(layout, timeout=70)  # the next retry (backoff 2 s, 4 s, 8 s ...) commits it
    assert daemon.proc.poll() is None
    (data / "after.md").write_text("space is back\n")
    settle(layout)
    assert daemon.stop() == 0, daemon.output()
    _refs_resolve(layout.git_dir)
    check = fsck(layout.git_dir)
    assert check.ok and check.strict_ok, check
    assert not stale_locks(layout.git_dir), stale_locks(layout.git_dir)
