"""Long work is never silent: git's progress as a bar on a terminal (and nothing extra off it), and a progress
line in the daemon's log every progress_interval during a long start-up scan and a long push."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.core.progress import Step
from committer.sync import gitprogress
from tests.conftest import DaemonProcess, Layout, committer, git
from tests.core.test_logs_console import cli, on_terminal

FILES = 1000  # enough objects that git reports each phase
FAST = {"COMMITTER_PROGRESS_INTERVAL": "20ms"}


def many_files(layout: Layout, count: int = FILES) -> None:
    for n in range(count):
        (layout.data / f"note-{n}.md").write_text(f"note {n}\n")


def test_gits_progress_lines_are_read_as_steps() -> None:
    assert gitprogress.parse("Writing objects:  42% (420/1000), 1.20 MiB | 2.00 MiB/s") == Step(
        "Writing objects", 420, 1000, "1.20 MiB")
    assert gitprogress.parse("Enumerating objects: 1234, done.") == Step("Enumerating objects", 1234)
    assert gitprogress.parse("remote: Counting objects: 100% (3/3), done.") == Step("Counting objects", 3, 3)
    assert gitprogress.parse("Receiving objects:  10% (1/10)") == Step("Receiving objects", 1, 10)
    assert gitprogress.parse("To file:///tmp/x.git") is None
    assert gitprogress.parse("fatal: unable to access 'x': 50% (1/2)") is None


@pytest.mark.integration
def test_push_and_init_from_remote_show_gits_progress_on_a_terminal_and_nothing_extra_off_it(
        layout: Layout, mirror: Path) -> None:
    many_files(layout)
    assert committer("init", env=layout.env).returncode == 0
    code, out = on_terminal(cli("push", *layout.args(), "--remote", f"file://{mirror}"), layout.env)
    assert code == 0, out
    assert "pushing: writing objects" in out and f"{FILES + 2}/{FILES + 2}" in out, out
    assert git(mirror, "rev-parse", "main") == git(layout.git_dir, "rev-parse", "main")
    other = layout.root / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(other)], check=True)
    proc = committer("push", "--remote", f"file://{other}", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert "objects" not in proc.stdout + proc.stderr
    # a new machine taking that history: git's progress of the fetch
    taken = layout.root / "taken"
    taken.mkdir()
    code, out = on_terminal(cli("init", "--from-remote", "--data-dir", str(taken), "--git-dir",
                                str(layout.root / "taken.git"), "--remote", f"file://{mirror}"), {})
    assert code == 0, out
    assert "fetching: receiving objects" in out, out
    assert len(list(taken.iterdir())) == FILES


@pytest.mark.integration
def test_the_daemon_logs_progress_during_a_long_start_up_scan_and_a_long_push(
        layout: Layout, mirror: Path, start_daemon: Callable[..., DaemonProcess]) -> None:
    many_files(layout)
    daemon = start_daemon("--remote", f"file://{mirror}", env=FAST)  # no init: the start-up scan commits it all
    names = [e["event"] for e in daemon.events()]
    scans = daemon.events("reconcile_progress")
    assert scans and all(e["why"] == "start" for e in scans)
    assert names.index("reconcile_progress") < names.index("daemon_ready")
    assert max(e.get("files", 0) for e in scans) > 0
    daemon.wait_event("git_push", where=lambda e: e["result"] == "ok", timeout=60)
    pushes = daemon.events("push_progress")
    assert pushes and any(e.get("phase", "").endswith("objects") for e in pushes), daemon.output()
    assert all(e["remote"] == f"file://{mirror}" for e in pushes)


@pytest.mark.integration
def test_a_push_refused_halfway_on_a_terminal_says_why_without_gits_counts(layout: Layout, mirror: Path) -> None:
    many_files(layout, 300)
    assert committer("init", env=layout.env).returncode == 0
    hook = mirror / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'the hook says no'\nexit 1\n")
    hook.chmod(0o755)
    code, out = on_terminal(cli("push", *layout.args(), "--remote", f"file://{mirror}"), layout.env)
    assert code == 1 and "pushing: writing objects" in out, out  # the bar was there
    error = out[out.index("committer: error:"):]
    assert "the hook says no" in error and "pre-receive hook declined" in error, error
    for noise in ("Counting objects", "Writing objects", "%", "Delta compression", "Total 302"):
        assert noise not in error, error
