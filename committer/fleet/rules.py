"""What the fleet refuses, decided once: names and slugs, source URLs, credential names; and the errors every
side (gRPC codes, the CLI's exit codes, the pages) maps from the same four kinds."""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from committer.core import values
from committer.core.errors import ConfigError

MAX_NAME = 100
# A folder's name holds at most 255 bytes, and a clone's is `.{name}.incoming-{12 hex digits}`.
MAX_NAME_BYTES = 200
MAX_URL, MAX_DESCRIPTION = 2000, 1000  # a list page of 500 repositories stays far below gRPC's 4 MiB
SOURCE_TYPES = ("github", "gitlab", "gitea", "custom")
EVENTS_SECRET = "events"  # in the credentials directory: `events`, `events.<organisation>.<name>` (HTTP side)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


class FleetError(Exception):
    """A request the fleet cannot do, with one line saying why."""

    kind = "invalid"  # invalid, not_found, exists, archived

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(FleetError):
    kind = "invalid"


class NotFound(FleetError):
    kind = "not_found"


class Exists(FleetError):
    kind = "exists"


class Archived(FleetError):
    kind = "archived"


def name(value: str, what: str = "name") -> str:
    """A repository name or organisation slug that is one safe path component: not empty, no `/`, no `..`,
    no leading `-` or `.`, no control characters or backslash, at most 100 characters (200 bytes)."""
    if not value:
        raise Invalid(f"{what}: must not be empty")
    if len(value) > MAX_NAME:
        raise Invalid(f"{what}: {len(value)} characters; at most {MAX_NAME}")
    if len(value.encode()) > MAX_NAME_BYTES:
        raise Invalid(f"{what}: {len(value.encode())} bytes in UTF-8; at most {MAX_NAME_BYTES}")
    if "/" in value or ".." in value:
        raise Invalid(f"{what}: {value!r} must not contain '/' or '..'")
    if value[0] in "-.":
        raise Invalid(f"{what}: {value!r} must not start with '-' or '.'")
    if _CONTROL.search(value) or value != value.strip() or any(map(_unseen, value)):
        raise Invalid(f"{what}: {value!r} must not hold control, invisible or line-breaking characters, a "
                      "backslash or surrounding spaces")
    if unicodedata.normalize("NFKC", value) != value:
        # Full-width letters, a one-dot leader that reads as '.', a decomposed accent: two names that look
        # the same must not be two folders.
        raise Invalid(f"{what}: {value!r} holds look-alike characters; write it as "
                      f"{unicodedata.normalize('NFKC', value)!r}")
    return value


def _unseen(char: str) -> bool:
    """A character a person cannot see or that breaks a line: format (zero-width, bidi), control, private or
    unassigned, line and paragraph separators, any space but the plain one."""
    kind = unicodedata.category(char)
    return kind[0] == "C" or kind in ("Zl", "Zp") or (kind == "Zs" and char != " ")


def source_url(value: str) -> str:
    """A source the fleet may clone: https, ssh (URL or scp-like), a local path or file:// URL; plain http only
    to a loopback address; never credentials in the URL (they belong in a credential file)."""
    if not value:
        return ""
    if len(value) > MAX_URL:
        raise Invalid(f"source_url: {len(value)} characters; at most {MAX_URL}")
    try:
        checked = values.remote_url("source_url", value)
    except ConfigError as exc:
        raise Invalid(str(exc).removeprefix("committer: error: ")) from None
    if "://" in checked:
        parts = urlsplit(checked)
        if parts.scheme in ("http", "https") and (parts.username or parts.password):
            raise Invalid("source_url: holds a user or token; put the token in a credential file and pass "
                          "its name as `credential`")
        if parts.scheme in ("http", "https") and "?" in checked:
            # `?private_token=...` would be kept in the database and shown by every answer and page.
            raise Invalid("source_url: must not have a query; put a token in a credential file and pass its "
                          "name as `credential`")
    return checked


def local_source(url: str, repos_dir: Path, slug: str, repo_name: str) -> None:
    """Refuse a local source (a path or file:// URL) that is the fleet's own: its state folder (.fleet), the
    repositories' folder or an organisation's, the repository itself (or its leftovers), or a repository of
    another organisation. Links and `..` are resolved first, and what git itself would follow from there is
    judged the same way: a `.git` file's `gitdir:`, a worktree's `commondir`, the `objects/info/alternates`
    (a folder outside holding only a pointer into another organisation's repository is that repository).
    Any other path on the machine may be a source."""
    if url.startswith("file://"):
        path = unquote(url.removeprefix("file://"))
    elif url.startswith("/"):
        path = url
    else:
        return
    root = Path(os.path.realpath(repos_dir))
    for real in _followed(Path(os.path.realpath(path))):
        _judge(path, real, root, slug, repo_name)


def _judge(path: str, real: Path, root: Path, slug: str, repo_name: str) -> None:
    if root.is_relative_to(real):
        raise Invalid(f"source_url: {path} holds the fleet's repositories folder; a source is one repository")
    if not real.is_relative_to(root):
        return
    parts = real.relative_to(root).parts
    if parts[0] == ".fleet":
        raise Invalid(f"source_url: {path} is the fleet's own state, not a repository")
    if len(parts) < 2:
        raise Invalid(f"source_url: {path} is an organisation's folder, not a repository")
    if parts[0] != slug:
        raise Invalid(f"source_url: {path} is a repository of another organisation")
    if parts[1] == repo_name or parts[1].startswith("."):
        raise Invalid(f"source_url: {path} is the repository {slug}/{repo_name} itself")


def _followed(real: Path, depth: int = 0) -> list[Path]:
    """`real` and every folder git would read from it (see local_source), resolved; a few levels at most."""
    found = [real]
    if depth > 4:
        return found
    pointers: list[Path] = []
    dot_git = real / ".git"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if dot_git.is_file():
            line = dot_git.read_text()[:4096].strip()
            if line.startswith("gitdir:"):
                pointers.append(real / line.removeprefix("gitdir:").strip())
    for git_dir in (real, dot_git):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            common = (git_dir / "commondir").read_text()[:4096].strip()
            if common:
                pointers.append(git_dir / common)
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in (git_dir / "objects" / "info" / "alternates").read_text()[:65536].splitlines():
                if line.strip() and not line.startswith("#"):
                    pointers.append(git_dir / "objects" / line.strip())
    for pointer in pointers:
        found.extend(_followed(Path(os.path.realpath(pointer)), depth + 1))
    return found


def description(value: str) -> str:
    if len(value) > MAX_DESCRIPTION:
        raise Invalid(f"description: {len(value)} characters; at most {MAX_DESCRIPTION}")
    return value


def source_type(value: str) -> str:
    if not value:
        return "custom"
    if value not in SOURCE_TYPES:
        raise Invalid(f"source_type: {value!r} is not one of {', '.join(SOURCE_TYPES)}")
    return value


def credential(value: str) -> str:
    """A credential's name: a file name in the credentials directory (never the credential itself), and not one
    of the secrets daemons sign their events with (git would send it to whatever host the source names)."""
    if value == EVENTS_SECRET or value.startswith(EVENTS_SECRET + "."):
        raise Invalid(f"credential: {value!r} is a secret committer daemons sign their events with, not a "
                      "credential for git")
    return name(value, "credential") if value else ""
