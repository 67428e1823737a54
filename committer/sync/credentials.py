"""The remote's credentials: the token from its sources, given to git only through a credential helper
scoped to the remote's origin (never to an LFS storage host or a redirect target)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from committer.core import secret
from committer.core.settings import Settings
from committer.sync.errors import PushError

TOKEN_ENV = "COMMITTER_TOKEN"


TOKEN_USER = "x-access-token"


# The credential reaches git as two variables of the git process's own environment, read by a credential
# helper that git (and git-lfs, through `git credential fill`) runs only for the remote's origin.
USER_ENV = "COMMITTER_GIT_USER"


PASSWORD_ENV = "COMMITTER_GIT_PASSWORD"


HELPER = (
    "!f() { test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' "
    "\"$COMMITTER_GIT_USER\" \"$COMMITTER_GIT_PASSWORD\"; }; f"
)


TOKEN = secret.Source(TOKEN_ENV, "token")


def read_token(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """The HTTPS token: COMMITTER_TOKEN, else token_file (read now), else $CREDENTIALS_DIRECTORY/token."""
    try:
        return secret.read_text(TOKEN, settings.token_file, environ)
    except secret.SecretUnreadable as exc:
        raise PushError("credential_file", f"the token file {exc.path} cannot be read: {exc.reason}") from None


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """An http(s) URL without its user:password part, and that part; other URLs are left alone."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


def remote_path(settings: Settings) -> tuple[str, str] | None:
    """(host, path) of the remote URL, scp-like ssh included; None for local paths."""
    url = split_credentials(settings.remote)[0]
    if "://" in url:
        parts = urlsplit(url)
        return (parts.hostname or "").lower(), parts.path
    if ":" in url and not url.startswith("/"):  # scp-like: git@host:owner/repo.git
        address, _, path = url.partition(":")
        return address.rpartition("@")[2].lower(), path
    return None


def basic_header(user: str, password: str) -> str:
    """The Authorization header a host accepts for a token: Basic base64(user:password)."""
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def origin(url: str) -> str:
    """scheme://host[:port] of an http(s) URL, without credentials or path: what a credential is scoped to."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme.lower()}://{host}"


def helper_config(url: str) -> dict[str, str]:
    """Git config that answers credential requests for `url`'s origin only, from the process environment.

    The empty `credential.helper` first drops any helper configured before (git reads command-scope
    config last); the scoped helper is then the only one, and git asks it only for this origin, so a
    redirect to another host or an LFS storage host never gets the credential.
    """
    return {"credential.helper": "", f"credential.{origin(url)}.helper": HELPER}
