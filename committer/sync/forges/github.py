"""GitHub (and GitHub Enterprise) as a forge: App installation tokens, the visibility rule, `connect`'s
repository and push webhook, pull requests, and the signed webhook deliveries (X-Hub-Signature-256).

The REST client is `committer.sync.github`; it loads httpx and jwt only when it calls the API, so a
remote that uses neither an App nor the visibility rule never loads them.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from committer.commit.trailer import too_deep
from committer.core import logs
from committer.core.errors import ConfigError
from committer.core.secret import signature
from committer.core.settings import Settings
from committer.sync import github as api
from committer.sync.credentials import TOKEN_USER, read_token, remote_path, split_credentials
from committer.sync.errors import PushError, classify
from committer.sync.forge import (
    DEPTH_MAX,
    Credentials,
    Delivery,
    Minted,
    Named,
    PullRequest,
    PushEvent,
    Refusal,
    Repository,
    Seen,
    refused,
    repository_key,
)

log = logs.get("committer.github")

HEADERS = ("X-Hub-Signature-256", "X-GitHub-Event")


class GitHub:
    """github.com, or the host of github_api_url: a remote there, or a GitHub App, makes the forge GitHub."""

    name: str = "github"
    title: str = "GitHub"
    make_private: str = "Settings > General > Danger Zone"
    delivery_headers: tuple[str, ...] = HEADERS

    @classmethod
    def claims(cls, settings: Settings) -> bool:
        """A GitHub App is configured, github_api_url was given, or the remote's host is github.com."""
        found = remote_path(settings) if settings.remote else None
        on_github = found is not None and found[0] == "github.com"
        return bool(settings.github_app_id) or api.api_url_set(settings) or on_github

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = split_credentials(settings.remote)[0]
        # App tokens are for git over HTTPS; an SSH remote authenticates with its key.
        self._app = bool(settings.github_app_id) and urlsplit(url).scheme.lower() in ("http", "https")

    def credentials(self, url: str) -> Credentials | None:
        """An installation token of the App, else the token from its sources (COMMITTER_TOKEN, token_file)."""
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            return None
        if self._app:
            return TOKEN_USER, api.app_tokens(self.settings).token()
        token = read_token(self.settings)
        return (TOKEN_USER, token) if token else None

    def renew_credentials(self) -> bool:
        """With an App, a refused token was revoked or expired early: the next call mints a new one."""
        if not self._app:
            return False
        log.info("github_token_refused", action="minting a new installation token")
        api.app_tokens(self.settings).invalidate()
        return True

    def repository(self) -> tuple[str, str] | None:
        """(owner, name) from the remote URL; a PushError when its path is not a GitHub name."""
        return api.repository(self.settings)

    def visibility(self, credentials: Callable[[], Credentials | None]) -> Seen | None:
        """GET /repos/{owner}/{name} with the remote's credentials; None for a remote not on GitHub."""
        target = api.repository(self.settings)
        if target is None:
            return None
        invalidate = api.app_tokens(self.settings).invalidate if self._app else None
        private = api.Visibility(self.settings, credentials, invalidate).is_private(target)
        return Seen("/".join(target), "private" if private else "public")

    def create_repository(self, owner: str, name: str) -> Repository:
        """GET the repository; when missing, POST it (private) for the user or organisation that owns it."""
        repo = self._call("GET", f"/repos/{owner}/{name}", "read the repository")
        created = False
        if repo is None:
            kind = (self._call("GET", f"/users/{owner}", "look up the owner") or {}).get("type")
            if kind is None:
                raise ConfigError("OWNER/REPO", f"{owner} is neither a GitHub user nor an organisation")
            path = f"/orgs/{owner}/repos" if kind == "Organization" else "/user/repos"
            body = {"name": name, "private": True, "auto_init": False, "has_issues": False, "has_wiki": False,
                    "has_projects": False, "description": "Versioned backup kept by committer"}
            repo = self._call("POST", path, f"create {owner}/{name}", body=body)
            created = True
            log.info("github_repo_created", repository=f"{owner}/{name}")
        url = repo.get("clone_url")
        return Repository(f"https://github.com/{owner}/{name}.git" if url is None else url,
                          repo.get("private") is True, created)

    def register_webhook(self, owner: str, name: str, url: str, secret: str | None,
                         new_secret: Callable[[], str]) -> str:
        """The repository's push hook to `url`: listed first, then created or updated only when it is wrong."""
        hooks = self._call("GET", f"/repos/{owner}/{name}/hooks", "list the webhooks") or []
        hook = next((h for h in hooks if (h.get("config") or {}).get("url") == url), None)
        right = hook is not None and hook.get("active") and "push" in (hook.get("events") or [])
        if right and secret:
            return "unchanged"
        if not secret:
            secret = new_secret()
        config = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
        logs.register_secret(secret)
        if hook is None:
            body = {"name": "web", "active": True, "events": ["push"], "config": config}
            self._call("POST", f"/repos/{owner}/{name}/hooks", "create the webhook", body=body)
            return "created"
        self._call("PATCH", f"/repos/{owner}/{name}/hooks/{hook['id']}", "update the webhook",
                   body={"active": True, "events": ["push"], "config": config})
        return "updated"

    def verify_delivery(self, headers: Mapping[str, str], body: bytes, secret: str | None) -> Delivery | Refusal:
        """X-Hub-Signature-256 over the raw body, compared in constant time; then the event it names."""
        return verify_delivery(headers, body, secret)

    def classify(self, returncode: int, stderr: str, stdout: str, *, ref: str | None = None,
                 secrets: tuple[str, ...] = ()) -> PushError | None:
        """git's answer by the rules table, which knows GitHub's rejections (GH001, GH006, GH007, GH013)."""
        return classify(returncode, stderr, stdout, ref=ref, secrets=secrets)

    def mint_token(self) -> Minted | None:
        """With an App: its key read and an installation token minted now, bypassing the process's cache."""
        if not self._app:
            return None
        settings = self.settings
        what = f"App {settings.github_app_id}, installation {settings.github_app_installation_id}"
        try:
            path, _key = api.read_private_key(settings)
            tokens = api.AppTokens(settings)  # a fresh mint, not the process's cached token
            tokens.token()
        except PushError as exc:
            raise PushError(exc.kind, f"{what}: {exc.detail}") from None
        return Minted(what, f"key {path} read, installation token minted", tokens.expires_at)

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest | None:
        """POST /repos/{owner}/{name}/pulls; when GitHub answers 422 because one is open for `head` already,
        that one (GET .../pulls?head=owner:head)."""
        owner, name = self._names("open a pull request")
        path = f"/repos/{owner}/{name}/pulls"
        what = f"open a pull request of {head} into {base}"
        response = api.request(self.settings, "POST", path, what=what, **self._auth(what),
                               body={"title": title, "head": head, "base": base, "body": body,
                                     "maintainer_can_modify": True})
        if response.status_code == 422:
            query = f"?head={quote(f'{owner}:{head}', safe='')}&state=open"
            found = self._call("GET", path + query, "find the open pull request", needs=what) or []
            if isinstance(found, list) and found and isinstance(found[0], dict):
                return _pull_request(found[0])
            raise PushError("rejected", f"{what}: {api.message(response)}")
        if response.status_code != 201:
            raise api.failure(response, what)
        return _pull_request(response.json())

    def pull_request(self, number: int) -> PullRequest | None:
        """GET /repos/{owner}/{name}/pulls/{number}: open or closed, merged or not."""
        owner, name = self._names("read a pull request")
        what = f"read pull request #{number}"
        found = self._call("GET", f"/repos/{owner}/{name}/pulls/{int(number)}", what, needs=what)
        return None if found is None else _pull_request(found)

    def _names(self, what: str) -> tuple[str, str]:
        target = api.repository(self.settings)
        if target is None:
            raise ConfigError("remote", f"cannot {what}: the remote is not a GitHub repository (owner/name)")
        return target

    def on_token_refreshed(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Every App token mint of this process, by result; nothing without an App."""
        if not self.settings.github_app_id:
            return lambda: None
        return api.on_refresh(listener)

    def _auth(self, needs: str = "connect") -> dict[str, Any]:
        if self.settings.github_app_id:
            return {"bearer": api.app_tokens(self.settings).token()}
        token = read_token(self.settings)
        if not token:
            raise ConfigError(
                "token", f"{needs} needs a token (COMMITTER_TOKEN, token_file or the systemd credential `token`) "
                "or a GitHub App (github_app_id, github_app_installation_id, github_app_private_key_file)"
            )
        return api.api_auth((TOKEN_USER, token))

    def _call(self, method: str, path: str, what: str, needs: str = "connect", **kwargs: Any) -> Any:
        response = api.request(self.settings, method, path, what=what, **self._auth(needs), **kwargs)
        if response.status_code >= 300 and not (response.status_code == 404 and method == "GET"):
            raise api.failure(response, what)
        return None if response.status_code == 404 else response.json()


def _pull_request(data: Any) -> PullRequest:
    """A pull request from GitHub's JSON; a transient PushError when the answer lacks its fields."""
    try:
        number, url = data["number"], data["html_url"]
        if not isinstance(number, int) or not isinstance(url, str):
            raise TypeError(number)
        return PullRequest(number, url, str(data.get("state") or "open"), data.get("merged") is True)
    except (KeyError, TypeError):
        raise PushError("transient", "GitHub pull request: the answer has no number and html_url") from None


def verify_delivery(headers: Mapping[str, str], body: bytes, secret: str | None) -> Delivery | Refusal:
    """A delivery in GitHub's form (which other hosts send too): signed, named by X-GitHub-Event."""
    lower = {k.lower(): v for k, v in headers.items()}
    delivery = lower.get("x-github-delivery", "")
    event = lower.get("x-github-event", "")
    if secret is None:
        return refused(delivery)
    sent = lower.get("x-hub-signature-256", "")
    if not sent:
        return Refusal(401, "missing X-Hub-Signature-256", "missing X-Hub-Signature-256", delivery)
    if not hmac.compare_digest(sent.strip().encode(), signature(secret, body).encode()):
        return Refusal(401, "signature does not match", "bad signature", delivery)
    fields = {"github_event": event}
    if event != "push":
        return Delivery(delivery, event, fields)
    payload = _payload(lower.get("content-type", ""), body)
    return Delivery(delivery, event, fields, None if payload is None else _push(payload))


def _push(payload: Mapping[str, Any]) -> PushEvent:
    after = payload.get("after")
    head = after if isinstance(after, str) and after.strip("0") else None
    return PushEvent(payload.get("ref"), head, payload.get("forced") is True, payload.get("deleted") is True,
                     payload_repository(payload))


def _payload(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The push event: JSON, or GitHub's form encoding (a `payload` field holding the JSON)."""
    raw: bytes | str = body
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", "replace"))
        raw = (fields.get("payload") or [""])[0]
    if too_deep(raw, DEPTH_MAX):
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested past what the parser takes
        return None
    return value if isinstance(value, dict) else None


def payload_repository(payload: Mapping[str, Any]) -> Named | None:
    """The repository a push delivery names, or None when it names none (then it is acted on as before)."""
    repo = payload.get("repository")
    if not isinstance(repo, dict):
        return None
    keys = tuple(repository_key(v) for k in ("clone_url", "html_url", "ssh_url", "git_url", "url")
                 if isinstance(v := repo.get(k), str) and v)
    full_name = repo.get("full_name")
    name = full_name.strip().strip("/") if isinstance(full_name, str) and full_name.strip() else None
    if not keys and name is None:
        return None
    return Named(keys, name)
