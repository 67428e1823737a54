"""Edge cases of the pull side.

Merges where git moves a path aside (file/directory conflicts), remote paths that are ignored here,
a mode-only change, LFS on both sides, two `committer pull` at once, a repository without commits,
and a daemon stopping while a fetch hangs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, commit_count, committer, git, show, tree_files, wait_for
from tests.faults.harness import child_running
from tests.sync.test_pull import Clone, pull, start, status

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def head(git_dir: Path, ref: str = "refs/heads/main") -> str:
    return git(git_dir, "rev-parse", "-q", "--verify", ref, check=False).strip()


# -- merges where git's merge-tree moves a path aside -------------------------------------------


def test_merge_file_here_directory_there_keeps_the_local_file(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    """Local adds file `x` (not pushed), the remote adds `x/y.md`: git merge-tree reports the conflict
    under `x~<commit>`, a name in neither tree; the local file must survive as a conflict copy."""
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.commit({"x/y.md": "remote\n"})
    (layout.data / "x").write_text("local file x\n")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    on_disk = {p.relative_to(layout.data).as_posix(): p.read_text() for p in layout.data.rglob("*") if p.is_file()}
    assert "local file x\n" in on_disk.values(), on_disk
    blobs = {show(layout.git_dir, p) for p in tree_files(layout.git_dir)}
    assert b"local file x\n" in blobs
    assert status(env)["conflicts"], "a conflict must be reported"


def test_merge_directory_here_file_there_keeps_the_remote_file(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    """The reverse: local adds `x/y.md`, the remote adds file `x`: the remote's file must stay in the
    merge commit (as a conflict copy), never be deleted on the remote by the push that follows."""
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.commit({"x": "remote file x\n"})
    (layout.data / "x").mkdir()
    (layout.data / "x" / "y.md").write_text("local\n")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    blobs = {show(mirror, p, "main") for p in tree_files(mirror, "main")}
    assert b"remote file x\n" in blobs
    on_disk = [p.read_text() for p in layout.data.rglob("*") if p.is_file()]
    assert "remote file x\n" in on_disk


# -- echo commits -------------------------------------------------------------------------------


def test_remote_files_ignored_here_are_not_deleted_from_the_remote(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    """A remote commit with `.env` and `x.tmp` (ignored here by default): the next reconcile must not
    untrack them (an echo commit whose push would delete them on the remote)."""
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({".env": "KEY=1\n", "x.tmp": "t\n", "b.md": "b\n"})
    assert pull(env).returncode == 0
    assert head(layout.git_dir) == remote_head
    assert committer("run", "--once", env=env).returncode == 0
    assert head(layout.git_dir) == remote_head
    assert {".env", "x.tmp"} <= tree_files(mirror, "main")


def test_a_mode_only_change_on_the_remote_is_applied_and_not_reverted(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    """`chmod +x` on the remote (same blob): the file on disk becomes executable, and no reconcile
    commits 100755 -> 100644 back."""
    env = start(layout, f"file://{mirror}", {"run.sh": "echo hi\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.run("pull", "-q", "--ff-only", "origin", "main")
    (clone.path / "run.sh").chmod(0o755)
    remote_head = clone.commit({})
    assert pull(env).returncode == 0
    assert head(layout.git_dir) == remote_head
    assert (layout.data / "run.sh").stat().st_mode & stat.S_IXUSR
    assert committer("run", "--once", env=env).returncode == 0
    assert head(layout.git_dir) == remote_head


def test_a_pulled_file_above_lfs_threshold_makes_no_echo_commit(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    """A regular (non-LFS) blob at or above lfs_threshold pulled in: the watcher's batch must not store
    it again through LFS and commit `big.txt` as a pointer."""
    if shutil.which("git-lfs") is None:
        pytest.skip("git-lfs is not installed")
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"},
                env={"COMMITTER_LFS_THRESHOLD": "1000", "COMMITTER_PUSH_INTERVAL": "200ms"})
    daemon = start_daemon("--pull-interval", "300ms", "--log-level", "debug", env=env)
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"big.txt": "x" * 3000})
    daemon.wait_event("git_pull", where=lambda e: e.get("new") == remote_head)
    daemon.wait_event("no_commit", where=lambda e: e.get("what") == "batch", timeout=5)
    assert daemon.stop() == 0
    assert head(layout.git_dir) == remote_head


def test_an_lfs_file_pushed_elsewhere_is_not_written_as_its_pointer(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    """Another clone pushes an LFS file (object uploaded to the remote): the pull writes the content,
    not the pointer text."""
    if shutil.which("git-lfs") is None:
        pytest.skip("git-lfs is not installed")
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone_env = {**os.environ, "HOME": str(tmp_path)}
    clone = Clone(f"file://{mirror}", tmp_path / "clone", env=clone_env)
    clone.run("lfs", "install", "--local")
    clone.run("lfs", "track", "*.bin")
    content = bytes(range(256)) * 12
    clone.run("pull", "-q", "--ff-only", "origin", "main")
    (clone.path / "big.bin").write_bytes(content)
    clone.commit({})
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    written = (layout.data / "big.bin").read_bytes()
    assert not written.startswith(b"version https://git-lfs"), written[:60]
    assert written == content


# -- the instance lock --------------------------------------------------------------------------


def test_two_pulls_at_once_without_a_daemon_do_not_kill_each_other(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    """The second `committer pull` finds the first holding the instance lock: it must wait for it, never
    take it for a daemon and send it SIGUSR1 (whose default action would kill it mid-pull)."""
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.commit({"b.md": "b\n"})
    # A slow transport (an ssh stand-in that waits, then runs git locally) keeps the first pull busy.
    slow = _slow_ssh(tmp_path, 3)
    env = {**env, "COMMITTER_REMOTE": f"ssh://localhost{mirror}", "COMMITTER_GIT_SSH_COMMAND": str(slow)}
    first = subprocess.Popen([*_cli(), "pull"], env={**os.environ, "COMMITTER_LOG_FORMAT": "json", **env},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = layout.git_dir / "committer" / "daemon.lock"
    wait_for(lambda: lock.is_file() and lock.read_text().split()[:1] == [str(first.pid)], what="the first pull's lock")
    second = committer("pull", env=env)
    _out, err = first.communicate(timeout=60)
    assert first.returncode in (0, 1), f"first pull died with {first.returncode}: {err}"
    assert "did not answer" not in second.stderr, second.stderr


def _slow_ssh(tmp_path: Path, seconds: float) -> Path:
    """An ssh stand-in for ssh://localhost/<path> remotes: waits, then runs git's command locally."""
    slow = tmp_path / "slow-ssh"
    slow.write_text(f'#!/bin/bash\nsleep {seconds}\neval "${{@: -1}}"\n')
    slow.chmod(0o755)
    return slow


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "committer"]


