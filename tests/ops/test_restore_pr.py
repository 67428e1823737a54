"""`restore --as-pr` and the restore page's second button: the restore committed on a branch
`committer/restore/<time>` from the head, pushed, proposed as a pull request (the loopback GitHub stand-in);
the data directory and the branch are not changed, until the pull request is merged and pulled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from committer.serve.access import Access
from committer.serve.pages import Pages
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, committer, git, show
from tests.githubapi import PAT, GitHubAPI, app_key, github_api
from tests.gitserver import GitHTTPServer
from tests.serve.test_pages import fetch, perform, post, serving
from tests.sync.test_pull import start
from tests.sync.test_pull_policy import on_github, served

__all__ = ["app_key", "github_api", "served"]  # fixtures

integration = pytest.mark.integration


def head(git_dir: Path) -> str:
    return git(git_dir, "rev-parse", "HEAD").strip()


def edited(layout: Layout, env: dict[str, str]) -> str:
    """a.md edited and committed (and pushed): the first version's commit."""
    first = head(layout.git_dir)
    (layout.data / "a.md").write_text("second\n")
    done = committer("run", "--once", env=env)
    assert done.returncode == 0, done.stderr
    return first


@integration
def test_restore_as_pr_proposes_and_changes_nothing_here(
    layout: Layout, served: GitHTTPServer, github_api: GitHubAPI
) -> None:
    env = on_github(layout, served, github_api, {"a.md": "first\n", "b.md": "b\n"})
    first = edited(layout, env)
    before = head(layout.git_dir)
    assert served.head() == before
    done = committer("restore", "a.md", "--to", first, "--as-pr", env=env)
    assert done.returncode == 0, done.stderr
    assert "https://github.example/acme/notes/pull/1" in done.stdout and "data directory is unchanged" in done.stdout
    [opened] = github_api.requests("POST", "/repos/acme/notes/pulls")
    branch = opened.body["head"]
    assert branch.startswith("committer/restore/") and opened.body["base"] == "main" and branch in done.stdout
    # Nothing here changed: the file, the branch, the remote's main.
    assert (layout.data / "a.md").read_text() == "second\n"
    assert head(layout.git_dir) == before and served.head() == before
    proposed = served.head(branch)
    assert proposed is not None and git(layout.git_dir, "rev-parse", f"{proposed}~1").strip() == before
    assert show(served.repo, "a.md", proposed) == b"first\n" and show(served.repo, "b.md", proposed) == b"b\n"
    meta = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)", proposed))
    assert meta["op"] == "restore" and meta["source"] == first and meta["path"] == "a.md" and meta["as_pr"] is True
    assert PAT not in done.stdout + done.stderr
    # Merged upstream and pulled: the restore arrives.
    github_api.merge_pull("acme/notes", 1)
    assert committer("pull", env=env).returncode == 0
    assert (layout.data / "a.md").read_text() == "first\n"


@integration
def test_restore_as_pr_on_a_plain_host_pushes_the_branch(layout: Layout, mirror: Path) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "first\n"})
    first = edited(layout, env)
    done = committer("restore", "a.md", "--to", first, "--as-pr", env=env)
    assert done.returncode == 0, done.stderr
    assert "has none" in done.stdout
    [branch] = git(mirror, "for-each-ref", "--format=%(refname:short)", "refs/heads/committer/restore/").split()
    assert show(mirror, "a.md", branch) == b"first\n"
    assert (layout.data / "a.md").read_text() == "second\n"
    # Without a remote there is nowhere to propose it: one line, exit 2.
    local = committer("restore", "a.md", "--to", first, "--as-pr", env={**env, "COMMITTER_REMOTE": ""})
    assert local.returncode == 2 and "remote" in local.stderr


@integration
def test_the_restore_page_offers_a_pull_request(
    layout: Layout, served: GitHTTPServer, github_api: GitHubAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMITTER_TOKEN", PAT)
    pipeline = make_pipeline(layout, remote=served.url, github_api_url=github_api.url)
    write(layout, "a.md", "first\n")
    first = str(pipeline.commit([""]).sha)
    write(layout, "a.md", "second\n")
    second = str(pipeline.commit(["a.md"]).sha)
    git(layout.git_dir, "push", "-q", served.url.replace("http://", f"http://x-access-token:{PAT}@"), "main")
    access = Access("open")
    proposal = {"branch": "committer/h/20261207T101010Z", "url": "https://github.example/acme/notes/pull/9",
                "number": 9, "state": "open"}
    state = {"push": {"remote": served.url, "pending_commits": 0},
             "pull": {"pull_requests": [proposal], "diverged": {"reason": "diverged: waiting for a person"}}}
    with serving(Pages(pipeline.repo, access, lambda: state, perform(pipeline))) as port:
        banner = fetch(port, "/").text
        assert 'href="https://github.example/acme/notes/pull/9"' in banner and proposal["branch"] in banner
        assert "Diverged: waiting for a person" in banner
        preview = fetch(port, f"/restore?path=a.md&rev={first}", headers={"Sec-Fetch-Site": "same-origin"})
        assert 'id="restore-as-pr"' in preview.text and 'id="confirm-restore"' in preview.text
        page = post(port, "/restore", {"path": "a.md", "rev": first, "csrf": access.csrf, "as_pr": "1"},
                    Origin=f"http://127.0.0.1:{port}")
        assert page.status == 200, page.text
        assert 'id="restore-pr-link"' in page.text and "https://github.example/acme/notes/pull/1" in page.text
    assert (layout.data / "a.md").read_text() == "second\n" and pipeline.head == second
    [opened] = github_api.requests("POST", "/repos/acme/notes/pulls")
    assert show(served.repo, "a.md", opened.body["head"]) == b"first\n"
