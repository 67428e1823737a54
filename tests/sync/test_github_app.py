"""GitHub App installation tokens and the visibility rule, against the loopback GitHub stand-in and git server."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.serve.metrics import Metrics
from committer.sync import github
from committer.sync.errors import PushError
from committer.sync.pusher import Pusher
from tests.conftest import finishes
from tests.githubapi import APP_ID, INSTALLATION, PAT, GitHubAPI, app_key, github_api, rsa_key
from tests.gitserver import GitHTTPServer, wait_for
from tests.sync.test_push_remote import commit, repo, running

__all__ = ["app_key", "github_api", "repo", "running"]  # fixtures


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMITTER_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


@pytest.fixture
def served(tmp_path: Path, github_api: GitHubAPI) -> Iterator[GitHTTPServer]:
    """acme/notes on the git server, private on the stand-in; git takes only live tokens."""
    server = GitHTTPServer(tmp_path / "served", token=PAT, accept=github_api.live, name="acme/notes.git")
    github_api.add_repo("acme/notes", private=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def app_settings(repo: GitRepo, server: GitHTTPServer, api: GitHubAPI, tmp_path: Path, **changes: Any) -> Settings:
    base = Settings(
        git_dir=repo.git_dir, data_dir=repo.data_dir, remote=server.url,
        github_app_id=APP_ID, github_app_installation_id=INSTALLATION,
        github_app_private_key_file=tmp_path / "app.pem", github_api_url=api.url,
        push_interval=0.05, push_backoff_max=0.3, push_timeout=10.0, shutdown_timeout=2.0,
    )
    return dataclasses.replace(base, **changes)


def refreshes(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("committer_github_token_refreshes_total", {"result": result})
    return value or 0.0


def test_pushes_go_on_across_token_expiries(
    repo: GitRepo, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path, running: list[Pusher]
) -> None:
    """Tokens that live two seconds are replaced before they run out: every push lands, none is refused."""
    github_api.token_ttl = 2.0
    metrics = Metrics(process=False)
    stop_listening = github.on_refresh(metrics.token_refreshed)
    try:
        pusher = Pusher(app_settings(repo, served, github_api, tmp_path), repo, metrics=metrics)
        with capture_logs() as logs:
            running.append(pusher)
            pusher.start()
            deadline = time.monotonic() + 20
            pushed = 0
            while len(github_api.minted) < 4:
                assert time.monotonic() < deadline, "tokens were not refreshed"
                sha = commit(repo)
                pusher.request()
                wait_for(lambda sha=sha: served.head("main") == sha, what="the push")  # type: ignore[misc]
                pushed += 1
    finally:
        stop_listening()
    assert pushed >= 4
    assert refreshes(metrics, "ok") >= 4
    assert not [e for e in logs if e["event"] == "github_token_refused"], "a token was used after it expired"
    failed = [e for e in logs if e["event"] == "git_push" and e["result"] != "ok"]
    assert not failed
    mints = github_api.requests("POST", rf"/app/installations/{INSTALLATION}/access_tokens")
    assert all(c.authorization and c.authorization.startswith("Bearer ey") for c in mints)
    text = repr(logs) + json.dumps(pusher.snapshot())
    assert not any(token in text for token in github_api.minted)


def test_a_token_refused_by_the_host_is_replaced_at_once(
    repo: GitRepo, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path
) -> None:
    """After a 401 from git's host the token is minted anew and the same push goes through, no backoff."""
    settings = app_settings(repo, served, github_api, tmp_path)
    pusher = Pusher(settings, repo)
    commit(repo)
    pusher.push_now()
    github_api.expire_tokens()
    sha = commit(repo)
    with capture_logs() as logs:
        pusher.push_now()
    assert served.head("main") == sha
    assert [e["event"] for e in logs].count("github_token_refused") == 1
    assert len(github_api.minted) == 2


