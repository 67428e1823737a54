"""Who may read the pages and what a state-changing request must carry.

* A loopback bind: the pages are open to whoever can reach the port (only this machine), but only under a
  loopback Host name, so another site cannot read them through DNS rebinding.
* Any other bind: every page needs the ui token (COMMITTER_UI_TOKEN, ui_token_file, or the systemd
  credential `ui_token`), as `Authorization: Bearer <token>` or through the login form, which sets an
  HttpOnly, SameSite=Strict cookie holding an HMAC of the token (never the token itself). Without a
  token the pages are off there.
* Every POST carries the per-process CSRF token from the page, and a foreign Origin (or a browser's
  `Sec-Fetch-Site: cross-site`) is refused whatever it carries.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from committer.core import logs
from committer.core.errors import ConfigError

log = logs.get("committer.http")

COOKIE = "committer_ui"
OPEN, TOKEN, OFF = "open", "token", "off"


def check_token_file(token_file: Path | None) -> None:
    """A configured ui_token_file must be readable and hold a token: ConfigError (exit 2) otherwise."""
    if token_file is None:
        return
    try:
        text = token_file.read_text().strip()
    except FileNotFoundError:
        raise ConfigError("ui-token-file", f"{token_file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("ui-token-file", f"{token_file} cannot be read: {exc.__class__.__name__}") from None
    if not text:
        raise ConfigError("ui-token-file", f"{token_file} is empty; put a long random token in it")
    if len(text) < 16:
        raise ConfigError("ui-token-file", f"the token in {token_file} is shorter than 16 characters")


def is_loopback(host: str) -> bool:
    """Whether an address (or name) is this machine only: 127.0.0.0/8, ::1, localhost."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_of(netloc: str) -> str:
    """The host part of a Host header or an Origin's netloc, without the port."""
    value = netloc.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass
class Access:
    """The access rule of one server, decided at start; the token itself is read per request."""

    mode: str
    token: Callable[[], str | None] = lambda: None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    login_csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @staticmethod
    def decide(bind_host: str, token: Callable[[], str | None]) -> Access:
        """Open on a loopback bind; behind the token on any other; off there without one (logged)."""
        if is_loopback(bind_host):
            return Access(OPEN, token)
        if token() is None:  # the expected container set-up (probes on 0.0.0.0, no pages): info, not a warning
            log.info(
                "pages_off", host=bind_host,
                reason="--http binds an address other than loopback and no ui token is configured",
                action="set ui_token_file, COMMITTER_UI_TOKEN or the systemd credential ui_token to turn them on",
            )
            return Access(OFF, token)
        return Access(TOKEN, token)

    def cookie_value(self, token: str) -> str:
        """What the login cookie holds: an HMAC of the token under a per-process key (a restart or a new
        token logs everyone out; the cookie never reveals the token)."""
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def authorized(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """Whether a request may read the pages."""
        if self.mode == OPEN:
            return True
        if self.mode == OFF:
            return False
        token = self.token()
        if token is None:
            return False
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
            return True
        cookie = cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.cookie_value(token).encode())

    def host_ok(self, headers: Mapping[str, str]) -> bool:
        """On an open (loopback) server, only loopback Host names: a DNS-rebound name is refused."""
        return self.mode != OPEN or is_loopback(host_of(headers.get("host", "")))

    def same_origin(self, headers: Mapping[str, str]) -> bool:
        """A POST's Origin (when the browser sends one) names this very host and port, and the browser
        does not call it cross-site."""
        if headers.get("sec-fetch-site", "") == "cross-site":
            return False
        origin = headers.get("origin")
        if origin is None:
            return True  # not a browser form post from another site (browsers send Origin on every POST)
        parts = urlsplit(origin)
        if origin == "null" or parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return _netloc(parts.netloc, parts.scheme) == _netloc(headers.get("host", ""), parts.scheme)

    def same_origin_get(self, headers: Mapping[str, str]) -> bool:
        """A GET that costs work (a restore preview) is answered only when the browser says it comes from
        these pages or from the address bar; a cross-site `<img src>` gets nothing computed."""
        site = headers.get("sec-fetch-site")
        if site is not None:
            return site in ("same-origin", "none")
        if headers.get("origin") is not None:
            return self.same_origin(headers)
        referer = headers.get("referer")
        if referer is None:
            return False  # nothing says where it came from: the refusal page links back here
        parts = urlsplit(referer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return _netloc(parts.netloc, parts.scheme) == _netloc(headers.get("host", ""), parts.scheme)

    def csrf_ok(self, sent: str, login: bool = False) -> bool:
        expected = self.login_csrf if login else self.csrf
        return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


def _netloc(value: str, scheme: str) -> str:
    """host:port with the scheme's default port spelled out, lower case."""
    value = value.strip().lower()
    default = "443" if scheme == "https" else "80"
    if value.startswith("["):
        return value if "]:" in value else f"{value}:{default}"
    return value if value.count(":") == 1 else f"{value}:{default}"


class Tries:
    """At most `most` attempts per client in any `window` seconds (the login form): a guessed token takes
    forever, while a person who mistyped waits a minute at most."""

    def __init__(self, most: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 clients: int = 10_000) -> None:
        self.most, self.window, self.clock, self.clients = most, window, clock, clients
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """0 when this attempt may go on (it is counted), else the seconds until the next one may."""
        now = self.clock()
        with self._lock:
            recent = [t for t in self._seen.pop(client, []) if now - t < self.window]
            if len(recent) >= self.most:
                self._seen[client] = recent
                return max(1.0, self.window - (now - recent[0]))
            recent.append(now)
            self._seen[client] = recent
            if len(self._seen) > self.clients:  # bounded memory: forget the clients seen longest ago
                for name in list(self._seen)[: len(self._seen) - self.clients]:
                    del self._seen[name]
            return 0.0
