"""A repository's credential: the file of that name in the credentials directory, re-read at every task.

A file holding a private key (OpenSSH or PEM) is an SSH key: git gets an ssh command naming the file (a path,
not a secret). Any other file's first line is a token, or `user:token`; the user defaults by the source's
kind. The token reaches git only through committer's credential helper, scoped to the source's origin, and
two variables of git's own environment: never in a URL, argv, the repository's config, the database or a log.
Lines after the first may tie the token to hosts (`host: github.com`, `hosts: a.example, b.example:8443`): a
source on any other host is refused before git runs, so a repository created with a borrowed credential name
cannot carry the token to a host it was not meant for.
"""

from __future__ import annotations

import base64
import re
import shlex
import stat
from pathlib import Path
from urllib.parse import urlsplit

from committer.core import logs
from committer.fleet import rules
from committer.fleet.gitops import Access, TaskFailed, config_env
from committer.sync.credentials import PASSWORD_ENV, USER_ENV, helper_config

USERS = {"github": "x-access-token", "gitlab": "oauth2"}  # any other host: "git"
MAX_SIZE = 64 * 1024  # a token or a key is far smaller; a larger file is a mistake, not a credential
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_MIN_SECRET = 6  # shorter values would blank out ordinary words in messages and logs
_HOSTS = re.compile(r"^\s*hosts?\s*[:=]\s*(?P<hosts>.*)$", re.IGNORECASE)


def load(directory: Path | None, name: str, url: str, source_type: str) -> Access:
    """How git reaches `url` with the credential `name` ('' for none), read from the file now."""
    if not name:
        return Access()
    try:
        rules.credential(name)
    except rules.Invalid as exc:
        raise TaskFailed(exc.message, retry=False) from None
    if directory is None:
        raise TaskFailed(f"credential {name!r} not found: no credentials directory is set (--credentials-dir)",
                         retry=True)
    path = directory / name
    try:
        if not path.resolve().is_relative_to(directory.resolve()):
            # A link out of the directory (a Kubernetes secret's links stay inside it).
            raise TaskFailed(f"credential {name!r} in {directory} leads out of that directory", retry=False)
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the task for ever, a device worse
            raise TaskFailed(f"credential {name!r} in {directory} is not a regular file", retry=False)
        with path.open("rb") as handle:
            data = handle.read(MAX_SIZE + 1)
    except FileNotFoundError:
        raise TaskFailed(f"credential {name!r} not found in {directory}", retry=True) from None
    except OSError as exc:
        raise TaskFailed(f"credential {name!r} in {directory} cannot be read: {exc.strerror}", retry=True) from None
    if len(data) > MAX_SIZE:
        raise TaskFailed(f"credential {name!r} in {directory} is over {MAX_SIZE // 1024} KiB: not a token or a key",
                         retry=False)
    text = data.decode("utf-8", "replace")
    if _PRIVATE_KEY.search(text):
        return _ssh(name, path)
    return _token(name, directory, text, url, source_type)


def _ssh(name: str, path: Path) -> Access:
    command = f"ssh -i {shlex.quote(str(path.absolute()))} -o IdentitiesOnly=yes -o BatchMode=yes"
    return Access(name, {"GIT_SSH_COMMAND": command})


def _token(name: str, directory: Path, text: str, url: str, source_type: str) -> Access:
    lines = text.splitlines()
    line = lines[0].strip() if lines else ""
    if not line:
        raise TaskFailed(f"credential {name!r} in {directory} is empty", retry=True)
    user, sep, token = line.partition(":")
    if not sep:
        user, token = USERS.get(source_type, "git"), line
    if not token:
        raise TaskFailed(f"credential {name!r} in {directory} has a user and no token", retry=True)
    encoded = base64.b64encode(f"{user}:{token}".encode()).decode()
    secrets = tuple(s for s in (token, encoded) if len(s) >= _MIN_SECRET)
    for secret in secrets:
        logs.register_secret(secret)
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in ("http", "https"):
        if scheme not in ("", "file") or _scp_like(url):
            raise TaskFailed(f"credential {name!r} holds a token, which only an https source can use; "
                             f"the ssh source needs an SSH key", retry=False)
        return Access(name, {}, secrets)  # a local path needs no credential
    _check_host(name, lines[1:], url)
    env = config_env(helper_config(url))
    env[USER_ENV], env[PASSWORD_ENV] = user, token
    return Access(name, env, secrets)


def hosts(lines: list[str]) -> list[str]:
    """The hosts a token file's `host:`/`hosts:` lines name (lowercase, a port kept), in order."""
    found: list[str] = []
    for line in lines:
        match = _HOSTS.match(line)
        if match:
            found.extend(h.strip().lower().rstrip("/") for h in match["hosts"].split(",") if h.strip())
    return found


def _check_host(name: str, lines: list[str], url: str) -> None:
    """Refuse a source whose host the credential's `host:` lines do not name (none: any host)."""
    allowed = hosts(lines)
    if not allowed:
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    try:
        with_port = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        with_port = host
    if host in allowed or with_port in allowed:
        return
    raise TaskFailed(f"credential {name!r} is for {', '.join(allowed)}, not the source's host {with_port or '?'}: "
                     f"add that host to the credential's `host:` line if it is meant for it", retry=False)


def _scp_like(url: str) -> bool:
    """git@host:owner/repo.git: ssh without a scheme."""
    head = url.split("/", 1)[0]
    return ":" in head and not url.startswith("/")
