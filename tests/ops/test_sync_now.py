"""`committer sync`: the running daemon commits what is pending now (no debounce), pushes at once, and with
--wait the command returns once the remote has it, or says what is in the way at the timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import (
    ISOLATED,
    DaemonProcess,
    Layout,
    commit_count,
    committer,
    finishes,
    git,
    tree_files,
    wait_for,
)
from tests.gitserver import GitHTTPServer, git_server

__all__ = ["git_server"]

pytestmark = pytest.mark.integration

# A batch that would wait a minute on its own: whatever a sync commits, the sync committed.
SLOW = ("--debounce", "60s", "--max-delay", "120s", "--push-backoff-max", "1s")


def sync(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    return committer("sync", "--json", *args, env=layout.env, timeout=120)


def answer_of(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_sync_wait_returns_once_the_remote_has_it_and_says_what_is_in_the_way_while_it_is_down(
    git_server: GitHTTPServer, layout: Layout, start_daemon: Callable[..., DaemonProcess],
) -> None:
    """Against a remote that answers, one that is down, and one that comes back."""
    start_daemon("--remote", git_server.url, *SLOW, env={"COMMITTER_TOKEN": git_server.token})
    (layout.data / "note.md").write_text("written just before the sync\n")
    done = sync(layout, "--wait")
    assert done.returncode == 0, done.stderr
    answer = answer_of(done)
    assert answer["ok"] is True and answer["pushed"] is True and answer["by"] == "daemon"
    assert git_server.head() == answer["commit"]
    assert "note.md" in tree_files(git_server.repo, str(answer["commit"]))

    git_server.set_mode("503")
    (layout.data / "down.md").write_text("the remote is down\n")
    done = sync(layout, "--wait", "--timeout", "5s")
    assert done.returncode == 1, done.stdout
    answer = answer_of(done)
    assert answer["pushed"] is False and answer["commit"] != git_server.head()
    assert "the last push failed (transient)" in str(answer["reason"]), answer
    assert "committer: error: the remote does not have" in committer("sync", "--wait", "--timeout", "1s",
                                                                     env=layout.env).stderr

    seen = len(git_server.requests)
    waiting = subprocess.Popen([sys.executable, "-m", "committer", "sync", "--wait", "--json", "--timeout", "90s"],
                               env={**os.environ, **ISOLATED, **layout.env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(git_server.requests) > seen, timeout=30, what="a push refused while the sync waits")
        assert waiting.poll() is None
        git_server.set_mode("normal")
        out, err = waiting.communicate(timeout=90)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, err
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer["pushed"] is True and git_server.head() == answer["commit"]
    assert "down.md" in tree_files(git_server.repo, str(answer["commit"]))

    git_server.set_token("ghp_SomeoneRotatedIt0123456789abcdefABCD")  # refused for good: auth
    (layout.data / "refused.md").write_text("the token was rotated\n")
    done = finishes(lambda: sync(layout, "--wait", "--timeout", "10m"), 90, "a sync whose push failed for good")
    assert done.returncode == 1
    assert "the last push failed (auth)" in str(answer_of(done)["reason"])


def test_callers_that_ask_together_share_one_commit(
    git_server: GitHTTPServer, layout: Layout, start_daemon: Callable[..., DaemonProcess],
) -> None:
    """Three syncs at once: one commit holds the three files, each caller is told it, and the remote has it."""
    daemon = start_daemon("--remote", git_server.url, *SLOW, env={"COMMITTER_TOKEN": git_server.token})
    before = commit_count(layout.git_dir)
    for name in ("a.md", "b.md", "c.md"):
        (layout.data / name).write_text(f"{name}\n")
    argv = [sys.executable, "-m", "committer", "sync", "--wait", "--json"]
    env = {**os.environ, **ISOLATED, **layout.env}
    callers = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    answers = []
    for caller in callers:
        out, err = caller.communicate(timeout=120)
        assert caller.returncode == 0, err
        answers.append(json.loads(out.strip().splitlines()[-1]))
    assert {a["commit"] for a in answers} == {git_server.head()}
    assert commit_count(layout.git_dir) == before + 1, daemon.output()
    assert {"a.md", "b.md", "c.md"} <= tree_files(layout.git_dir)


def test_without_a_daemon_the_command_commits_and_pushes_itself(layout: Layout, mirror: Path) -> None:
    """No daemon: a reconcile and commit here, then the push; a remote that refuses is exit 1 with why."""
    (layout.data / "one.md").write_text("one\n")
    assert committer("init", *layout.args(), env=layout.env).returncode == 0
    (layout.data / "two.md").write_text("two\n")
    done = sync(layout, "--wait", "--remote", str(mirror))
    assert done.returncode == 0, done.stderr
    answer = answer_of(done)
    assert answer["by"] == "command" and answer["pushed"] is True
    assert git(mirror, "rev-parse", "main").strip() == answer["commit"]
    assert {"one.md", "two.md"} <= tree_files(mirror)

    (layout.data / "three.md").write_text("three\n")
    gone = layout.root / "no-such-remote.git"
    done = sync(layout, "--wait", "--timeout", "2s", "--remote", str(gone))
    assert done.returncode == 1
    answer = answer_of(done)
    assert answer["pushed"] is False and "the last push failed" in str(answer["reason"]), answer
    assert "three.md" in tree_files(layout.git_dir)  # committed all the same


def test_a_file_held_for_its_content_is_in_the_way_though_the_remote_has_the_commit(
    layout: Layout, mirror: Path,
) -> None:
    """A secret kept out of history has no backup: `sync --wait` names it and exits 1; a name rule's file is
    the user's choice and is not in the way."""
    (layout.data / "note.md").write_text("a note\n")
    (layout.data / ".env").write_text("KEY=value\n")  # kept out by a name rule: not in the way
    assert committer("init", *layout.args(), "--remote", str(mirror), env=layout.env).returncode == 0
    done = sync(layout, "--wait", "--remote", str(mirror))
    assert done.returncode == 0, done.stderr
    (layout.data / "keys.md").write_text("token = ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8\n")
    done = sync(layout, "--wait", "--remote", str(mirror))
    assert done.returncode == 1
    answer = answer_of(done)
    assert answer["pushed"] is True, answer
    assert answer["in_the_way"]["file_count"] == 1  # type: ignore[index]
    assert "keys.md" in str(answer["reason"]) and ".env" not in str(answer["reason"])
    plain = committer("sync", "--wait", "--remote", str(mirror), env=layout.env)
    assert plain.returncode == 1 and "1 file(s) are kept out of history: keys.md" in plain.stderr
