"""A git that hangs (a `git` wrapper first on the daemon's PATH runs `sleep 3600` instead):
every call is cut off by a deadline, retried, and the daemon stays responsive to SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from committer.commit.headlookup import MOST_PATHS
from committer.daemon.work import RETRY_MAX
from tests.conftest import DaemonProcess, Layout
from tests.faults.harness import (
    Daemons,
    GitWrapper,
    alive,
    fsck,
    nothing_pending,
    ref_sha,
    settle,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

GIT_TIMEOUT = 2.0  # COMMITTER_GIT_TIMEOUT: deadline of one local git process
PUSH_TIMEOUT = 2.0  # COMMITTER_PUSH_TIMEOUT: deadline of one network git process
SHUTDOWN_TIMEOUT = 3.0
# SIGTERM to exit: the in-flight git is cut short, the shutdown's own git calls and its last push are
# bounded (a few seconds). Waited for generously: far below what a hang that was not cut would take
# (push_timeout 2 min, git_timeout 5 min, an update-ref delayed 5 min), far above a loaded machine's delays.
STOP_BOUND = 60.0
# A failed commit is retried after a delay that doubles up to RETRY_MAX while the hang lasts.
RETRY_BOUND = RETRY_MAX + 30.0


def _env(wrapper: GitWrapper, **extra: str) -> dict[str, str]:
    return {**wrapper.env(), "COMMITTER_GIT_TIMEOUT": f"{GIT_TIMEOUT}s",
            "COMMITTER_SHUTDOWN_TIMEOUT": f"{SHUTDOWN_TIMEOUT}s", "COMMITTER_PUSH_INTERVAL": "200ms",
            "COMMITTER_PUSH_BACKOFF_MAX": "2s", **extra}


def _hung(wrapper: GitWrapper, sub: str, before: int) -> list[int]:
    """Pids of `sub` runs after the first `before` ones that are hanging right now."""
    return [pid for pid in wrapper.calls(sub)[before:] if alive(pid)]


def _sigterm(daemon: DaemonProcess) -> tuple[int | None, float]:
    """SIGTERM; (exit code or None if still running after STOP_BOUND, seconds taken)."""
    start = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = daemon.proc.wait(timeout=STOP_BOUND)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - start


def test_hung_push_is_cut_off_by_push_timeout_and_retried(
    layout: Layout, daemons: Daemons, git_wrapper: GitWrapper, remote_url: str
) -> None:
    remote = Path(remote_url.removeprefix("file://"))
    (layout.data / "README.md").write_text("kept\n")
    env = _env(git_wrapper, COMMITTER_PUSH_TIMEOUT=f"{PUSH_TIMEOUT}s")
    daemon = daemons.start(layout, "--remote", remote_url, env=env)
    wait_until(lambda: ref_sha(remote) == ref_sha(layout.git_dir), 20, "the first push")
    git_wrapper.hang("push", once=True)
    (layout.data / "a.md").write_text("pushed after one hung attempt\n")
    # The hung push lives push_timeout only: wait for it to have begun, not to be seen alive.
    wait_until(lambda: git_wrapper.taken("push"), 30, "a hanging push")
    failed = daemon.wait_event("git_push", timeout=60, where=lambda e: e.get("result") == "failed")[0]
    print(f"\nhung push cut off after {failed['duration_ms']} ms (push_timeout {PUSH_TIMEOUT}s): "
          f"{failed['message']}")
    assert failed["kind"] == "transient" and not failed["permanent"]
    assert failed["duration_ms"] < 600_000  # cut off, not the wrapper's hour of sleep
    wait_until(lambda: not any(alive(pid) for pid in git_wrapper.calls("push")), 10,
               "the hung push to be killed")
    wait_until(lambda: ref_sha(remote) == ref_sha(layout.git_dir), 30, "the retried push")
    assert "a.md" in settle(layout)
    # The remote's ref moves before the daemon hears back from git and logs the push.
    wait_until(lambda: daemon.events("git_push")[-1]["result"] == "ok", 10, "the retried push logged ok")
    code, _ = _sigterm(daemon)
    assert code == 0, daemon.output()


def test_sigterm_while_a_push_hangs(
    layout: Layout, daemons: Daemons, git_wrapper: GitWrapper, remote_url: str
) -> None:
    remote = Path(remote_url.removeprefix("file://"))
    (layout.data / "README.md").write_text("kept\n")
    daemon = daemons.start(layout, "--remote", remote_url, env=_env(git_wrapper))  # push_timeout: 2 min
    wait_until(lambda: ref_sha(remote) == ref_sha(layout.git_dir), 20, "the first push")
    git_wrapper.hang("push")
    before = len(git_wrapper.calls("push"))
    (layout.data / "a.md").write_text("committed, push hangs\n")
    wait_until(lambda: _hung(git_wrapper, "push", before), 20, "a hanging push")
    code, seconds = _sigterm(daemon)
    print(f"\nSIGTERM with a hung push: exit {code} after {seconds:.2f}s (bound {STOP_BOUND}s)")
    assert code == 0, f"no exit within {STOP_BOUND}s of SIGTERM\n{daemon.output()}"
    assert "a.md" in settle(layout, timeout=1)  # committed locally all the same
    wait_until(lambda: not any(alive(pid) for pid in git_wrapper.calls("push")), 10,
               "the hung push to be killed with the daemon")
    # the next start pushes what the hung push could not
    git_wrapper.clear()
    daemon = daemons.start(layout, "--remote", remote_url, env=_env(git_wrapper))
    wait_until(lambda: ref_sha(remote) == ref_sha(layout.git_dir), 20, "the push after the restart")
    assert daemon.stop() == 0


LOCAL_HANGS = [
    pytest.param("fast-import", "self", id="fast-import"),
    pytest.param("ls-tree", "self", id="ls-tree"),
    pytest.param("ls-tree", "child", id="ls-tree-child-holds-pipes"),
]


def _write(layout: Layout, sub: str, text: str) -> None:
    """a.md, and for ls-tree more files than one cat-file lookup answers (commit/headlookup.py): ls-tree
    is asked for HEAD's entries only for larger batches, or when the lookup fails."""
    if sub == "ls-tree":
        (layout.data / "many").mkdir(exist_ok=True)
        for n in range(MOST_PATHS + 6):
            (layout.data / "many" / f"n{n:03}.md").write_text(f"{text}{n}\n")
    (layout.data / "a.md").write_text(text)