# -- a repository without commits ---------------------------------------------------------------


def test_pull_into_a_repository_without_commits_keeps_one_history(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    """`init` ran on an empty data directory (no commit), the remote then got commits, and files were
    added here: `committer pull` must not commit them first as an unrelated root (every later pull
    refused, every push non-fast-forward) but take the remote history and keep them."""
    env = start(layout, f"file://{mirror}", {})
    assert commit_count(layout.git_dir) == 0
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", "-b", "main", str(other)], check=True)
    (other / "r.md").write_text("remote\n")
    subprocess.run(["git", "-C", str(other), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.name=O", "-c", "user.email=o@x", "commit", "-qm", "r"],
                   check=True)
    subprocess.run(["git", "-C", str(other), "push", "-q", f"file://{mirror}", "HEAD:main"], check=True)
    (layout.data / "l.md").write_text("local\n")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "r.md").read_text() == "remote\n"
    assert (layout.data / "l.md").read_text() == "local\n"


# -- stopping the daemon ------------------------------------------------------------------------


@pytest.fixture
def hanging_remote() -> Iterator[str]:
    """An HTTP remote that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/repo.git"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_sigterm_during_a_hanging_fetch_still_stops_within_shutdown_timeout(
    layout: Layout, start_daemon: Start, hanging_remote: str
) -> None:
    """A fetch that hangs must not hold the stop for its own deadline (push_timeout), past
    shutdown_timeout and systemd's TimeoutStopSec=30s: it is killed, and what is pending committed."""
    (layout.data / "a.md").write_text("a\n")
    assert committer("init", env=layout.env).returncode == 0
    env = {**layout.env, "COMMITTER_REMOTE": hanging_remote, "COMMITTER_PUSH_TIMEOUT": "10m",
           "COMMITTER_SHUTDOWN_TIMEOUT": "2s"}
    daemon = start_daemon("--pull-interval", "200ms", env=env)
    wait_for(lambda: child_running(daemon.proc.pid, "fetch"), what="the first fetch under way (it hangs)")
    (layout.data / "b.md").write_text("typed just before the stop\n")
    daemon.proc.send_signal(signal.SIGTERM)
    # Bounded by shutdown_timeout plus the last commit (seconds), far below the fetch's own 10 minutes.
    daemon.proc.wait(timeout=60)
    assert "b.md" in tree_files(layout.git_dir)


# -- what the daemon remembers ------------------------------------------------------------------


def test_a_webhook_pull_queued_when_the_daemon_stops_is_not_lost(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    """The webhook was answered 202 ("pull_queued"), then the daemon got SIGTERM while fetching: a
    webhook-only daemon (no pull_interval) fetches at its next start, so the commit still arrives."""
    from tests.daemon.test_daemon_http import free_port
    from tests.daemon.test_daemon_pull import SECRET, post

    env = start(layout, f"file://{mirror}", {"a.md": "a\n"}, env={"COMMITTER_WEBHOOK_SECRET": SECRET})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"a.md": "a, from the remote\n"})
    slow = {**env, "COMMITTER_REMOTE": f"ssh://localhost{mirror}",
            "COMMITTER_GIT_SSH_COMMAND": str(_slow_ssh(tmp_path, 2))}
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", env=slow)
    event = {"ref": "refs/heads/main", "after": remote_head, "forced": False, "deleted": False}
    assert post(port, "push", event, "d-1")[0] == 202
    wait_for(lambda: child_running(daemon.proc.pid, "fetch"), what="the webhook's fetch under way")
    assert daemon.stop() == 0
    assert (layout.data / "a.md").read_text() == "a\n"
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", env=env)
    wait_for(lambda: (layout.data / "a.md").read_text() == "a, from the remote\n", timeout=10,
             what="the queued pull applied after the restart")
    assert daemon.stop() == 0


def test_status_clears_a_refused_forced_update_once_the_remote_is_back(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    """A forced update was refused (status: git_conflict); then the remote was force-pushed back to
    this repository's head: status must stop reporting the refused update."""
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"}, env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    ours = head(layout.git_dir)
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.run("commit", "-q", "--amend", "--allow-empty", "-m", "rewritten")
    clone.run("push", "-q", "--force", "origin", "HEAD:main")
    daemon = start_daemon("--pull-interval", "300ms", env=env)
    daemon.wait_event("git_conflict")
    clone.run("push", "-q", "--force", "origin", f"{ours}:main")  # the remote is as we left it
    wait_for(lambda: (status(env)["last_error"] or {}).get("kind") != "git_conflict", timeout=15,
             what="status to drop the refused update once the remote is back at our head")
    assert daemon.stop() == 0
