"""The forge seam: the registry picks the host of a remote, and a forge registered in a test (a fake
"Example Host") is what the push, doctor, connect and the webhook ask, against the real loopback git server."""

from __future__ import annotations

import dataclasses
import hmac
import http.client
import json
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from committer.core.errors import CommitterError
from committer.core.settings import Settings, load_settings
from committer.git.repo import GitRepo
from committer.ops.connect import connect
from committer.ops.doctor import remote_checks
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.webhook import WebhookReceiver
from committer.sync import forges
from committer.sync.errors import PushError, classify
from committer.sync.forge import Credentials, Delivery, Forge, Minted, PushEvent, Refusal, Repository, Seen, refused
from committer.sync.forges import forge_for
from committer.sync.forges.github import GitHub
from committer.sync.forges.plain import Plain
from committer.sync.pusher import Pusher
from tests.gitserver import GitHTTPServer
from tests.sync.test_push_remote import commit, repo, settings_for

__all__ = ["repo"]  # a fixture

TOKEN = "exh_RightToken0123456789abcdefABCDEF"
HOOK_URL = "https://notes.example/webhook"


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMITTER_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


# -- the registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("remote", "expected"), [
    ("https://github.com/acme/notes.git", GitHub),
    ("git@github.com:acme/notes.git", GitHub),
    ("ssh://git@github.com/acme/notes.git", GitHub),
    ("https://x-access-token:t0k3n@github.com/acme/notes.git", GitHub),
    ("https://git.example/acme/notes.git", Plain),
    ("git@git.example:acme/notes.git", Plain),
    ("http://127.0.0.1:8080/acme/notes.git", Plain),
    ("file:///srv/git/notes.git", Plain),
    ("/srv/git/notes.git", Plain),
    ("", GitHub),  # no remote yet: connect creates one on the default forge
])
def test_the_registry_picks_the_forge_by_the_remotes_host(remote: str, expected: type) -> None:
    """github.com is GitHub's, any other host a plain git host; a URL alone or settings give the same answer."""
    assert type(forge_for(remote)) is expected
    assert type(forge_for(Settings(remote=remote))) is expected


def test_settings_that_say_github_make_any_remote_a_github_one() -> None:
    """github_api_url given (Enterprise, or a stand-in), or a GitHub App configured: the remote is GitHub's."""
    loopback = "http://127.0.0.1:8080/acme/notes.git"
    api = load_settings(flags={"remote": loopback, "github_api_url": "http://127.0.0.1:9999"}, env={})
    assert type(forge_for(api)) is GitHub
    app = dataclasses.replace(Settings(remote=loopback), github_app_id="1", github_app_installation_id=7)
    assert type(forge_for(app)) is GitHub
    assert type(forge_for(Settings(remote=loopback))) is Plain


def test_a_plain_host_says_what_it_cannot_do(tmp_path: Path) -> None:
    """No visibility, owner/name, minted token or refresh; creating a repository or a webhook is a clear error."""
    token_file = tmp_path / "token"
    token_file.write_text("plain-token-0123456789\n")
    plain = forge_for(Settings(remote="https://git.example/acme/notes.git", token_file=token_file))
    assert plain.visibility(lambda: None) is None and plain.repository() is None and plain.mint_token() is None
    assert plain.credentials("https://git.example/acme/notes.git") == ("x-access-token", "plain-token-0123456789")
    assert plain.credentials("ssh://git@git.example/acme/notes.git") is None
    assert not plain.renew_credentials()
    plain.on_token_refreshed(lambda _result: None)()  # nothing to stop, and no error
    with pytest.raises(CommitterError, match="plain git host: committer cannot create acme/notes"):
        plain.create_repository("acme", "notes")
    with pytest.raises(CommitterError, match="cannot register a webhook"):
        plain.register_webhook("acme", "notes", HOOK_URL, None, lambda: "s")
    assert plain.classify(1, "remote: Repository not found.\n", "").kind == "not_found"  # type: ignore[union-attr]


# -- a forge plugged in ----------------------------------------------------------------------------------


@dataclass
class Desk:
    """What the fake host knows, and what it was asked."""

    current: str = TOKEN  # the token credentials() gives
    visibility: str = "private"
    private: bool = True
    asked: list[str] = field(default_factory=list)
    hooks: list[tuple[str, str]] = field(default_factory=list)
    listeners: list[Callable[[str], None]] = field(default_factory=list)