def _hang(wrapper: GitWrapper, sub: str, how: str) -> None:
    if how == "child":
        wrapper.hang_in_child(sub)
    else:
        wrapper.hang(sub)


@pytest.mark.parametrize(("sub", "how"), LOCAL_HANGS)
def test_hung_local_git_is_cut_off_by_git_timeout_and_retried(
    layout: Layout, daemons: Daemons, git_wrapper: GitWrapper, sub: str, how: str
) -> None:
    (layout.data / "README.md").write_text("kept\n")
    daemon = daemons.start(layout, env=_env(git_wrapper))
    settle(layout)
    _hang(git_wrapper, sub, how)
    if sub == "fast-import":  # the next batch's fast-import was started ahead, before the hang: it commits one
        (layout.data / "primer.md").write_text("committed by the fast-import started ahead\n")
        settle(layout)
    before = len(git_wrapper.calls(sub))
    started = time.monotonic()
    _write(layout, sub, "committed after one hung attempt\n")
    # Each hung run lives git_timeout only: wait for one to have begun, not to be seen alive (a fast-import
    # started ahead may have begun before `before` was counted: then its cut-off's retry is the one seen).
    wait_until(lambda: len(git_wrapper.calls(sub)) > before, 30 + GIT_TIMEOUT, f"a hanging {sub}")
    failed = daemon.wait_event("commit_failed", timeout=60)[0]
    cut_after = time.monotonic() - started
    print(f"\nhung {sub} cut off within {cut_after:.2f}s of the write (git_timeout {GIT_TIMEOUT}s): "
          f"{failed['error']}")
    wait_until(lambda: not any(alive(pid) for pid in git_wrapper.calls(sub)), 30, f"the hung {sub} killed")
    git_wrapper.clear()
    settle(layout, timeout=RETRY_BOUND)  # the next retry commits it (later if the hang lasted several)
    assert daemon.proc.poll() is None
    (layout.data / "b.md").write_text("and the daemon goes on\n")
    settle(layout)
    assert daemon.stop() == 0, daemon.output()
    assert fsck(layout.git_dir).ok


