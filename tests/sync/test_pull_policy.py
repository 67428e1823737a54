"""pull_policy against real remotes: ff-only leaves a divergence to a person (nothing merged, nothing pushed),
pull-request proposes the local commits on a branch with a pull request (the loopback GitHub stand-in) and
lets the data directory follow the remote; once merged upstream the next pull brings them back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from committer.core.settings import load_settings, policy
from tests.conftest import Layout, committer, git, tree_files
from tests.githubapi import PAT, GitHubAPI, app_key, github_api
from tests.gitserver import GitHTTPServer
from tests.sync.test_pull import Clone, pull, start, status

__all__ = ["app_key", "github_api"]  # fixtures

integration = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path, github_api: GitHubAPI) -> Iterator[GitHTTPServer]:
    """acme/notes on the loopback git server, private on the GitHub stand-in, which knows its branches."""
    server = GitHTTPServer(tmp_path / "served", token=PAT, name="acme/notes.git")
    github_api.add_repo("acme/notes", private=True)
    github_api.serve("acme/notes", server.repo)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def on_github(layout: Layout, server: GitHTTPServer, api: GitHubAPI, files: dict[str, str]) -> dict[str, str]:
    env = {"COMMITTER_TOKEN": PAT, "COMMITTER_GITHUB_API_URL": api.url}
    return start(layout, server.url, files, env=env)


def clone_of(server: GitHTTPServer, tmp_path: Path) -> Clone:
    return Clone(server.url.replace("http://", f"http://x-access-token:{PAT}@"), tmp_path / "clone")


def diverge(layout: Layout, env: dict[str, str], clone: Clone) -> tuple[str, str]:
    """The remote gets b.md, this machine local.md (committed, not pushed): (local head, remote head)."""
    remote = clone.commit({"b.md": "from elsewhere\n"})
    (layout.data / "local.md").write_text("written here\n")
    done = committer("run", "--once", env={**env, "COMMITTER_REMOTE": ""})
    assert done.returncode == 0, done.stderr
    return git(layout.git_dir, "rev-parse", "HEAD").strip(), remote


def test_pull_merge_false_is_ff_only_and_a_clash_is_one_line() -> None:
    assert policy(load_settings(env={"COMMITTER_PULL_MERGE": "false"})) == "ff-only"
    assert policy(load_settings(env={"COMMITTER_PULL_POLICY": "pull-request"})) == "pull-request"
    assert policy(load_settings(env={"COMMITTER_PULL_MERGE": "false", "COMMITTER_PULL_POLICY": "ff-only"})) == "ff-only"
    done = committer("status", env={"COMMITTER_PULL_MERGE": "false", "COMMITTER_PULL_POLICY": "merge"})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "pull_merge = false" in done.stderr, done.stderr
    # Typed for one command, --pull-policy wins over pull_merge = false of the environment or a file.
    once = load_settings(env={"COMMITTER_PULL_MERGE": "false"}, flags={"pull_policy": "merge"})
    assert policy(once) == "merge"
    done = committer("status", env={"COMMITTER_PULL_POLICY": "rebase"})
    assert done.returncode == 2 and "merge, ff-only, pull-request" in done.stderr


@integration
def test_ff_only_leaves_a_divergence_to_a_person(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"}, env={"COMMITTER_PULL_POLICY": "ff-only"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    local, remote = diverge(layout, env, clone)
    done = pull(env)
    assert done.returncode == 1 and "diverged: waiting for a person" in done.stderr, done.stderr
    assert not (layout.data / "b.md").exists() and (layout.data / "local.md").exists()
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == local
    # Pushes wait: nothing is sent, and status says why and what to do.
    pushed = committer("push", env=env)
    assert pushed.returncode != 0 and "diverged: waiting for a person" in pushed.stderr + pushed.stdout
    assert git(mirror, "rev-parse", "main").strip() == remote
    shown = status(env)
    assert shown["pull"]["diverged"]["remote_head"] == remote  # type: ignore[index]
    text = committer("status", env=env).stdout
    assert "DIVERGED" in text and "--pull-policy merge" in text
    # Local commits go on meanwhile; a second pull round says nothing new.
    (layout.data / "more.md").write_text("more\n")
    assert committer("run", "--once", env={**env, "COMMITTER_REMOTE": ""}).returncode == 0
    assert pull(env).returncode == 1
    # A person merges once; the divergence ends and pushes go on.
    done = committer("pull", "--pull-policy", "merge", env=env)
    assert done.returncode == 0, done.stderr
    assert (layout.data / "b.md").exists() and (layout.data / "more.md").exists()
    assert status(env)["pull"].get("diverged") is None  # type: ignore[union-attr]
    assert git(mirror, "rev-parse", "main").strip() == git(layout.git_dir, "rev-parse", "HEAD").strip()


@integration
def test_pull_request_proposes_the_local_commits_and_follows_the_remote(
    layout: Layout, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path
) -> None:
    env = on_github(layout, served, github_api, {"a.md": "a\n"})
    clone = clone_of(served, tmp_path)
    local, remote = diverge(layout, env, clone)
    (layout.data / "loose.md").write_text("in no commit yet\n")
    done = committer("pull", "--pull-policy", "pull-request", env=env)
    assert done.returncode == 0, done.stderr
    assert "https://github.example/acme/notes/pull/1" in done.stdout
    # The remote got the branch with the local commits and a pull request of it into main.
    [opened] = github_api.requests("POST", "/repos/acme/notes/pulls")
    branch = opened.body["head"]
    assert branch.startswith("committer/") and opened.body["base"] == "main"
    assert opened.authorization == f"Bearer {PAT}"
    # What was in no commit was committed first, so it went with the local commits.
    proposed = served.head(branch)
    assert proposed is not None and git(layout.git_dir, "rev-parse", f"{proposed}~1").strip() == local
    assert git(layout.git_dir, "rev-parse", f"refs/heads/{branch}").strip() == proposed
    assert {"local.md", "loose.md"} <= tree_files(served.repo, branch)
    # The data directory follows the remote.
    assert (layout.data / "b.md").read_text() == "from elsewhere\n"
    assert not (layout.data / "local.md").exists() and not (layout.data / "loose.md").exists()
    assert git(layout.git_dir, "merge-base", "--is-ancestor", remote, "HEAD", check=False) == ""
    shown = status(env)
    [entry] = shown["pull"]["pull_requests"]  # type: ignore[index]
    assert entry["url"] == "https://github.example/acme/notes/pull/1" and entry["state"] == "open"
    assert "pull/1" in committer("status", env=env).stdout
    # No token in what the stand-in was sent as a URL, nor in the log.
    assert all(PAT not in call.path for call in github_api.calls)
    assert PAT not in done.stderr + done.stdout
    # Merged upstream: the next pull fast-forwards, and local.md is back.
    merged = github_api.merge_pull("acme/notes", 1)
    done = pull(env)
    assert done.returncode == 0 and "fast-forwarded" in done.stdout, done.stdout + done.stderr
    assert (layout.data / "local.md").read_text() == "written here\n"
    assert (layout.data / "loose.md").read_text() == "in no commit yet\n"
    assert git(layout.git_dir, "merge-base", "--is-ancestor", merged, "HEAD", check=False) == ""
    assert status(env)["pull"]["pull_requests"][0]["state"] == "merged"  # type: ignore[index]


@integration
def test_pull_request_on_a_plain_host_pushes_the_branch_and_says_there_is_none(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"}, env={"COMMITTER_PULL_POLICY": "pull-request"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    local, remote = diverge(layout, env, clone)
    done = pull(env)
    assert done.returncode == 0, done.stderr
    assert "the remote's host has none" in done.stdout
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [e for e in lines if e["event"] == "pull_request_unavailable"]
    branches = git(mirror, "for-each-ref", "--format=%(refname)", "refs/heads/committer/").split()
    assert len(branches) == 1 and git(mirror, "rev-parse", branches[0]).strip() == local
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == remote
    assert "local.md" in tree_files(mirror, branches[0]) and "b.md" in tree_files(layout.git_dir)


@integration
def test_pull_request_survives_the_api_down_and_a_second_divergence(
    layout: Layout, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path
) -> None:
    env = {**on_github(layout, served, github_api, {"a.md": "a\n"}), "COMMITTER_PULL_POLICY": "pull-request"}
    clone = clone_of(served, tmp_path)
    local, _remote = diverge(layout, env, clone)
    github_api.down = True
    done = pull(env)
    assert done.returncode == 1 and "HTTP 503" in done.stderr, done.stderr
    assert (layout.data / "local.md").exists() and not (layout.data / "b.md").exists()  # nothing switched
    github_api.down = False
    assert pull(env).returncode == 0
    branches = git(served.repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/committer/").split()
    assert len(branches) == 1 and served.head(branches[0]) == local  # the same branch, not a second one
    assert (layout.data / "b.md").exists() and not (layout.data / "local.md").exists()
    # A second divergence while the first pull request is open: a branch and a pull request of its own.
    clone.commit({"c.md": "c\n"})
    (layout.data / "second.md").write_text("second\n")
    assert committer("run", "--once", env={**env, "COMMITTER_REMOTE": ""}).returncode == 0
    done = pull(env)
    assert done.returncode == 0 and "pull/2" in done.stdout, done.stdout + done.stderr
    entries = status(env)["pull"]["pull_requests"]  # type: ignore[index]
    assert [e["number"] for e in entries] == [1, 2] and {e["state"] for e in entries} == {"open"}
    assert "second.md" in tree_files(served.repo, entries[1]["branch"])
    assert "local.md" not in tree_files(served.repo, entries[1]["branch"])


def test_the_github_forge_opens_reads_and_finds_pull_requests(
    served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from committer.core.errors import CommitterError
    from committer.sync.forges import forge_for

    monkeypatch.setenv("COMMITTER_TOKEN", PAT)
    clone = clone_of(served, tmp_path)
    clone.run("commit", "-q", "--allow-empty", "-m", "first")
    clone.run("push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/topic")
    forge = forge_for(load_settings(env={"COMMITTER_REMOTE": served.url, "COMMITTER_GITHUB_API_URL": github_api.url}))
    opened = forge.open_pull_request("topic", "main", "a title", "a body")
    assert opened is not None and (opened.number, opened.state, opened.merged) == (1, "open", False)
    again = forge.open_pull_request("topic", "main", "a title", "a body")  # 422: one is open already
    assert again == opened
    with pytest.raises(CommitterError, match="Validation Failed"):
        forge.open_pull_request("no-such-branch", "main", "a title", "a body")
    assert forge.pull_request(1) == opened and forge.pull_request(7) is None
    github_api.merge_pull("acme/notes", 1)
    merged = forge.pull_request(1)
    assert merged is not None and merged.merged and merged.state == "closed"
    sent = github_api.requests("POST", "/repos/acme/notes/pulls")
    assert [c.body["head"] for c in sent] == ["topic", "topic", "no-such-branch"]
    assert all(c.authorization == f"Bearer {PAT}" for c in github_api.calls)