class ExampleHost:
    """A forge for remotes under /examplehost/: its own token, its own refusal code, its own webhook form."""

    name = "examplehost"
    title = "Example Host"
    make_private = "Settings > Privacy"
    delivery_headers: tuple[str, ...] = ("X-Example-Token", "X-Example-Event")
    desk: ClassVar[Desk] = Desk()

    @classmethod
    def claims(cls, settings: Settings) -> bool:
        return "/examplehost/" in settings.remote

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def credentials(self, url: str) -> Credentials | None:
        self.desk.asked.append("credentials")
        return "x-access-token", self.desk.current

    def renew_credentials(self) -> bool:
        self.desk.asked.append("renew")
        self.desk.current = TOKEN
        return True

    def repository(self) -> tuple[str, str] | None:
        return "acme", "notes"

    def visibility(self, credentials: Callable[[], Credentials | None]) -> Seen | None:
        self.desk.asked.append("visibility")
        return Seen("acme/notes", self.desk.visibility)

    def create_repository(self, owner: str, name: str) -> Repository:
        self.desk.asked.append(f"create {owner}/{name}")
        return Repository(None, self.desk.private, True)

    def register_webhook(self, owner: str, name: str, url: str, secret: str | None,
                         new_secret: Callable[[], str]) -> str:
        self.desk.hooks.append((url, secret or new_secret()))
        return "created"

    def verify_delivery(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> Delivery | Refusal:
        lower = {k.lower(): v for k, v in headers.items()}
        if secret is None:
            return refused()
        if not hmac.compare_digest(lower.get("x-example-token", "").encode(), secret.encode()):
            return Refusal(401, "wrong X-Example-Token", "bad token")
        event = lower.get("x-example-event", "")
        fields = {"example_event": event}
        if event != "push":
            return Delivery("", event, fields)
        data = json.loads(body)
        return Delivery(str(data["id"]), "push", fields, PushEvent(data["ref"], data["after"], False, False, None))

    def classify(self, returncode: int, stderr: str, stdout: str, *, ref: str | None = None,
                 secrets: tuple[str, ...] = ()) -> PushError | None:
        if "EX042" in stderr:
            return PushError("too_large", "EX042: the repository is over its quota")
        return classify(returncode, stderr, stdout, ref=ref, secrets=secrets)

    def mint_token(self) -> Minted | None:
        return Minted("Example token", "minted by the host", 2_000_000_000.0)

    def on_token_refreshed(self, listener: Callable[[str], None]) -> Callable[[], None]:
        self.desk.listeners.append(listener)
        return lambda: self.desk.listeners.remove(listener)


@pytest.fixture
def desk(monkeypatch: pytest.MonkeyPatch) -> Desk:
    """ExampleHost registered first, with a fresh desk."""
    fresh = Desk()
    monkeypatch.setattr(ExampleHost, "desk", fresh)
    monkeypatch.setattr(forges, "FORGES", [ExampleHost, *forges.FORGES])
    return fresh


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GitHTTPServer]:
    """The loopback git server holding examplehost/notes.git, taking only TOKEN."""
    server = GitHTTPServer(tmp_path / "served", token=TOKEN, name="examplehost/notes.git")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_registered_forge_is_chosen_and_satisfies_the_protocol(desk: Desk, served: GitHTTPServer) -> None:
    """One registry line plugs a host in: its remotes get it, every other remote keeps its own forge."""
    forge: Forge = forge_for(served.url)
    assert isinstance(forge, ExampleHost)
    assert type(forge_for("https://github.com/acme/notes.git")) is GitHub
    assert type(forge_for("https://git.example/acme/notes.git")) is Plain


def test_the_push_uses_the_forges_credentials_and_gets_new_ones_once_refused(
    desk: Desk, served: GitHTTPServer, repo: GitRepo
) -> None:
    """The host refuses the forge's first token; the forge renews it and the same push goes through."""
    desk.current = "exh_Revoked"
    sha = commit(repo)
    assert Pusher(settings_for(repo, served.url), repo).push_now()["pushed"]
    assert served.head("main") == sha
    assert "renew" in desk.asked and desk.asked.count("credentials") >= 2


def test_the_forge_classifies_its_hosts_refusals_and_its_visibility_stops_a_push(
    desk: Desk, served: GitHTTPServer, repo: GitRepo
) -> None:
    """A refusal only this host words (EX042) is the kind its forge says; a public repository is not pushed to."""
    hook = served.repo / "hooks" / "pre-receive"
    hook.write_text('#!/bin/sh\necho "EX042: storage quota exhausted" >&2\nexit 1\n')
    hook.chmod(0o755)
    commit(repo)
    pusher = Pusher(settings_for(repo, served.url), repo)
    with pytest.raises(PushError) as quota:
        pusher.push_now()
    assert quota.value.kind == "too_large" and "EX042" in quota.value.detail
    hook.unlink()
    desk.visibility = "public"
    with pytest.raises(PushError) as public:
        Pusher(settings_for(repo, served.url), repo).push_now()
    assert public.value.kind == "public_repository"
    assert "acme/notes is public on Example Host" in public.value.detail
    assert served.head("main") is None


