"""GitHub's REST API for the GitHub forge: App installation tokens and the visibility check. The only jwt
import; HTTP goes through core.web. Both are imported by the calls that need them, so choosing the forge
of a remote (which reads this module's names) loads neither.

Installation tokens live in this process's memory only: they reach git through the credential helper
of remote.py, and the REST calls in an `Authorization` header sent to `github_api_url` alone.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from committer import __version__
from committer.core import logs, secret
from committer.core.errors import redact
from committer.core.settings import DEFAULT_GITHUB_API, Settings
from committer.sync.credentials import TOKEN_USER, remote_path
from committer.sync.errors import PushError

if TYPE_CHECKING:
    from committer.core import web

log = logs.get("committer.github")

API_VERSION = "2022-11-28"
KEY_CREDENTIAL = "github_app_private_key"
JWT_BACKDATE = 60  # iat this far in the past, against clock skew
JWT_AHEAD = 540  # exp this far ahead: ten minutes after iat in all, GitHub's limit
REFRESH_BEFORE = 300.0  # a new token when the current one has less than this left (or half its life)
TIMEOUT = 15.0  # a hung API must not hold a push, or a shutdown, for long
_MESSAGE_MAX = 300

_listeners: list[Callable[[str], None]] = []
_tokens: dict[tuple[str, str, int, str], AppTokens] = {}
_tokens_lock = threading.Lock()


def on_refresh(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call `listener(result)` after every mint: ok, refused (permanent) or unreachable (transient).

    Returns the function that stops it.
    """
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def _notify(result: str) -> None:
    for listener in tuple(_listeners):
        try:
            listener(result)
        except Exception:  # a broken listener must not break authentication
            log.exception("github_listener_failed")


def request(
    settings: Settings, method: str, path: str, *, bearer: str | None = None,
    basic: tuple[str, str] | None = None, body: Mapping[str, Any] | None = None, what: str = "GitHub API",
) -> web.Response:
    """One call to `github_api_url`; an unreachable or hung API is a transient PushError."""
    from committer.core import web  # the HTTP client, only for those who call the API

    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": f"committer/{__version__}",
    }
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    auth = web.BasicAuth(*basic) if basic is not None and bearer is None else None
    url = settings.github_api_url + path
    timeout = min(TIMEOUT, settings.push_timeout)
    try:
        # httpx drops Authorization on a redirect to another origin; GitHub redirects renamed repositories.
        with web.Client(timeout=timeout, follow_redirects=True) as client:
            return client.request(method, url, headers=headers, auth=auth, json=body)
    except web.HTTPError as exc:
        raise PushError(
            "transient", f"{what}: {redact(url)} did not answer ({exc.__class__.__name__}: {redact(str(exc))})"
        ) from None


def message(response: web.Response) -> str:
    """The API's own words for a refusal: its JSON `message`, else the start of the body."""
    try:
        data = response.json()
        text = str(data.get("message") or "") if isinstance(data, dict) else ""
    except ValueError:
        text = ""
    text = text or response.text.strip() or response.reason_phrase
    text = redact(" ".join(text.split()))
    return f"HTTP {response.status_code}: {text[:_MESSAGE_MAX]}"


def failure(response: web.Response, what: str) -> PushError:
    """A refusal of the API, classified: 5xx, 429 and rate limits are transient; 404 not found; else auth."""
    status = response.status_code
    detail = f"{what}: {message(response)}"
    limited = status == 403 and response.headers.get("x-ratelimit-remaining") == "0"
    if status >= 500 or status == 429 or limited:
        return PushError("transient", detail)
    if status == 404:
        return PushError("not_found", detail)
    return PushError("auth", detail)


PRIVATE_KEY = secret.Source(None, KEY_CREDENTIAL)


