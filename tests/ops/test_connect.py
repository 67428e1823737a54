"""`committer connect`, `doctor` and the daemon with GitHub: the CLI as a process against the loopback stand-ins."""

from __future__ import annotations

import json
import socket
import stat
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from committer.core.errors import ConfigError
from committer.core.settings import load_settings
from tests.conftest import DaemonProcess, Layout, commit_count, committer, wait_for
from tests.githubapi import APP_ID, INSTALLATION, PAT, GitHubAPI, app_key, github_api
from tests.gitserver import GitHTTPServer

__all__ = ["app_key", "github_api"]  # fixtures

HOOK = "https://notes.example/webhook"


@pytest.fixture
def served(tmp_path: Path, github_api: GitHubAPI) -> Iterator[GitHTTPServer]:
    """A git server for acme/notes that takes the personal token and live installation tokens."""
    server = GitHTTPServer(tmp_path / "served", token=PAT, accept=github_api.live, name="acme/notes.git")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def clean_env(**extra: str) -> dict[str, str]:
    return {"COMMITTER_TOKEN": "", "CREDENTIALS_DIRECTORY": "", "COMMITTER_CONFIG": "", **extra}


def test_connect_creates_a_private_repository_and_webhook_then_changes_nothing(
    tmp_path: Path, github_api: GitHubAPI, served: GitHTTPServer
) -> None:
    """First run: repository (private) and push webhook created, settings written; second run: nothing changes."""
    token_file = tmp_path / "token"
    token_file.write_text(PAT + "\n")
    config = tmp_path / "etc" / "committer.toml"
    config.parent.mkdir()
    config.write_text('# kept as written\n[committer]\ndebounce = "2s"\n')
    args = ["connect", "acme/notes", "--webhook-url", HOOK, "--config", str(config), "--remote", served.url,
            "--token-file", str(token_file), "--github-api-url", github_api.url]
    first = committer(*args, env=clean_env())
    assert first.returncode == 0, first.stdout + first.stderr
    assert "repository acme/notes: created (private)" in first.stdout
    assert f"webhook {HOOK}: created" in first.stdout
    assert "ok    visibility   acme/notes is private" in first.stdout
    assert "ok    remote" in first.stdout
    created = github_api.requests("POST", "/orgs/acme/repos")
    assert len(created) == 1 and created[0].body["private"] is True
    assert created[0].authorization == f"Bearer {PAT}"
    hooks = github_api.requests("POST", "/repos/acme/notes/hooks")
    assert len(hooks) == 1 and hooks[0].body["events"] == ["push"]
    secret_file = config.parent / "webhook_secret"
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32 and hooks[0].body["config"]["secret"] == secret
    assert hooks[0].body["config"]["url"] == HOOK and hooks[0].body["config"]["content_type"] == "json"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret not in first.stdout + first.stderr and PAT not in first.stdout + first.stderr
    written = tomllib.loads(config.read_text())["committer"]
    assert written == {"debounce": "2s", "remote": served.url, "token_file": str(token_file),
                       "github_api_url": github_api.url, "webhook_secret_file": str(secret_file)}
    assert config.read_text().startswith("# kept as written\n")
    before = (config.read_bytes(), secret_file.read_bytes(), len(github_api.calls))

    again = committer(*args, env=clean_env())
    assert again.returncode == 0, again.stdout + again.stderr
    assert "repository acme/notes: exists (private)" in again.stdout
    assert f"webhook {HOOK}: unchanged" in again.stdout and "unchanged" in again.stdout.splitlines()[2]
    assert (config.read_bytes(), secret_file.read_bytes()) == before[:2]
    later = github_api.calls[before[2]:]
    assert not [c for c in later if c.method in ("POST", "PATCH", "PUT", "DELETE")]

    secret_file.unlink()  # the secret is lost: the same webhook gets a new one
    renewed = committer(*args, env=clean_env())
    assert renewed.returncode == 0 and f"webhook {HOOK}: updated" in renewed.stdout
    patched = github_api.requests("PATCH", r"/repos/acme/notes/hooks/\d+")
    assert len(patched) == 1 and patched[0].body["config"]["secret"] == secret_file.read_text().strip() != secret
    assert len(github_api.hooks["acme/notes"]) == 1


