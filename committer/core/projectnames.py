"""The names of the per-project layout, pure: the layouts, a project's name, the remote template."""

from __future__ import annotations

import re

from committer.core import values
from committer.core.errors import ConfigError

MONOREPO, PER_PROJECT = "monorepo", "per-project"
LAYOUTS = (MONOREPO, PER_PROJECT)
PLACEHOLDER = "{project}"
# A project's name is a folder name that is also a repository name and a URL path segment as it is.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


def valid_name(name: str) -> bool:
    """A name a project may have: letters, digits, `.`, `_`, `-`, not starting with `.` or `-`, not `*.git`."""
    return _NAME.fullmatch(name) is not None and not name.endswith(".git")


def remote_template(setting: str, value: object) -> str:
    """The `remote_template` setting: it names `{project}` and is a remote once it is replaced."""
    text = values.line(setting, value)
    if not text:
        return ""
    if PLACEHOLDER not in text:
        raise ConfigError(setting, f"must contain {PLACEHOLDER} (https://github.com/acme/{PLACEHOLDER}.git)")
    values.remote_url(setting, text.replace(PLACEHOLDER, "project"))
    return text
