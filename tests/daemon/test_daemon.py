"""`committer run` as a real process: real inotify, real signals, real git."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, commit_count, committer, git, show, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def committed(layout: Layout, *paths: str) -> Callable[[], bool]:
    return lambda: set(paths) <= tree_files(layout.git_dir)


def test_a_write_becomes_one_commit_with_a_bm_meta_trailer(layout: Layout, start_daemon: Start) -> None:
    daemon = start_daemon()
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "hello.md").write_text("hello")
    wait_for(committed(layout, "notes/hello.md"), what="commit of notes/hello.md")
    raw = git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)").strip()
    meta = json.loads(raw)
    assert meta["added"] == 1 and meta["v"] == 1 and meta["first_event"].endswith("Z")
    event = daemon.wait_event("git_commit", where=lambda e: e.get("added") == 1)[0]
    assert event["sha"] == git(layout.git_dir, "rev-parse", "HEAD").strip()
    assert event["batch"] == meta["batch"] and event["duration_ms"] >= 0
    assert not (layout.data / ".git").exists()


def test_a_burst_of_writes_is_one_batch(layout: Layout, start_daemon: Start) -> None:
    daemon = start_daemon("--debounce", "600ms")
    for i in range(100):
        (layout.data / f"n{i:03}.md").write_text(str(i))
    wait_for(lambda: len(tree_files(layout.git_dir)) == 100, what="100 files committed")
    daemon.stop()
    assert commit_count(layout.git_dir) <= 2


def test_a_file_rewritten_continuously_is_committed_within_max_delay(
    layout: Layout, start_daemon: Start
) -> None:
    start_daemon("--debounce", "1s", "--max-delay", "1500ms")
    stop = threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            (layout.data / "busy.log.md").write_text(str(n))
            n += 1
            stop.wait(0.1)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        wait_for(committed(layout, "busy.log.md"), timeout=8, what="commit while the file keeps changing")
        assert writer.is_alive()
    finally:
        stop.set()
        writer.join()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_commits_pending_changes_and_exits_0(
    layout: Layout, start_daemon: Start, signum: int
) -> None:
    daemon = start_daemon("--debounce", "30s", "--max-delay", "60s")
    (layout.data / "pending.md").write_text("inside the debounce window")
    daemon.stop(signum)
    assert daemon.proc.returncode == 0, daemon.output()
    assert tree_files(layout.git_dir) == {"pending.md"}
    assert "Traceback" not in daemon.output()


def test_changes_made_while_the_daemon_was_down_are_committed_at_start(
    layout: Layout, start_daemon: Start
) -> None:
    (layout.data / "a.md").write_text("a")
    (layout.data / "b.md").write_text("b")
    first = start_daemon()
    assert first.stop() == 0
    (layout.data / "a.md").write_text("edited offline")
    (layout.data / "b.md").unlink()
    (layout.data / "c.md").write_text("added offline")
    start_daemon()
    wait_for(lambda: tree_files(layout.git_dir) == {"a.md", "c.md"}, what="reconcile at start")
    assert show(layout.git_dir, "a.md") == b"edited offline"


def test_renames_and_directory_moves_in_and_out(layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    (layout.data / "proj").mkdir()
    for i in range(5):
        (layout.data / "proj" / f"{i}.md").write_text(str(i))
    start_daemon()
    os.rename(layout.data / "proj", layout.data / "renamed")
    wait_for(lambda: tree_files(layout.git_dir) == {f"renamed/{i}.md" for i in range(5)}, what="dir rename")
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "x.md").write_text("moved in")
    shutil.move(str(outside), str(layout.data / "incoming"))
    wait_for(committed(layout, "incoming/deep/x.md"), what="directory moved in")
    shutil.move(str(layout.data / "renamed"), str(tmp_path / "gone"))
    wait_for(lambda: tree_files(layout.git_dir) == {"incoming/deep/x.md"}, what="directory moved out")


def test_poll_observer_commits_changes(layout: Layout, start_daemon: Start) -> None:
    daemon = start_daemon("--observer", "poll", "--poll-interval", "200ms")
    assert daemon.events("daemon_start")[0]["observer"] == "poll"
    (layout.data / "polled.md").write_text("seen by polling")
    wait_for(committed(layout, "polled.md"), what="poll observer commit")


def test_a_second_daemon_on_the_same_repository_is_refused(layout: Layout, start_daemon: Start) -> None:
    first = start_daemon()
    proc = committer("run", *layout.args())
    assert proc.returncode == 3
    assert f"pid {first.proc.pid}" in proc.stderr and "already running" in proc.stderr
    assert "Traceback" not in proc.stderr
    status = json.loads(committer("status", "--json", *layout.args()).stdout)
    assert status["running"] is True and status["pid"] == first.proc.pid


def test_a_killed_daemon_never_blocks_the_next_and_stale_git_locks_are_cleared(
    layout: Layout, start_daemon: Start
) -> None:
    (layout.data / "a.md").write_text("a")
    first = start_daemon()
    first.kill()
    (layout.git_dir / "index.lock").write_text("")
    (layout.git_dir / "refs" / "heads" / "main.lock").write_text("")
    (layout.data / "b.md").write_text("b")
    second = start_daemon()
    removed = {Path(e["path"]).name for e in second.events("stale_lock_removed")}
    assert removed == {"index.lock", "main.lock"}
    wait_for(committed(layout, "a.md", "b.md"), what="commit after stale locks")


def test_vanishing_and_unreadable_files_do_not_stop_the_batch(
    layout: Layout, start_daemon: Start
) -> None:
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv cannot make a file unreadable")
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    daemon = start_daemon(prefix=prefix)
    secret = layout.data / "locked.md"
    secret.write_text("cannot read me")
    secret.chmod(0o000)
    for i in range(20):
        flash = layout.data / f"flash{i}.md"
        flash.write_text("here and gone")
        flash.unlink()
    (layout.data / "fine.md").write_text("fine")
    wait_for(committed(layout, "fine.md"), what="the readable file")
    skip = daemon.wait_event("skip", where=lambda e: e.get("path") == "locked.md")[0]
    assert "cannot read" in skip["reason"]
    assert tree_files(layout.git_dir) == {"fine.md"}
    status = json.loads(committer("status", "--json", *layout.args()).stdout)
    assert {"path": "locked.md", "reason": skip["reason"]} in status["held_files"]
    secret.chmod(0o644)
    (layout.data / "locked.md").write_text("readable now")
    wait_for(committed(layout, "locked.md"), what="the file once readable")
    assert not daemon.events("commit_failed")


def test_nested_repository_created_while_running_is_skipped(layout: Layout, start_daemon: Start) -> None:
    daemon = start_daemon()
    nested = layout.data / "clone"
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    (nested / "file.md").write_text("inside another repository")
    (layout.data / "outside.md").write_text("ok")
    wait_for(committed(layout, "outside.md"), what="the file beside the nested repository")
    daemon.wait_event("skip", where=lambda e: e.get("path") == "clone")
    daemon.stop()
    assert tree_files(layout.git_dir) == {"outside.md"}


def test_ignored_paths_never_trigger_a_commit(layout: Layout, start_daemon: Start) -> None:
    daemon = start_daemon()
    for name in (".x.md.swp", "x.md~", "draft.tmp", ".DS_Store"):
        (layout.data / name).write_text("noise")
    (layout.data / "sentinel.md").write_text("s")
    wait_for(committed(layout, "sentinel.md"), what="sentinel")
    assert tree_files(layout.git_dir) == {"sentinel.md"}
    assert len(daemon.events("git_commit")) == 1


def test_bmignore_changes_apply_without_restart(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "build").mkdir()
    (layout.data / "build" / "out.bin").write_text("artifact")
    (layout.data / ".bmignore").write_text("build/\n")
    start_daemon()
    wait_for(committed(layout, ".bmignore"), what=".bmignore committed")
    assert "build/out.bin" not in tree_files(layout.git_dir)
    (layout.data / ".bmignore").write_text("# nothing ignored now\n")
    wait_for(committed(layout, "build/out.bin"), what="previously ignored file committed")


def test_idle_daemon_makes_no_commits_and_stays_quiet(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "a.md").write_text("a")
    daemon = start_daemon()
    before = commit_count(layout.git_dir)
    cpu_before = _cpu_seconds(daemon.proc.pid)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert daemon.proc.poll() is None
        time.sleep(0.1)
    assert commit_count(layout.git_dir) == before
    # generous bound: only a busy loop would come close
    assert _cpu_seconds(daemon.proc.pid) - cpu_before < 0.5


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_lost_instance_lock_exits_4_so_a_restart_fixes_it(layout: Layout, start_daemon: Start) -> None:
    daemon = start_daemon()
    shutil.rmtree(layout.git_dir)
    assert daemon.proc.wait(timeout=20) == 4
    assert daemon.events("instance_lock_lost")


def test_a_data_directory_gone_past_its_timeout_exits_5(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "a.md").write_text("a")
    daemon = start_daemon(env={"COMMITTER_MISSING_DATA_TIMEOUT": "1s"})
    shutil.rmtree(layout.data)
    assert daemon.proc.wait(timeout=30) == 5
    gone = daemon.events("data_dir_gone")
    assert gone and "mount the data directory" in gone[0]["action"]
    assert tree_files(layout.git_dir) == {"a.md"}


def test_the_periodic_reconcile_commits_what_the_watcher_did_not_see(layout: Layout, start_daemon: Start) -> None:
    daemon = start_daemon("--observer", "poll", "--poll-interval", "1h",
                          env={"COMMITTER_RECONCILE_INTERVAL": "1s"})
    (layout.data / "unseen.md").write_text("no watcher event will report this")
    wait_for(committed(layout, "unseen.md"), timeout=20, what="commit by the periodic reconcile")
    assert any(e["why"] == "periodic" for e in daemon.events("reconcile"))
