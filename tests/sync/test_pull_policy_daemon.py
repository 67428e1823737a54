"""pull_policy with the daemon as a process: ff-only waits for a person (told once, /healthz and status say
so, pushes stop, commits go on); pull-request opens a pull request, follows the remote, and once the pull
request is merged upstream the next pull brings the local commits back by fast-forward."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Layout, SentEvents, committer, git, sent_events, tree_files, wait_for
from tests.daemon.test_daemon_http import free_port, get
from tests.githubapi import GitHubAPI, app_key, github_api
from tests.gitserver import GitHTTPServer
from tests.sync.test_pull import Clone, start, status
from tests.sync.test_pull_policy import clone_of, diverge, on_github, served

__all__ = ["app_key", "github_api", "sent_events", "served"]  # fixtures

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def health(port: int) -> dict[str, Any]:
    return json.loads(get(f"http://127.0.0.1:{port}/healthz")[1])  # type: ignore[no-any-return]


def test_ff_only_round_trip_in_the_daemon(
    layout: Layout, start_daemon: Any, mirror: Path, tmp_path: Path, sent_events: SentEvents
) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    local, remote = diverge(layout, env, clone)
    port = free_port()
    daemon: DaemonProcess = start_daemon(
        "--pull-policy", "ff-only", "--pull-interval", "300ms", "--http", f"127.0.0.1:{port}",
        env={**env, **sent_events.env(), "COMMITTER_PUSH_INTERVAL": "200ms"})
    [told] = sent_events.wait("git_pull")
    assert told["outcome"] == "diverged" and "diverged: waiting for a person" in told["reason"]
    detail = wait_for(lambda: (h := health(port))["pull"] and h["pull"]["diverged"] and h, what="/healthz detail")
    assert detail["degraded"] and any("diverged: waiting for a person" in r for r in detail["degraded_reasons"])
    # Commits go on here; nothing is pushed, nothing merged; more pull rounds tell nothing new.
    (layout.data / "later.md").write_text("later\n")
    wait_for(lambda: "later.md" in tree_files(layout.git_dir), what="the commit of later.md")
    again = clone.commit({"c.md": "c\n"})
    wait_for(lambda: (status(env)["pull"] or {}).get("remote_head") == again, what="the next fetch")
    assert git(mirror, "rev-parse", "main").strip() == again
    assert not (layout.data / "b.md").exists()
    assert len(sent_events("git_pull")) == 1
    assert len([e for e in daemon.events("git_conflict") if e.get("kind") == "diverged"]) == 1
    # A person merges once, through the running daemon: the divergence ends and the push goes out.
    done = committer("pull", "--pull-policy", "merge", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: {"later.md", "local.md", "b.md", "c.md"} <= tree_files(mirror, "refs/heads/main"),
             timeout=15, what="the merge pushed")
    wait_for(lambda: not health(port)["pull"]["diverged"], what="/healthz without the divergence")
    assert daemon.stop() == 0
    assert git(layout.git_dir, "merge-base", "--is-ancestor", local, "HEAD", check=False) == ""
    assert remote != again


def test_pull_request_round_trip_in_the_daemon(
    layout: Layout, start_daemon: Any, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path
) -> None:
    env = on_github(layout, served, github_api, {"a.md": "a\n"})
    clone = clone_of(served, tmp_path)
    local, remote = diverge(layout, env, clone)
    port = free_port()
    daemon: DaemonProcess = start_daemon(
        "--pull-policy", "pull-request", "--pull-interval", "300ms", "--http", f"127.0.0.1:{port}",
        env={**env, "COMMITTER_PUSH_INTERVAL": "200ms"})
    [pulled] = daemon.wait_event("git_pull", where=lambda e: e.get("outcome") == "pull_request")
    assert pulled["old"] == local and pulled["new"] == remote
    [opened] = github_api.requests("POST", "/repos/acme/notes/pulls")
    branch = opened.body["head"]
    assert served.head(branch) == local
    wait_for(lambda: (layout.data / "b.md").exists() and not (layout.data / "local.md").exists(),
             what="the data directory follows the remote")
    detail = wait_for(lambda: (h := health(port))["pull"] and h["pull"]["pull_requests"] and h, what="/healthz")
    assert detail["pull"]["pull_requests"][0]["url"] == "https://github.example/acme/notes/pull/1"
    # A commit made here now goes onto the remote's branch, as usual.
    (layout.data / "after.md").write_text("after\n")
    wait_for(lambda: "after.md" in git(served.repo, "ls-tree", "--name-only", "main"), what="the push")
    # Merged upstream: the next pull brings local.md back by fast-forward.
    github_api.merge_pull("acme/notes", 1)
    wait_for(lambda: (layout.data / "local.md").exists(), timeout=15, what="the merged pull request pulled")
    assert (layout.data / "local.md").read_text() == "written here\n"
    wait_for(lambda: status(env)["pull"]["pull_requests"][0]["state"] == "merged",  # type: ignore[index]
             what="the pull request seen merged")
    assert daemon.stop() == 0
    assert "ghp_" not in daemon.output().replace("ghp_***", "")
