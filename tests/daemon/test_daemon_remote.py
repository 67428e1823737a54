"""The daemon and the CLI with a remote: pushes, the last push on stop, and joining remote history."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, commit_count, committer, git, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def remote_files(mirror: Path) -> set[str]:
    return tree_files(mirror, "refs/heads/main") if git(mirror, "rev-parse", "-q", "--verify",
                                                        "refs/heads/main", check=False).strip() else set()


def seed_remote(tmp_path: Path, mirror: Path, files: dict[str, str]) -> None:
    """Another clone pushes history to the remote first."""
    work = tmp_path / "elsewhere"
    subprocess.run(["git", "clone", "-q", str(mirror), str(work)], check=True, capture_output=True)
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    run = ["git", "-C", str(work), "-c", "user.name=x", "-c", "user.email=x@y"]
    subprocess.run([*run, "add", "-A"], check=True)
    subprocess.run([*run, "commit", "-qm", "from elsewhere"], check=True)
    subprocess.run([*run, "push", "-q", "origin", "HEAD:main"], check=True, capture_output=True)


def test_commits_reach_the_remote(layout: Layout, start_daemon: Start, mirror: Path) -> None:
    daemon = start_daemon("--remote", f"file://{mirror}", env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    (layout.data / "a.md").write_text("to the mirror")
    wait_for(lambda: "a.md" in remote_files(mirror), what="push to the mirror")
    daemon.wait_event("git_push")
    status = json.loads(committer("status", "--json", *layout.args(), "--remote", f"file://{mirror}").stdout)
    assert status["pending_commits"] == 0 and status["last_push_at"] and status["running"]


def test_stop_pushes_what_was_pending(layout: Layout, start_daemon: Start, mirror: Path) -> None:
    daemon = start_daemon("--remote", f"file://{mirror}", "--debounce", "30s", "--max-delay", "60s",
                          env={"COMMITTER_PUSH_INTERVAL": "1h"})
    (layout.data / "last.md").write_text("written just before stop")
    assert daemon.stop() == 0, daemon.output()
    assert remote_files(mirror) == {"last.md"}


def test_run_once_and_push_fail_visibly_when_the_remote_is_gone(layout: Layout, tmp_path: Path) -> None:
    gone = f"file://{tmp_path / 'no-such-remote.git'}"
    (layout.data / "a.md").write_text("kept locally")
    proc = committer("run", "--once", "--remote", gone, env=layout.env)
    assert proc.returncode == 1
    assert tree_files(layout.git_dir) == {"a.md"}
    pushed = committer("push", "--remote", gone, env=layout.env)
    assert pushed.returncode != 0 and "Traceback" not in pushed.stderr
    assert pushed.stderr.strip().splitlines()[-1].startswith("committer: error: ")
    status = json.loads(committer("status", "--json", "--remote", gone, env=layout.env).stdout)
    assert status["pending_commits"] == 1 and status["oldest_pending_at"]


def test_committer_push_pushes_now(layout: Layout, mirror: Path) -> None:
    (layout.data / "a.md").write_text("a")
    assert committer("init", env=layout.env).returncode == 0
    proc = committer("push", "--remote", f"file://{mirror}", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert "pushed 1 commit" in proc.stdout
    assert remote_files(mirror) == {"a.md"}


def test_init_refuses_a_remote_with_history_unless_told_which_side_wins(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    seed_remote(tmp_path, mirror, {"remote.md": "from the remote"})
    (layout.data / "local.md").write_text("local")
    env = {**layout.env, "COMMITTER_REMOTE": f"file://{mirror}"}
    refused = committer("init", env=env)
    assert refused.returncode == 2 and "already has history" in refused.stderr
    assert commit_count(layout.git_dir) == 0
    assert committer("init", "--from-remote", env=env).returncode == 1  # the data directory is not empty
    adopted = committer("init", "--adopt", env=env)
    assert adopted.returncode == 0, adopted.stderr
    assert tree_files(layout.git_dir) == {"local.md"}  # the local directory is the truth
    assert commit_count(layout.git_dir) == 2  # ... on top of the remote history
    assert remote_files(mirror) == {"local.md"}


def test_init_from_remote_fills_an_empty_data_directory(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    seed_remote(tmp_path, mirror, {"notes/r.md": "from the remote"})
    proc = committer("init", "--from-remote", "--remote", f"file://{mirror}", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "notes" / "r.md").read_text() == "from the remote"
    assert committer("run", "--once", "--remote", f"file://{mirror}", env=layout.env).returncode == 0
    assert commit_count(layout.git_dir) == 1  # no echo commit of what was checked out


def test_a_sidecar_on_a_fresh_volume_restores_from_the_remote(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    seed_remote(tmp_path, mirror, {"kb/page.md": "backed up"})
    daemon = start_daemon("--remote", f"file://{mirror}")
    assert daemon.events("remote_history_restored")
    assert (layout.data / "kb" / "page.md").read_text() == "backed up"
    (layout.data / "kb" / "new.md").write_text("new")
    wait_for(lambda: remote_files(mirror) == {"kb/page.md", "kb/new.md"}, what="push on the restored history")


def test_the_token_never_leaks_from_the_daemon(layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    import base64
    import os

    from tests.gitserver import GitHTTPServer

    token = "ghp_DaemonLeakCheck0123456789abcdefABCD"
    server = GitHTTPServer(tmp_path / "served", token=token)
    server.start()
    forbidden = [token.encode(), base64.b64encode(f"x-access-token:{token}".encode())]
    seen: dict[int, bytes] = {}
    try:
        server.set_mode("hang")
        daemon = start_daemon("--remote", server.url, env={"COMMITTER_TOKEN": token,
                                                           "COMMITTER_PUSH_INTERVAL": "200ms",
                                                           "COMMITTER_PUSH_TIMEOUT": "3s"})
        (layout.data / "a.md").write_text("through http")

        def git_children_seen() -> bool:
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        cmd = Path(entry.path, "cmdline").read_bytes()
                    except OSError:
                        continue
                    if server.url.encode() in cmd:
                        seen[int(entry.name)] = cmd
            return len(seen) >= 2  # git push and git-remote-http, started by the daemon

        wait_for(git_children_seen, what="the daemon's git processes talking to the server")
        server.set_mode("normal")
        wait_for(lambda: server.head() is not None, timeout=30, what="push through http")
        status = committer("status", "--json", *layout.args(), "--remote", server.url,
                           env={"COMMITTER_TOKEN": token}).stdout
        assert daemon.stop() == 0
        assert any(r.authorization for r in server.requests)
    finally:
        server.stop()
    haystacks = [daemon.output().encode(), status.encode(), *seen.values()]
    haystacks += [p.read_bytes() for p in layout.git_dir.rglob("*") if p.is_file()]
    assert not [h[:200] for h in haystacks for f in forbidden if f in h]


def test_a_new_remote_gets_everything_even_after_pushing_elsewhere(layout: Layout, tmp_path: Path) -> None:
    first, second = tmp_path / "first.git", tmp_path / "second.git"
    for bare in (first, second):
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    (layout.data / "a.md").write_text("a")
    assert committer("run", "--once", "--remote", f"file://{first}", env=layout.env).returncode == 0
    assert remote_files(first) == {"a.md"}
    status = json.loads(committer("status", "--json", "--remote", f"file://{second}", env=layout.env).stdout)
    assert status["pending_commits"] == 1
    assert committer("run", "--once", "--remote", f"file://{second}", env=layout.env).returncode == 0
    assert remote_files(second) == {"a.md"}


def test_each_batch_logs_where_its_time_went(layout: Layout, start_daemon: Start, mirror: Path) -> None:
    daemon = start_daemon("--remote", f"file://{mirror}", "--log-level", "debug",
                          env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    (layout.data / "a.md").write_text("traced")
    commit = daemon.wait_event("git_commit")[0]
    trace = daemon.wait_event("batch_trace", where=lambda e: e.get("sha") == commit["sha"])[0]
    steps = ["batch_closed", "collected", "objects_written", "ref_updated", "state_written", "push_started",
             "push_done"]
    assert all(trace[f"{step}_ms"] >= 0 for step in steps), trace
    assert trace["batch"] == commit["batch"] and "push" not in trace
    assert trace["total_ms"] >= trace["to_ref_ms"] >= trace["batch_closed_ms"]
