"""The pull side with the daemon running: timed pulls without echo commits, `committer pull` answered by the
daemon, automatic merges, and GitHub's push webhook over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.serve.webhook import signature
from tests.conftest import DaemonProcess, Layout, committer, git, show, wait_for
from tests.daemon.test_daemon_http import free_port
from tests.sync.test_pull import LINES, Clone

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
SECRET = "webhook secret for the tests"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def head(git_dir: Path) -> str:
    return git(git_dir, "rev-parse", "-q", "--verify", "refs/heads/main", check=False).strip()


def seeded(layout: Layout, mirror: Path, files: dict[str, str]) -> dict[str, str]:
    """Files committed and pushed by `init`; the environment the daemon and the CLI share."""
    for name, text in files.items():
        (layout.data / name).write_text(text)
    env = {**layout.env, "COMMITTER_REMOTE": f"file://{mirror}", "COMMITTER_PUSH_INTERVAL": "200ms"}
    assert committer("init", env=env).returncode == 0
    return env


def test_timed_pull_fast_forwards_with_no_echo_commit(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    env = seeded(layout, mirror, {"a.md": "a\n"})
    daemon = start_daemon("--pull-interval", "300ms", "--log-level", "debug", env=env)
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"a.md": "a, edited elsewhere\n", "b.md": "b\n"})
    daemon.wait_event("git_pull", where=lambda e: e.get("new") == remote_head)
    assert (layout.data / "a.md").read_text() == "a, edited elsewhere\n"
    assert (layout.data / "b.md").read_text() == "b\n"
    # The watcher reports the files the pull wrote: that batch ends without a commit.
    daemon.wait_event("no_commit", where=lambda e: e.get("what") == "batch")
    assert head(layout.git_dir) == remote_head
    # A later local edit is committed and pushed on top, as usual.
    (layout.data / "c.md").write_text("c\n")
    wait_for(lambda: head(mirror) != remote_head and git(mirror, "rev-parse", "main~1").strip() == remote_head,
             what="the next local commit on the remote")
    assert daemon.stop() == 0
    assert not daemon.events("commit_failed") and not daemon.events("pull_failed")


def test_committer_pull_is_done_by_the_running_daemon_and_merges(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    env = seeded(layout, mirror, {"text.md": LINES})
    daemon = start_daemon(env=env)
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"text.md": LINES.replace("line 1\n", "line 1, remote\n"), "theirs.md": "t\n"})
    (layout.data / "text.md").write_text(LINES.replace("line 9\n", "line 9, local\n"))
    daemon.wait_event("git_push", where=lambda e: e.get("kind") == "non_fast_forward")
    proc = committer("pull", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "merged" in proc.stdout
    assert daemon.events("request")[-1]["op"] == "pull"
    merged = LINES.replace("line 1\n", "line 1, remote\n").replace("line 9\n", "line 9, local\n")
    assert (layout.data / "text.md").read_text() == merged
    assert (layout.data / "theirs.md").read_text() == "t\n"
    # The merge reaches the remote although the previous push was refused as non-fast-forward.
    wait_for(lambda: head(mirror) == head(layout.git_dir), timeout=15, what="the merge pushed")
    assert remote_head in git(mirror, "log", "-1", "--format=%P", "main").split()
    assert show(mirror, "text.md", "main").decode() == merged
    assert daemon.stop() == 0


def test_with_timed_pulls_a_divergence_is_merged_on_its_own(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    env = seeded(layout, mirror, {"text.md": LINES})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    daemon = start_daemon("--pull-interval", "1h", env=env)  # only the refused push asks for a pull
    clone.commit({"theirs.md": "t\n"})
    (layout.data / "mine.md").write_text("m\n")
    wait_for(lambda: {"theirs.md", "mine.md"} <= set(git(mirror, "ls-tree", "--name-only", "main").split()),
             timeout=20, what="both sides on the remote")
    assert (layout.data / "theirs.md").read_text() == "t\n"
    assert daemon.events("git_pull")[-1]["outcome"] == "merge"
    assert daemon.stop() == 0


def post(port: int, event: str, payload: dict[str, object], delivery: str,
         sign: str | None = "good") -> tuple[int, dict[str, object]]:
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
    if sign == "good":
        headers["X-Hub-Signature-256"] = signature(SECRET, body)
    elif sign is not None:
        headers["X-Hub-Signature-256"] = sign
    req = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def test_the_push_webhook_over_http(layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path) -> None:
    env = seeded(layout, mirror, {"a.md": "a\n"})
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", env={**env, "COMMITTER_WEBHOOK_SECRET": SECRET})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"a.md": "a, from the webhook\n"})
    event = {"ref": "refs/heads/main", "after": remote_head, "forced": False, "deleted": False}

    assert post(port, "ping", {"zen": "Keep it logically awesome."}, "p-1") == (200, {"action": "pong"})
    assert post(port, "push", event, "d-0", sign=None)[0] == 401
    assert post(port, "push", event, "d-0", sign="sha256=" + "f" * 64)[0] == 401
    assert post(port, "push", {**event, "ref": "refs/heads/other"}, "d-1")[1]["action"] == "ignored"
    assert (layout.data / "a.md").read_text() == "a\n"  # none of those pulled anything

    assert post(port, "push", event, "d-2") == (202, {"action": "pull_queued", "after": remote_head})
    daemon.wait_event("git_pull", where=lambda e: e.get("new") == remote_head)  # files first, then the branch
    assert (layout.data / "a.md").read_text() == "a, from the webhook\n"
    assert post(port, "push", event, "d-2")[1]["action"] == "duplicate"
    assert head(layout.git_dir) == remote_head

    status, body = post(port, "push", {**event, "forced": True, "after": "e" * 40}, "d-3")
    assert status == 200 and body["action"] == "refused"
    wait_for(lambda: (json.loads(committer("status", "--json", env=env).stdout)["last_error"] or {}).get("kind")
             == "git_conflict", what="the refused forced update in status")
    assert daemon.wait_event("git_conflict")[0]["kind"] == "refused"
    assert daemon.stop() == 0
    assert len(daemon.events("git_pull")) == 1


def test_the_webhook_refuses_everything_without_a_secret(layout: Layout, start_daemon: Start, mirror: Path) -> None:
    env = seeded(layout, mirror, {"a.md": "a\n"})
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", env=env)
    event = {"ref": "refs/heads/main", "after": "a" * 40}
    status, body = post(port, "push", event, "d-1")
    assert status == 403 and "webhook_secret" in str(body["error"])
    assert daemon.stop() == 0


def test_a_pull_cut_short_before_the_branch_moved_reverts_nothing(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    """A daemon killed after writing the remote's files but before moving the branch: the next start
    commits those files as local content, and the next pull merges cleanly, with no copies."""
    env = seeded(layout, mirror, {"a.md": "a\n", "b.md": "b\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"a.md": "a, remote\n", "c.md": "c\n", "b.md": None})
    # What the killed pull had already done to the data directory:
    (layout.data / "a.md").write_text("a, remote\n")
    (layout.data / "c.md").write_text("c\n")
    (layout.data / "b.md").unlink()
    daemon = start_daemon("--pull-interval", "1h", env=env)
    wait_for(lambda: remote_head in git(mirror, "rev-list", "main").split() and head(mirror) == head(layout.git_dir)
             and head(mirror) != remote_head, timeout=20, what="the restarted daemon's merge on the remote")
    assert sorted(p.name for p in layout.data.iterdir()) == ["a.md", "c.md"]
    assert (layout.data / "a.md").read_text() == "a, remote\n"
    assert not [e for e in daemon.events("git_conflict")]
    assert set(git(mirror, "ls-tree", "--name-only", "main").split()) == {"a.md", "c.md"}
    assert daemon.stop() == 0
