"""The history pages of the per-project layout: one `Pages` per project (made when first shown), all
behind one access rule (one login for every project), picked per request by the picker's cookie."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from committer.core import logs
from committer.core.secret import ui_token
from committer.core.settings import Settings
from committer.core.values import parse_address
from committer.daemon.endpoints import page_requests
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.ops.inbox import Inbox
from committer.serve.access import Access, check_token_file
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages

log = logs.get(__name__)

# What the picker needs of a project: its settings, its state for the banner, its inbox for a restore.
Shown = tuple[Settings, Callable[[], dict[str, Any]], Inbox]


class ProjectPages:
    """Every project's pages by name; `pick` is what the routes call (HTTP thread)."""

    def __init__(self, settings: Settings, host: str, projects: Callable[[], dict[str, Shown]]) -> None:
        check_token_file(settings.ui_token_file)
        self.access = Access.decide(host, lambda: ui_token(settings.ui_token_file))
        log.info("pages", access=self.access.mode, host=host, layout=settings.layout)
        self.settings = settings
        self._projects = projects
        self._made: dict[str, Pages] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The projects, for the picker."""
        return sorted(self._projects())

    def pick(self, name: str) -> Pages | None:
        """The pages of the project named (the first project's for a name that is none); None while there
        is no project at all."""
        projects = self._projects()
        if name not in projects:
            name = min(projects, default="")
        shown = projects.get(name)
        if shown is None:
            return None
        with self._lock:
            pages = self._made.get(name)
            if pages is None:
                settings, status, inbox = shown
                repo = GitRepo.of(settings, GitRunner(settings.git_timeout))  # read-only git commands
                pages = self._made[name] = Pages(repo, self.access, status, page_requests(inbox), project=name,
                                                 projects=self.names)
            return pages

    def fallback(self) -> Pages:
        """The pages shown while there is no project yet (their views say there is no history)."""
        return Pages(GitRepo.of(self.settings, GitRunner(self.settings.git_timeout)), self.access, dict,
                     page_requests(Inbox(lambda: None, lambda: False)), projects=self.names)


def start_projects_http(settings: Settings, metrics: Metrics, health: Callable[[], Mapping[str, Any]],
                        ready: Callable[[], bool], projects: Callable[[], dict[str, Shown]]) -> HttpServer | None:
    """The per-project daemon's HTTP side: /healthz, /readyz, /metrics (each project's series with its
    `project` label) and the history pages with the project picker; None when it is off."""
    address = parse_address("http", settings.http)
    if address is None:
        return None
    picker = ProjectPages(settings, address[0], projects)
    server = HttpServer(address, metrics, health, ready, pages=picker.pick("") or picker.fallback(), pick=picker.pick)
    server.start()
    return server
