"""The two folders a command needs, checked before anything is made in them: the git dir (a repository, or a
folder that can become one) and the data directory (a directory that can be listed)."""

from __future__ import annotations

import os

from committer.core.errors import ConfigError
from committer.core.settings import Settings


def require_git_dir(settings: Settings) -> None:
    """The git dir is a repository, or a folder that can become one: missing, empty, or holding only
    committer's own state folder. Anything else (a file, someone's folder) is never turned into one."""
    path = settings.git_dir
    if not os.path.lexists(path):
        return
    if not path.is_dir():
        raise ConfigError("git-dir", f"{path} is a file, not a directory; give the path of the repository folder")
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return
    try:
        others = sorted(name for name in os.listdir(path) if name != "committer")
    except OSError as exc:
        raise ConfigError("git-dir", f"{path} cannot be read: {exc.strerror}") from None
    if others:
        raise ConfigError(
            "git-dir",
            f"{path} is not empty and is not a git repository (it holds {others[0]!r}); give a new or empty "
            "folder, or the repository committer made",
        )


def require_data_dir(settings: Settings) -> None:
    """The data directory must exist and be a directory we can list."""
    path = settings.data_dir
    if not path.exists():
        raise ConfigError("data-dir", f"{path} does not exist")
    if not path.is_dir():
        raise ConfigError("data-dir", f"{path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError("data-dir", f"{path} cannot be read")