def test_doctor_asks_the_forge_for_its_token_visibility_and_refusals(
    desk: Desk, served: GitHTTPServer, tmp_path: Path
) -> None:
    """doctor shows the forge's minted token and visibility, and reaches the server with its credentials."""
    settings = Settings(remote=served.url, git_dir=tmp_path / "absent.git", data_dir=tmp_path)
    checks = {check.name: check for check in remote_checks(settings)}
    minted = checks["examplehost app"]
    assert minted.status == "ok" and minted.detail.startswith("Example token: minted by the host, expires 20")
    assert "token" not in checks  # the forge's token stands in for a configured one
    assert checks["visibility"].detail == "acme/notes is private"
    assert checks["remote"].status == "ok" and "reachable" in checks["remote"].detail
    desk.visibility = "public"
    assert {c.name: c for c in remote_checks(settings)}["visibility"].status == "fail"


def test_connect_creates_the_repository_and_webhook_through_the_forge(
    desk: Desk, served: GitHTTPServer, tmp_path: Path
) -> None:
    """connect asks the forge to create the repository and register the hook; the secret it made is the file's."""
    config = tmp_path / "etc" / "committer.toml"
    done = connect(Settings(remote=served.url), "acme/notes", config, HOOK_URL)
    assert done[0] == "repository acme/notes: created (private)"
    assert desk.asked[0] == "create acme/notes"
    secret_file = config.parent / "webhook_secret"
    assert desk.hooks == [(HOOK_URL, secret_file.read_text().strip())]
    written = tomllib.loads(config.read_text())
    assert written["remote"] == served.url and written["webhook_secret_file"] == str(secret_file)
    desk.private = False
    with pytest.raises(CommitterError, match=r"public on Example Host.*\(Settings > Privacy\)"):
        connect(Settings(remote=served.url), "acme/notes", config, None)


def deliver(port: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/webhook", body=body, headers={"Content-Type": "application/json", **headers})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_the_webhook_takes_deliveries_in_the_forges_form(desk: Desk, served: GitHTTPServer) -> None:
    """The forge's headers are required before the body is read, and its verification decides the pull."""
    pulls: list[str | None] = []
    forge = forge_for(served.url)
    receiver = WebhookReceiver("main", lambda: "s3cret-shared", pulls.append, lambda _head: None,
                               remote=served.url, forge=forge)

    def webhook(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, object]]:
        reply = receiver.handle(headers, body)
        return reply.status, reply.body

    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        webhook=webhook, webhook_headers=forge.delivery_headers)
    server.start()
    try:
        body = json.dumps({"id": "d1", "ref": "refs/heads/main", "after": "a" * 40}).encode()
        unsigned = deliver(server.port, {"X-Example-Event": "push"}, body)
        assert unsigned == (401, {"error": "missing X-Example-Token or X-Example-Event"})
        github_form = deliver(server.port, {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"}, body)
        assert github_form[0] == 401 and not pulls
        wrong = deliver(server.port, {"X-Example-Token": "guess", "X-Example-Event": "push"}, body)
        assert wrong == (401, {"error": "wrong X-Example-Token"})
        right = deliver(server.port, {"X-Example-Token": "s3cret-shared", "X-Example-Event": "push"}, body)
        assert right == (202, {"action": "pull_queued", "after": "a" * 40}) and pulls == ["a" * 40]
        again = deliver(server.port, {"X-Example-Token": "s3cret-shared", "X-Example-Event": "push"}, body)
        assert again[1]["action"] == "duplicate" and len(pulls) == 1
    finally:
        server.stop()


def test_token_refreshes_are_told_through_the_forge(desk: Desk, served: GitHTTPServer) -> None:
    """The daemon's metric listens through forge.on_token_refreshed; what it returns stops it."""
    metrics = Metrics(process=False)
    stop = forge_for(served.url).on_token_refreshed(metrics.token_refreshed)
    assert desk.listeners == [metrics.token_refreshed]
    stop()
    assert desk.listeners == []
    assert forge_for("https://github.com/acme/notes.git").on_token_refreshed(metrics.token_refreshed)() is None
