"""committer snapshot: annotated tags at HEAD, listed, pushed with the next push."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, committer, git, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def test_snapshot_tags_head_with_a_trailer_and_lists_it(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a")
    assert committer("init", *layout.args()).returncode == 0
    proc = committer("snapshot", "-m", "before the big edit", "--tag", "v1", *layout.args())
    assert proc.returncode == 0, proc.stderr
    head = git(layout.git_dir, "rev-parse", "HEAD").strip()
    assert git(layout.git_dir, "rev-parse", "v1^{commit}").strip() == head
    assert git(layout.git_dir, "cat-file", "-t", "v1").strip() == "tag"  # annotated
    trailer = git(layout.git_dir, "tag", "-l", "--format=%(trailers:key=BM-Meta,valueonly)", "v1").strip()
    assert json.loads(trailer)["op"] == "snapshot"
    auto = committer("snapshot", "-m", "nightly", *layout.args())
    assert auto.returncode == 0 and "snapshot-" in auto.stdout
    out = committer("snapshot", "--list", "--json", *layout.args()).stdout
    listed = [json.loads(line) for line in out.splitlines()]
    assert {item["tag"] for item in listed} >= {"v1"} and len(listed) == 2
    assert all(item["commit"] == head for item in listed)


@pytest.mark.parametrize(("args", "named"), [(["-m", "x", "--tag", "bad name"], "--tag"),
                                             (["-m", "x", "--tag", "v1"], "--tag"),
                                             (["-m", "x", "--tag", "--help"], "--tag"),
                                             (["-m", "x", "--tag", "-d"], "--tag"),
                                             ([], "--message")])
def test_bad_snapshots_are_one_clear_error(layout: Layout, args: list[str], named: str) -> None:
    (layout.data / "a.md").write_text("a")
    committer("init", *layout.args())
    committer("snapshot", "-m", "first", "--tag", "v1", *layout.args())
    proc = committer("snapshot", *args, *layout.args())
    assert proc.returncode == 2 and named in proc.stderr.strip().splitlines()[-1]


def test_a_message_with_bytes_that_are_not_utf8_is_kept_readable(layout: Layout) -> None:
    """A message from a shell that is not UTF-8 is a snapshot, not a traceback; its bytes show as \\xNN."""
    (layout.data / "a.md").write_text("a")
    assert committer("init", *layout.args()).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "committer", "snapshot", "-m", b"caf\xe9 notes", "--tag", "v1",
                           *layout.args()], capture_output=True, env={**os.environ, "COMMITTER_LOG_FORMAT": "json"})
    assert proc.returncode == 0, proc.stderr
    body = subprocess.run(["git", f"--git-dir={layout.git_dir}", "cat-file", "tag", "v1"],
                          capture_output=True, check=True).stdout.decode("utf-8")
    assert "caf\\xe9 notes" in body


def test_a_snapshot_taken_while_the_daemon_runs_includes_pending_changes_and_is_pushed(
    layout: Layout, start_daemon: Start, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    start_daemon("--remote", f"file://{mirror}", "--debounce", "30s", "--max-delay", "60s",
                 env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    (layout.data / "pending.md").write_text("not committed yet")
    proc = committer("snapshot", "-m", "with the pending edit", "--tag", "release", *layout.args())
    assert proc.returncode == 0, proc.stderr
    assert "pending.md" in git(layout.git_dir, "ls-tree", "--name-only", "release")
    wait_for(lambda: git(mirror, "rev-parse", "-q", "--verify", "refs/tags/release", check=False).strip(),
             what="the tag on the remote")
