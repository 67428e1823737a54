"""A repository per project (`layout = per-project`): one daemon process, one watcher, each top-level
folder its own repository and its own remote from the template, pushed to the loopback git server."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, SentEvents, committer, git, tree_files, wait_for
from tests.githubapi import PAT, GitHubAPI, app_key, github_api
from tests.gitserver import GitHTTPServer

pytestmark = pytest.mark.integration
__all__ = ["app_key", "github_api"]  # fixtures

Start = Callable[..., DaemonProcess]
TOKEN = "ghp_ProjectsLoopback0123456789abcdefABCD"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served(server: GitHTTPServer, name: str) -> Path:
    """A bare repository beside the server's own, served at /<name>.git (git http-backend serves the root)."""
    path = server.root / f"{name}.git"
    path.parent.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--bare", "--initial-branch=main", str(path))
    git(path, "config", "http.receivepack", "true")
    return path


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()  # type: ignore[no-any-return]


def head(repo: Path) -> str | None:
    out = git(repo, "rev-parse", "--verify", "--quiet", "refs/heads/main", check=False).strip()
    return out or None


def status(layout: Layout, *extra: str) -> dict[str, object]:
    proc = committer("status", *layout.args(), "--json", *extra, env=layout.env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_each_project_folder_is_its_own_repository_pushed_to_its_own_remote(
    layout: Layout, start_daemon: Start, sent_events: SentEvents, tmp_path: Path,
) -> None:
    """Three projects (one added while running), one excluded, a file at the top ignored, one removed (held,
    its history kept): each project its own repository under git_dir and its own remote from the template;
    status, log and /metrics per project, events with the project's name."""
    server = GitHTTPServer(tmp_path / "served", token=TOKEN)
    server.start()
    try:
        remotes = {name: served(server, name) for name in ("alpha", "beta", "gamma", "scratch")}
        base = server.url.rsplit("/", 1)[0]
        layout.git_dir = tmp_path / "repos"
        layout.env.update(COMMITTER_LAYOUT="per-project", COMMITTER_GIT_DIR=str(layout.git_dir),
                          COMMITTER_REMOTE_TEMPLATE=f"{base}/{{project}}.git")
        for name in ("alpha", "beta", "scratch"):
            (layout.data / name).mkdir()
            (layout.data / name / f"{name}.md").write_text(f"# {name}\n")
        (layout.data / "loose.md").write_text("at the top\n")
        port = free_port()
        daemon = start_daemon("--projects-exclude", "scratch*", "--http", f"127.0.0.1:{port}",
                              env={**layout.env, "COMMITTER_TOKEN": TOKEN, **sent_events.env()})

        for name in ("alpha", "beta"):
            wait_for(lambda n=name: head(remotes[n]), 30, f"{name}'s push")
            assert tree_files(remotes[name], "main") == {f"{name}.md"}
            assert tree_files(layout.git_dir / f"{name}.git") == {f"{name}.md"}
        assert not (layout.git_dir / "scratch.git").exists() and head(remotes["scratch"]) is None
        assert daemon.events("project_excluded")[0]["project"] == "scratch"
        assert daemon.events("top_level_file_ignored")[0]["path"] == "loose.md"

        # A new folder becomes a project on its first change, with its remote from the template.
        (layout.data / "gamma").mkdir()
        (layout.data / "gamma" / "g.md").write_text("new project\n")
        wait_for(lambda: head(remotes["gamma"]), 30, "gamma's push")
        assert tree_files(remotes["gamma"], "main") == {"g.md"}
        assert daemon.events("project_new")[0]["project"] == "gamma"

        # An edit in one project is a commit of that project only.
        beta_head = head(layout.git_dir / "beta.git")
        (layout.data / "alpha" / "alpha.md").write_text("# alpha\n\nmore\n")
        wait_for(lambda: git(remotes["alpha"], "show", "main:alpha.md").endswith("more\n"), 30, "alpha's edit")
        assert head(layout.git_dir / "beta.git") == beta_head
        commits = sent_events.wait("git_commit", count=4)
        assert {e["project"] for e in commits} == {"alpha", "beta", "gamma"}
        # The log lines of each project's commits and pushes (main thread, push threads) name it.
        assert {e.get("project") for e in daemon.events("git_commit")} == {"alpha", "beta", "gamma"}
        assert {e.get("project") for e in daemon.events("git_push")} == {"alpha", "beta", "gamma"}

        # status and log per project; status without one lists them.
        alpha = status(layout, "--project", "alpha")
        assert alpha["running"] is True and alpha["head"] == head(layout.git_dir / "alpha.git")
        assert alpha["git_dir"] == str(layout.git_dir / "alpha.git")
        logged = committer("log", *layout.args(), "--json", "--project", "gamma", env=layout.env)
        assert logged.returncode == 0, logged.stderr
        assert [json.loads(line)["sha"] for line in logged.stdout.splitlines()] == \
            [head(layout.git_dir / "gamma.git")]
        overview = status(layout)
        assert set(overview["projects"]) == {"alpha", "beta", "gamma"}  # type: ignore[arg-type]

        metrics = fetch(f"http://127.0.0.1:{port}/metrics")
        assert 'committer_commits_total{op="batch",project="alpha"}' in metrics
        assert 'project="gamma"' in metrics

        # The history pages: the first project's, a picker of every project, the picked one remembered.
        first = fetch(f"http://127.0.0.1:{port}/")
        assert '<option value="gamma">' in first and '<option value="alpha" selected>' in first
        picked = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            picked.request("GET", "/project?name=gamma")
            answer = picked.getresponse()
            assert answer.status == 303 and answer.getheader("location") == "/"
            cookie = answer.getheader("set-cookie", "").split(";")[0]
            answer.read()
            picked.request("GET", "/", headers={"Cookie": cookie})
            gamma = picked.getresponse().read().decode()
            assert '<option value="gamma" selected>' in gamma and "g.md" in gamma and "alpha.md" not in gamma
            picked.request("GET", "/project?name=nothere")
            missing = picked.getresponse()
            missing.read()
            assert missing.status == 404
        finally:
            picked.close()

        # A project folder that vanishes is a hold, never a deletion of its history.
        shutil.rmtree(layout.data / "beta")
        hold = sent_events.wait("hold")[0]
        assert (hold["project"], hold["reason"], hold["action"]) == ("beta", "project_missing", "set")
        beta = status(layout, "--project", "beta")
        assert beta["held"]["reason"] == "project_missing"  # type: ignore[index]
        assert tree_files(layout.git_dir / "beta.git") == {"beta.md"}
        assert head(layout.git_dir / "beta.git") == beta_head and tree_files(remotes["beta"], "main") == {"beta.md"}
        health = json.loads(fetch(f"http://127.0.0.1:{port}/healthz"))
        assert health["projects"]["beta"] == {"missing": True} and health["projects"]["alpha"] == {"missing": False}

        assert daemon.stop() == 0
        assert not [e for e in daemon.events() if e.get("level") == "error" and e["event"] != "project_missing"]
    finally:
        server.stop()


def test_a_new_project_gets_a_private_repository_on_the_forge(
    layout: Layout, start_daemon: Start, github_api: GitHubAPI, tmp_path: Path,
) -> None:
    """On GitHub (the loopback stand-in), each project's remote is created private as `connect` creates one:
    at the first start, and for a folder made while the daemon runs; then pushed to."""
    server = GitHTTPServer(tmp_path / "served", token=PAT)
    server.start()
    try:
        remotes = {name: served(server, f"acme/{name}") for name in ("notes", "site")}
        base = server.url.rsplit("/", 1)[0]
        layout.git_dir = tmp_path / "repos"
        layout.env.update(COMMITTER_LAYOUT="per-project", COMMITTER_GIT_DIR=str(layout.git_dir),
                          COMMITTER_REMOTE_TEMPLATE=f"{base}/acme/{{project}}.git",
                          COMMITTER_GITHUB_API_URL=github_api.url, COMMITTER_TOKEN=PAT)
        (layout.data / "notes").mkdir()
        (layout.data / "notes" / "n.md").write_text("n\n")
        daemon = start_daemon(env=layout.env)
        wait_for(lambda: head(remotes["notes"]), 30, "notes' push")
        (layout.data / "site").mkdir()
        (layout.data / "site" / "index.md").write_text("s\n")
        wait_for(lambda: head(remotes["site"]), 30, "site's push")
        created = github_api.requests("POST", "/orgs/acme/repos")
        assert [(c.body["name"], c.body["private"]) for c in created] == [("notes", True), ("site", True)]
        assert [e["repository"] for e in daemon.events("project_remote")] == ["acme/notes", "acme/site"]
        assert daemon.stop() == 0
    finally:
        server.stop()


@pytest.mark.slow  # two daemons and five commands, each a process
def test_a_missing_project_stays_held_across_a_restart_and_comes_back(layout: Layout, start_daemon: Start,
                                                                      tmp_path: Path) -> None:
    """A project folder moved away is held (its history kept) also after a restart; moved back, it is
    reconciled. Commands with --project are done by the running daemon; a second daemon on a project is
    refused."""
    layout.git_dir = tmp_path / "repos"
    layout.env.update(COMMITTER_LAYOUT="per-project", COMMITTER_GIT_DIR=str(layout.git_dir))
    for name in ("notes", "site"):
        (layout.data / name).mkdir()
        (layout.data / name / f"{name}.md").write_text(f"{name}\n")
    daemon = start_daemon(env=layout.env)
    site = layout.git_dir / "site.git"
    assert tree_files(site) == {"site.md"} and tree_files(layout.git_dir / "notes.git") == {"notes.md"}

    snap = committer("snapshot", *layout.args(), "--project", "notes", "-m", "first", "--tag", "first",
                     env=layout.env)
    assert snap.returncode == 0, snap.stderr
    assert git(layout.git_dir / "notes.git", "tag", "--list").split() == ["first"]
    assert not git(site, "tag", "--list").strip()
    second = committer("run", *layout.args(), "--project", "notes", env=layout.env)
    assert second.returncode != 0 and "already running" in second.stderr

    away = tmp_path / "site-away"
    (layout.data / "site").rename(away)
    daemon.wait_event("project_missing", where=lambda e: e["project"] == "site")
    assert daemon.stop() == 0
    daemon = start_daemon(env=layout.env)
    daemon.wait_event("project_missing", where=lambda e: e["project"] == "site")
    held = status(layout, "--project", "site")
    assert held["held"]["reason"] == "project_missing" and held["running"] is True  # type: ignore[index]
    overview = committer("status", *layout.args(), env=layout.env)
    assert "folder is missing" in overview.stdout, overview.stdout
    assert tree_files(site) == {"site.md"}

    away.rename(layout.data / "site")
    (layout.data / "site" / "more.md").write_text("more\n")
    wait_for(lambda: tree_files(site) == {"site.md", "more.md"}, 30, "site reconciled once back")
    daemon.wait_event("project_back")
    assert status(layout, "--project", "site")["held"] is None
    assert daemon.stop() == 0
