"""What a network call writes in the git dir, measured from the files its processes hold open (tmpfs counts
no write_bytes), and the removal of what it leaves once it was killed, on real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from committer.git import leftovers
from tests.conftest import wait_for

# Writes `size` bytes to a file, says so on stdout, then waits (holding it open) until killed.
_WRITER = """
import sys, time
with open(sys.argv[1], sys.argv[2]) as fh:
    if "w" in sys.argv[2]:
        fh.write(b"x" * int(sys.argv[3]))
        fh.flush()
    print("written", flush=True)
    time.sleep(600)
"""


def _hold(path: Path, mode: str, size: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), mode, str(size)], start_new_session=True,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"written\n"
    return proc


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def test_written_counts_the_temporaries_the_call_writes_and_nothing_else(tmp_path: Path) -> None:
    git_dir = tmp_path / "k.git"
    (git_dir / "objects" / "pack").mkdir(parents=True)
    (git_dir / "lfs" / "incomplete").mkdir(parents=True)
    (git_dir / "objects" / "pack" / "pack-old.pack").write_bytes(b"p" * 50_000)
    call = leftovers.Call(git_dir)
    ours = [_hold(git_dir / "objects" / "pack" / "tmp_pack_a", "wb", 300_000),
            _hold(git_dir / "lfs" / "incomplete" / "abc", "wb", 20_000),
            _hold(git_dir / "objects" / "pack" / "pack-old.pack", "rb", 0)]  # read only: not written
    other = _hold(git_dir / "objects" / "pack" / "tmp_pack_b", "wb", 1_000_000)  # another process's commit
    try:
        assert call.written(p.pid for p in ours) == 320_000
        call.track(other.pid)  # cleaning after `other` (killed below) removes only what nobody holds open
        for proc in (*ours, other):
            _end(proc)
        removed = call.clean(wait=5)
        assert set(removed) == {"objects/pack/tmp_pack_a", "objects/pack/tmp_pack_b", "lfs/incomplete/abc"}
    finally:
        call.untrack()
        for proc in (*ours, other):
            _end(proc)
    assert (git_dir / "objects" / "pack" / "pack-old.pack").exists()


def test_clean_leaves_a_file_a_live_process_holds(tmp_path: Path) -> None:
    git_dir = tmp_path / "k.git"
    (git_dir / "objects" / "pack").mkdir(parents=True)
    call = leftovers.Call(git_dir)
    holder = _hold(git_dir / "objects" / "pack" / "tmp_pack_c", "wb", 1000)
    try:
        assert call.clean(wait=0) == {}
        assert (git_dir / "objects" / "pack" / "tmp_pack_c").exists()
    finally:
        _end(holder)
    wait_for(lambda: leftovers.remove(git_dir, call.before), what="the file once nobody holds it")