def read_private_key(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[Path, bytes]:
    """The App's PEM key: github_app_private_key_file, else the systemd credential; read at every mint."""
    try:
        found = secret.read(PRIVATE_KEY, settings.github_app_private_key_file, environ, text=False)
    except secret.SecretUnreadable as exc:
        raise PushError("auth", f"cannot read the GitHub App private key {exc.path}: {exc.reason}") from None
    if found is None or found[0] is None:
        raise PushError(
            "auth", "no GitHub App private key: set github_app_private_key_file or the systemd credential "
            f"{KEY_CREDENTIAL}"
        )
    return found[0], found[1]


def app_jwt(settings: Settings, now: float, environ: Mapping[str, str] | None = None) -> str:
    """The App's RS256 assertion: iss the App id, iat a minute back, exp nine minutes ahead."""
    import jwt  # only for those who use an App

    path, key = read_private_key(settings, environ)
    claims = {"iat": int(now) - JWT_BACKDATE, "exp": int(now) + JWT_AHEAD, "iss": settings.github_app_id}
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise PushError(
            "auth",
            f"the GitHub App private key {path} is not an RSA private key in PEM form ({exc.__class__.__name__})",
        ) from None


class AppTokens:
    """Installation tokens of one App installation: minted on demand, refreshed before they expire."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._life = 0.0

    def token(self) -> str:
        """A token with comfortable time left: the current one, or a new one minted now."""
        with self._lock:
            now = self._clock()
            if self._token is None or self._expires - now < min(REFRESH_BEFORE, self._life / 2):
                self._mint(now)
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """The host refused the current token: the next call mints a new one."""
        with self._lock:
            self._token = None

    @property
    def expires_at(self) -> float | None:
        """Unix time the current token expires, if there is one."""
        with self._lock:
            return self._expires if self._token is not None else None

    def _mint(self, now: float) -> None:
        settings = self.settings
        path = f"/app/installations/{settings.github_app_installation_id}/access_tokens"
        try:
            assertion = app_jwt(settings, now)
            response = request(settings, "POST", path, bearer=assertion, what="GitHub App token")
            if response.status_code != 201:
                raise failure(response, "GitHub App token")
            data = response.json()
            token, expires = data["token"], _parse_time(data["expires_at"])
            if not isinstance(token, str) or not token:
                raise ValueError("no token")
        except PushError as exc:
            _notify("unreachable" if exc.kind == "transient" else "refused")
            log.warning("github_token_refresh", result="failed", kind=exc.kind, message=exc.detail)
            raise
        except (ValueError, KeyError, TypeError):
            _notify("unreachable")
            log.warning("github_token_refresh", result="failed", kind="transient", message="malformed answer")
            raise PushError("transient", "GitHub App token: the API's answer has no token and expires_at") from None
        logs.register_secret(token)
        self._token, self._expires, self._life = token, expires, max(0.0, expires - now)
        _notify("ok")
        log.info("github_token_refresh", result="ok", expires_at=data["expires_at"],
                 seconds=round(self._life))


def _parse_time(text: object) -> float:
    if not isinstance(text, str):
        raise ValueError(f"not a time: {text!r}")
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def app_tokens(settings: Settings) -> AppTokens:
    """The process's one token cache for this App installation (the push, pull and fetch calls share it)."""
    key = (settings.github_api_url, settings.github_app_id, settings.github_app_installation_id,
           str(settings.github_app_private_key_file))
    with _tokens_lock:
        if key not in _tokens:
            _tokens[key] = AppTokens(settings)
        return _tokens[key]


def api_url_set(settings: Settings) -> bool:
    """Whether github_api_url was given (GitHub Enterprise, or a stand-in): its remote is then GitHub's."""
    return settings.github_api_url != DEFAULT_GITHUB_API or settings.source_of("github_api_url") != "default"


_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")  # `_` for enterprise managed users
_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")


def repository(settings: Settings) -> tuple[str, str] | None:
    """(owner, repo) when the remote is on GitHub: host github.com, or any host once github_api_url is set."""
    found = remote_path(settings)
    if found is None:
        return None
    host, path = found
    if host != "github.com" and not api_url_set(settings):
        return None
    names = [part for part in path.strip("/").split("/") if part]
    owner, name = (names[-2], names[-1].removesuffix(".git")) if len(names) >= 2 else ("", "")
    # Only names GitHub allows reach the API's paths: never `..`, `%2e` or `?` from a remote's path.
    if not _OWNER.fullmatch(owner) or not _REPO.fullmatch(name) or name in (".", ".."):
        raise PushError("not_found", f"cannot tell the GitHub repository (owner/name) from {redact(settings.remote)}")
    return owner, name


def api_auth(credentials: tuple[str, str] | None) -> dict[str, Any]:
    """How the REST calls authenticate with what git uses: Bearer for tokens, Basic for user:password."""
    if credentials is None:
        return {}
    user, password = credentials
    return {"bearer": password} if user == TOKEN_USER else {"basic": credentials}


class Visibility:
    """Asks GitHub whether a repository is private, with the remote's own credentials."""

    def __init__(
        self,
        settings: Settings,
        credentials: Callable[[], tuple[str, str] | None],
        invalidate: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        self._invalidate = invalidate

    def is_private(self, target: tuple[str, str]) -> bool:
        """GET /repos/{owner}/{repo} with the remote's credentials: its `private` field."""
        owner, name = target
        credentials = self._credentials()
        response = request(self.settings, "GET", f"/repos/{owner}/{name}", what="GitHub visibility check",
                           **api_auth(credentials))
        if response.status_code == 401 and self._invalidate is not None:
            self._invalidate()
            credentials = self._credentials()
            response = request(self.settings, "GET", f"/repos/{owner}/{name}", what="GitHub visibility check",
                               **api_auth(credentials))
        if response.status_code == 404 and credentials is None:
            private = True  # invisible without credentials: not public (SSH remotes have no token to ask with)
        elif response.status_code != 200:
            raise failure(response, "GitHub visibility check")
        else:
            try:
                private = response.json()["private"] is True
            except (ValueError, KeyError, TypeError):
                raise PushError("transient", "GitHub visibility check: the answer has no `private` field") from None
        log.info("github_visibility", repository=f"{owner}/{name}", private=private)
        return private