@pytest.mark.parametrize(("sub", "how"), LOCAL_HANGS)
def test_sigterm_while_a_local_git_hangs(
    layout: Layout, daemons: Daemons, git_wrapper: GitWrapper, sub: str, how: str
) -> None:
    (layout.data / "README.md").write_text("kept\n")
    env = _env(git_wrapper, COMMITTER_GIT_TIMEOUT="5m")  # only SIGTERM can end the hang quickly
    daemon = daemons.start(layout, env=env)
    settle(layout)
    _hang(git_wrapper, sub, how)
    before = len(git_wrapper.calls(sub))
    _write(layout, sub, "written while git hangs\n")
    wait_until(lambda: _hung(git_wrapper, sub, before), 20, f"a hanging {sub}")
    code, seconds = _sigterm(daemon)
    print(f"\nSIGTERM with a hung {sub}: exit {code} after {seconds:.2f}s (bound {STOP_BOUND}s)")
    assert code is not None, f"still running {STOP_BOUND}s after SIGTERM\n{daemon.output()}"
    wait_until(lambda: not any(alive(pid) for pid in git_wrapper.calls(sub)), 10, f"the hung {sub} killed")
    # nothing is lost: the next start commits what the hung git could not
    git_wrapper.clear()
    daemon = daemons.start(layout, env=env)
    settle(layout)
    assert daemon.stop() == 0
    assert fsck(layout.git_dir).ok


def test_sigterm_while_a_push_records_its_result(
    layout: Layout, daemons: Daemons, git_wrapper: GitWrapper, remote_url: str
) -> None:
    """The push went through and the daemon is writing down what the remote has (a local
    `update-ref`, made slow here) when SIGTERM comes: the stop is quick and clean (no error logged),
    and the next start knows the remote has everything."""
    remote = Path(remote_url.removeprefix("file://"))
    (layout.data / "README.md").write_text("kept\n")
    env = _env(git_wrapper, COMMITTER_GIT_TIMEOUT="10m")  # only SIGTERM cuts the slow update-ref short
    daemon = daemons.start(layout, "--remote", remote_url, env=env)
    wait_until(lambda: ref_sha(remote) == ref_sha(layout.git_dir), 20, "the first push")
    git_wrapper.delay("update-ref", 300)
    before = len(git_wrapper.calls("update-ref"))
    (layout.data / "a.md").write_text("pushed, then SIGTERM\n")
    wait_until(lambda: _hung(git_wrapper, "update-ref", before), 20, "a slow update-ref after the push")
    assert ref_sha(remote) == ref_sha(layout.git_dir)
    code, seconds = _sigterm(daemon)
    print(f"\nSIGTERM while the push records its result: exit {code} after {seconds:.2f}s")
    assert code == 0, daemon.output()
    stopped = daemon
    git_wrapper.clear()
    daemon = daemons.start(layout, "--remote", remote_url, env=env)
    wait_until(lambda: nothing_pending(layout, remote_url), 20, "status to show no pending commit",
               interval=0.3)
    assert ref_sha(remote) == ref_sha(layout.git_dir)
    assert daemon.stop() == 0
    errors = [e for e in stopped.events() if e.get("level") == "error" or "exception" in e]
    assert not errors, f"a clean stop logged errors: {errors}"