@pytest.mark.parametrize(
    ("problem", "words"),
    [("wrong_key", "A JSON web token could not be decoded"), ("revoked", "Bad credentials"),
     ("missing_key", "cannot read the GitHub App private key")],
)
def test_app_refused_is_a_permanent_auth_error_and_commits_go_on(
    repo: GitRepo, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path, problem: str, words: str
) -> None:
    """A wrong key, a revoked installation or no key: `auth`, with the API's words; nothing lost, no secret shown."""
    if problem == "wrong_key":
        (tmp_path / "app.pem").write_bytes(rsa_key()[0])
    elif problem == "revoked":
        github_api.revoked = True
    else:
        (tmp_path / "app.pem").unlink()
    metrics = Metrics(process=False)
    stop_listening = github.on_refresh(metrics.token_refreshed)
    try:
        pusher = Pusher(app_settings(repo, served, github_api, tmp_path), repo, metrics=metrics)
        commit(repo)
        with capture_logs() as logs, pytest.raises(PushError) as info:
            pusher.push_now()
    finally:
        stop_listening()
    assert info.value.kind == "auth" and info.value.permanent and words in info.value.detail
    commit(repo)
    snap = pusher.snapshot()
    assert snap["pending_commits"] == 2 and snap["last_error"]["kind"] == "auth"
    assert words in snap["last_error"]["message"]
    assert served.head("main") is None
    assert refreshes(metrics, "refused") == 1 and refreshes(metrics, "ok") == 0
    assert "PRIVATE KEY" not in repr(logs) + json.dumps(snap)


def test_a_public_repository_is_refused_then_pushed_once_private(
    repo: GitRepo, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path, running: list[Pusher]
) -> None:
    """Public on GitHub: nothing is pushed, the error says why; made private, the push resumes by itself."""
    github_api.set_private("acme/notes", False)
    pusher = Pusher(app_settings(repo, served, github_api, tmp_path), repo)
    running.append(pusher)
    sha = commit(repo)
    pusher.start()
    wait_for(lambda: (pusher.snapshot()["last_error"] or {}).get("kind") == "public_repository", what="refusal")
    error = pusher.snapshot()["last_error"]
    assert "acme/notes is public" in error["message"]
    assert served.head("main") is None and not [r for r in served.requests if "receive-pack" in r.path]
    sha = commit(repo)
    github_api.set_private("acme/notes", True)
    wait_for(lambda: served.head("main") == sha, what="the push once private")
    wait_for(lambda: pusher.snapshot()["last_error"] is None, what="error cleared")
    checks = github_api.requests("GET", "/repos/acme/notes")
    assert checks and all((c.authorization or "").startswith("Bearer ghs_") for c in checks)


def test_allow_public_and_other_hosts_are_not_checked(
    repo: GitRepo, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path
) -> None:
    """allow_public pushes to a public repository; a host that is not GitHub is never asked."""
    github_api.set_private("acme/notes", False)
    settings = app_settings(repo, served, github_api, tmp_path, allow_public=True)
    sha = commit(repo)
    Pusher(settings, repo).push_now()
    assert served.head("main") == sha
    assert not github_api.requests("GET", "/repos/acme/notes")
    token_file = tmp_path / "token"
    token_file.write_text(PAT)
    plain = Settings(git_dir=repo.git_dir, data_dir=repo.data_dir, remote=served.url, token_file=token_file)
    assert github.repository(plain) is None
    assert github.repository(dataclasses.replace(plain, remote="git@github.com:acme/notes.git")) == ("acme", "notes")


def test_an_unreachable_api_holds_the_push_as_transient(
    repo: GitRepo, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path, running: list[Pusher]
) -> None:
    """While the visibility cannot be read nothing is pushed, retried as transient; then the push goes."""
    token_file = tmp_path / "token"
    token_file.write_text(PAT)
    settings = Settings(git_dir=repo.git_dir, data_dir=repo.data_dir, remote=served.url, token_file=token_file,
                        github_api_url=github_api.url, push_interval=0.05, push_backoff_max=0.3, push_timeout=5.0)
    github_api.down = True
    sha = commit(repo)
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            github_api.down = False

    pusher = Pusher(settings, repo, sleep=sleep)
    running.append(pusher)
    pusher.start()
    wait_for(lambda: served.head("main") == sha, what="the push once the API answered")
    assert len(delays) == 2
    checks = github_api.requests("GET", "/repos/acme/notes")
    assert checks and all(c.authorization == f"Bearer {PAT}" for c in checks)


@pytest.mark.parametrize("misbehave", ["hang", "lie"])
def test_a_token_endpoint_that_hangs_or_lies_is_transient(
    repo: GitRepo, served: GitHTTPServer, github_api: GitHubAPI, tmp_path: Path, misbehave: str
) -> None:
    """No answer within the deadline, or a 201 without a token: a transient failure, nothing pushed."""
    github_api.misbehave = misbehave
    pusher = Pusher(app_settings(repo, served, github_api, tmp_path, push_timeout=1.0), repo)
    commit(repo)
    with pytest.raises(PushError) as info:  # a hung endpoint never answers: only the deadline ends the push
        finishes(pusher.push_now, 60, "the push")
    assert info.value.kind == "transient"
    assert served.head("main") is None and pusher.snapshot()["last_error"]["kind"] == "transient"
