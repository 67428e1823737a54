"""Which daemon `committer run` starts: the per-project one is imported only for that layout, since it brings
the server of its pages at once (a daemon of one repository imports it with --http only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from committer.core.projects import per_project
from committer.core.settings import Settings

if TYPE_CHECKING:
    from committer.daemon.projects import ProjectsDaemon


def per_project_daemon(settings: Settings, once: bool, new_branch: bool) -> ProjectsDaemon | None:
    """The per-project layout's daemon; None for one repository."""
    if not per_project(settings):
        return None
    from committer.daemon.projects import ProjectsDaemon

    return ProjectsDaemon(settings, once=once, new_branch=new_branch)
