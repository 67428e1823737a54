"""The fleet's API token: the first line of `api_token_file`, read at start (a missing or empty file stops the
process with exit 2) and read again whenever the file changes, so a rotated token takes effect without a
restart. A file that later goes missing or empty keeps the last good token (logged once), never none."""

from __future__ import annotations

import base64
import hmac
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from committer.core import logs
from committer.core.errors import ConfigError
from committer.serve.access import host_of, is_loopback

log = logs.get("committer.fleet")


def _read(path: Path) -> bytes:
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError("api_token_file", f"cannot read {path}: {exc.strerror}") from None
    if not token or b"\n" in token:
        raise ConfigError("api_token_file", f"{path} must hold the token on one line")
    logs.register_secret(token.decode(errors="replace"))
    return token


class TokenFile:
    """The current token of one file (see the module's docstring); safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen = self._stamp()
        self._token = _read(path)
        self._complained = False

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def current(self) -> bytes:
        stamp = self._stamp()
        with self._lock:
            if stamp == self._seen:
                return self._token
            try:
                self._token = _read(self.path)
            except ConfigError as exc:
                if not self._complained:
                    log.error("api_token_unreadable", error=exc.message, action="the last good token stays in use")
                    self._complained = True
                return self._token
            self._seen, self._complained = stamp, False
            log.info("api_token_reread", file=str(self.path))
            return self._token

    def accepts(self, headers: Mapping[str, str]) -> bool:
        """Whether `Authorization` carries the token: `Bearer <token>`, or HTTP Basic with the token as the
        password (what a browser asks for), compared in constant time."""
        given = headers.get("authorization", "").strip()
        scheme, _, value = given.partition(" ")
        token = self.current()
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), token)
        if scheme.lower() == "basic":
            try:
                password = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except ValueError:
                return False
            return hmac.compare_digest(password, token)
        return False


class PageAccess:
    """Who may read the fleet's overview page and /metrics (fleet/web.py's docstring), decided at start."""

    def __init__(self, bind_host: str, http: str, token_file: Path | None) -> None:
        self.open = is_loopback(bind_host)
        self.token = TokenFile(token_file) if token_file and not self.open else None
        if not self.open and self.token is None:
            log.info("fleet_pages_off", http=http, reason="--http binds an address other than loopback and no "
                     "--api-token-file is set", action="set --api-token-file to read / and /metrics there")

    def refusal(self, headers: Mapping[str, str]) -> tuple[int, str] | None:
        """None when a request with these headers may read them; else its HTTP status and one line."""
        if self.open:
            if is_loopback(host_of(headers.get("host", ""))):
                return None
            return 403, "this server answers loopback host names only"
        if self.token is None:
            return 403, "off: this address needs --api-token-file"
        if self.token.accepts(headers):
            return None
        return 401, "the API token is needed (Authorization: Bearer, or Basic with the token as the password)"
