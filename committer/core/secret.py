"""The one secret reader: an environment variable, else a file setting, else a systemd credential.

Secrets are read when they are needed (before every push, every webhook delivery, every token mint),
so a rotated secret needs no restart; they are never kept in a file of committer's own or in argv.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from committer.core import logs


class SecretUnreadable(Exception):
    """The secret's file is there but cannot be read; `path` names it (never the content)."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        if isinstance(cause, UnicodeDecodeError):
            self.reason = "it is not UTF-8 text"
        elif isinstance(cause, OSError) and cause.strerror:
            self.reason = cause.strerror[:1].lower() + cause.strerror[1:]  # no such file or directory
        else:
            self.reason = cause.__class__.__name__
        super().__init__(f"cannot read {path}: {self.reason}")
        self.path = path


@dataclass(frozen=True)
class Source:
    """Where one secret may come from: `env` (a variable name), a file setting, a credential name."""

    env: str | None
    credential: str


def read(source: Source, path: Path | None, environ: Mapping[str, str] | None = None, *, text: bool = True
         ) -> tuple[Path | None, bytes] | None:
    """(the file it came from or None for the environment, the secret); None when none is configured.

    Order: the environment variable, the file setting `path`, then $CREDENTIALS_DIRECTORY/<credential>.
    Text secrets are stripped, and an empty one counts as none. SecretUnreadable for a file that cannot
    be read."""
    env = os.environ if environ is None else environ
    if source.env and env.get(source.env, "").strip():
        return None, env[source.env].strip().encode()
    if path is None and env.get("CREDENTIALS_DIRECTORY"):
        candidate = Path(env["CREDENTIALS_DIRECTORY"]) / source.credential
        try:
            path = candidate if candidate.is_file() else None
        except OSError:  # a credentials directory this user may not read: reading it below says so
            path = candidate
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecretUnreadable(path, exc) from None
    if text:
        try:
            data = data.decode().strip().encode()
        except UnicodeDecodeError as exc:
            raise SecretUnreadable(path, exc) from None
        if not data:
            return None
    return path, data


def read_text(source: Source, path: Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret as text, or None when none is configured (SecretUnreadable when its file cannot be read)."""
    found = read(source, path, environ)
    return None if found is None else found[1].decode()


WEBHOOK = Source("COMMITTER_WEBHOOK_SECRET", "webhook_secret")
NOTIFY = Source("COMMITTER_NOTIFY_SECRET", "notify_secret")
UI_TOKEN = Source("COMMITTER_UI_TOKEN", "ui_token")


def read_or_log(source: Source, path: Path | None, what: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret as text; None when there is none or it cannot be read (logged as `<what>_unreadable`:
    the caller then refuses whatever needed it)."""
    try:
        return read_text(source, path, environ)
    except SecretUnreadable as exc:
        logs.get(__name__).error(f"{what}_unreadable", path=str(exc.path), error=str(exc))
        return None


def signature(secret: str | bytes, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `body`: GitHub's X-Hub-Signature-256, and committer's own
    X-Committer-Signature-256 on the events it sends."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def webhook_secret(secret_file: Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The push webhook's secret, read again for every delivery (every delivery is refused without it)."""
    return read_or_log(WEBHOOK, secret_file, "webhook_secret", environ)


def ui_token(token_file: Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The history pages' token off loopback, read again for every request (the pages are off without it)."""
    return read_or_log(UI_TOKEN, token_file, "ui_token", environ)