def test_connect_refuses_a_public_repository_and_needs_credentials(
    tmp_path: Path, github_api: GitHubAPI, served: GitHTTPServer
) -> None:
    """An existing public repository is refused before anything is written; no token at all is exit 2."""
    github_api.add_repo("acme/notes", private=False)
    config = tmp_path / "committer.toml"
    args = ["connect", "acme/notes", "--config", str(config), "--github-api-url", github_api.url]
    public = committer(*args, env=clean_env(COMMITTER_TOKEN=PAT))
    assert public.returncode == 1 and "acme/notes is public" in public.stderr
    assert not config.exists()
    none = committer(*args, env=clean_env())
    assert none.returncode == 2 and "connect needs a token" in none.stderr
    bad = committer("connect", "not a repo", "--config", str(config), env=clean_env(COMMITTER_TOKEN=PAT))
    assert bad.returncode == 2 and "OWNER/REPO" in bad.stderr and "Traceback" not in bad.stderr


def app_flags(api: GitHubAPI, tmp_path: Path) -> list[str]:
    return ["--github-app-id", APP_ID, "--github-app-installation-id", str(INSTALLATION),
            "--github-app-private-key-file", str(tmp_path / "app.pem"), "--github-api-url", api.url]


def test_an_app_and_a_token_together_are_a_configuration_error(tmp_path: Path, github_api: GitHubAPI) -> None:
    """Two answers to one question: exit 2 with one line naming the setting; so is a malformed App id."""
    both = committer("doctor", *app_flags(github_api, tmp_path), env=clean_env(COMMITTER_TOKEN=PAT))
    assert both.returncode == 2 and "github-app-id: a GitHub App and a token (COMMITTER_TOKEN)" in both.stderr
    assert len(both.stderr.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="github-app-id: expected the App's numeric id"):
        load_settings(flags={"github_app_id": "app-one"})
    with pytest.raises(ConfigError, match="github-app-installation-id"):
        load_settings(flags={"github_app_id": APP_ID})
    with pytest.raises(ConfigError, match=r"a GitHub App and a token \(token-file\)"):
        load_settings(env={"COMMITTER_TOKEN_FILE": "/t", "COMMITTER_GITHUB_APP_ID": APP_ID,
                           "COMMITTER_GITHUB_APP_INSTALLATION_ID": "7"})
    assert load_settings(env={"COMMITTER_GITHUB_APP_ID": "", "COMMITTER_TOKEN": PAT}).github_app_id == ""


def test_doctor_mints_a_token_and_reads_the_visibility(
    tmp_path: Path, github_api: GitHubAPI, served: GitHTTPServer, layout: Layout
) -> None:
    """doctor reads the key, mints a token and shows its expiry; a public repository fails the check."""
    github_api.add_repo("acme/notes", private=True)
    args = ["doctor", *layout.args(), "--remote", served.url, *app_flags(github_api, tmp_path)]
    ok = committer(*args, env=clean_env())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "installation token minted, expires 20" in ok.stdout
    assert "acme/notes is private" in ok.stdout and "credentials accepted" not in ok.stdout
    assert not any(token in ok.stdout + ok.stderr for token in github_api.minted)
    github_api.set_private("acme/notes", False)
    public = committer(*args, env=clean_env())
    assert public.returncode == 1 and "acme/notes is public: nothing is pushed to it" in public.stdout


