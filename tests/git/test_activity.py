"""Telling a working process group from an idle one, on real processes."""

from __future__ import annotations

import subprocess
import sys
import time

from committer.git.activity import Quiet, read_group
from tests.conftest import wait_for


def _start(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_an_idle_group_expires_and_a_working_one_does_not() -> None:
    idle = _start("import time; time.sleep(60)")
    busy = _start("import os, time\nwhile True:\n    os.write(1, b'x' * 100)\n    time.sleep(0.05)")
    try:
        wait_for(lambda: read_group(idle.pid).members and read_group(busy.pid).members, what="both groups")
        # The busy group writes every 50 ms; its limit leaves room for a machine too loaded to run it for a
        # while, and the window it is watched over is still longer than the idle group needs to expire.
        quiet_idle, quiet_busy = Quiet(idle.pid, 0.5), Quiet(busy.pid, 3.0)
        wait_for(quiet_idle.expired, timeout=10, interval=0.1, what="the idle group to expire")
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:  # longer than its limit: only the writes keep it alive
            assert not quiet_busy.expired()
            time.sleep(0.1)
    finally:
        for proc in (idle, busy):
            proc.kill()
            proc.wait()


def test_a_group_that_is_gone_reads_as_empty() -> None:
    proc = _start("pass")
    proc.wait()
    reading = read_group(proc.pid)
    assert reading.members == frozenset() and reading.cpu == 0 and reading.io == 0