@pytest.mark.integration
def test_the_daemon_shows_a_public_repository_in_status_and_pushes_once_private(
    tmp_path: Path, github_api: GitHubAPI, served: GitHTTPServer, layout: Layout,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    """With an App: status says the repository is public while commits land; made private, the push goes."""
    github_api.add_repo("acme/notes", private=False)
    env = clean_env(COMMITTER_PUSH_BACKOFF_MAX="300ms", COMMITTER_PUSH_INTERVAL="100ms")
    daemon = start_daemon("--remote", served.url, *app_flags(github_api, tmp_path), env=env)
    (layout.data / "a.md").write_text("a\n")
    daemon.wait_event("git_push", where=lambda e: e.get("kind") == "public_repository")

    def status() -> dict[str, object]:
        done = committer("status", "--json", *layout.args(), "--remote", served.url, env=env)
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    shown = status()
    assert (shown["last_error"] or {}).get("kind") == "public_repository"  # type: ignore[union-attr]
    assert commit_count(layout.git_dir) >= 1 and served.head("main") is None
    github_api.set_private("acme/notes", True)
    wait_for(lambda: served.head("main") is not None, timeout=15, what="the push once private")
    wait_for(lambda: status()["last_error"] is None, timeout=15, what="status cleared")
    assert not any(token in daemon.output() for token in github_api.minted)
    daemon.stop()


@pytest.mark.parametrize("hostile", ["--upload-pack=touch {marker};", "https://github.example/acme/notes.git\n[x]",
                                     "https://evil\\@github.example/acme/notes.git", "ext::sh -c touch% {marker}",
                                     "git@github.example:acme/notes.git", ["https://github.example/acme/notes.git"]])
def test_a_hostile_clone_url_is_refused_and_nothing_is_written(
    tmp_path: Path, github_api: GitHubAPI, hostile: str | list[str]
) -> None:
    """The API's clone_url is checked like a configured remote before the webhook, the secret or the config."""
    marker = tmp_path / "ran"
    github_api.add_repo("acme/notes")
    github_api.repos["acme/notes"]["clone_url"] = (hostile.format(marker=marker) if isinstance(hostile, str)
                                                   else hostile)
    token_file = tmp_path / "token"
    token_file.write_text(PAT + "\n")
    config = tmp_path / "etc" / "committer.toml"
    result = committer("connect", "acme/notes", "--webhook-url", HOOK, "--config", str(config),
                       "--token-file", str(token_file), "--github-api-url", github_api.url, env=clean_env())
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "clone_url" in lines[0] and "nothing was written" in lines[0], result.stderr
    assert not config.exists() and not (config.parent / "webhook_secret").exists()
    assert not github_api.requests("POST", "/repos/acme/notes/hooks")
    assert not marker.exists()


class RecordingProxy:
    """An HTTP proxy on loopback that records what it is asked to connect to and refuses every tunnel: how a
    test sees which host connect talks to when it talks to github.com itself."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.asked: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.asked.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


def test_connect_creates_the_repository_on_github_whatever_host_the_remote_is_on(tmp_path: Path) -> None:
    """A remote elsewhere (a local mirror, a self-hosted server) is what connect moves to GitHub: it asks
    GitHub's API (here through a proxy that refuses), never answering that the remote's host cannot."""
    mirror = tmp_path / "mirror.git"
    config = tmp_path / "committer.toml"
    proxy = RecordingProxy()
    try:
        env = clean_env(COMMITTER_TOKEN=PAT, HTTPS_PROXY=proxy.url, https_proxy=proxy.url, ALL_PROXY="",
                        all_proxy="", NO_PROXY="", no_proxy="")
        done = committer("connect", "acme/notes", "--config", str(config), "--remote", f"file://{mirror}", env=env)
    finally:
        proxy.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "plain git host" not in done.stderr
    assert "read the repository" in done.stderr and "api.github.com" in done.stderr
    assert proxy.asked and all(line.startswith("CONNECT api.github.com:443 ") for line in proxy.asked)
    assert not config.exists() and PAT not in done.stdout + done.stderr
