"""The daemon's HTTP side, given callbacks: health, readiness, metrics, the push webhook (which queues a
pull, or reports a forced update to the main loop) and the history pages (a read-only repository, the
state for their banner, and the daemon's inbox for a restore)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from committer.core import logs
from committer.core.errors import CommitterError
from committer.core.secret import ui_token, webhook_secret
from committer.core.settings import Settings
from committer.core.values import parse_address
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.ops.asking import Answer, Request
from committer.ops.inbox import Inbox
from committer.ops.stream import Stream
from committer.serve.metrics import Metrics
from committer.sync.forges import forge_for
from committer.sync.puller import Puller

if TYPE_CHECKING:  # the pages' server (starlette, uvicorn, jinja2) is imported by a daemon with --http only
    from committer.serve.app import HttpServer
    from committer.serve.pages import Pages

log = logs.get(__name__)


def page_requests(inbox: Inbox) -> Callable[[Request], Answer]:
    """How a page asks the main loop for something (a restore): through the inbox, with a deadline; a
    failure (or a daemon starting or stopping) is a CommitterError for the page to show."""

    def ask(request: Request) -> Answer:
        answer = inbox.ask(request)
        if answer.error is not None:
            raise CommitterError(answer.error)
        return answer

    return ask


def make_pages(settings: Settings, host: str, status: Callable[[], dict[str, Any]], inbox: Inbox) -> Pages:
    """The history pages for a bind address: open on loopback, behind the ui token elsewhere (off
    without one). ConfigError for a ui_token_file that is missing, empty or too short."""
    from committer.serve.access import Access, check_token_file
    from committer.serve.pages import Pages

    check_token_file(settings.ui_token_file)
    access = Access.decide(host, lambda: ui_token(settings.ui_token_file))
    log.info("pages", access=access.mode, host=host)
    repo = GitRepo.of(settings, GitRunner(settings.git_timeout))  # read-only git commands, never the index
    return Pages(repo, access, status, page_requests(inbox))


def start_http(
    settings: Settings, metrics: Metrics, health: Callable[[], Mapping[str, Any]], ready: Callable[[], bool],
    puller: Puller | None, on_forced: Callable[[str | None], None], status: Callable[[], dict[str, Any]],
    inbox: Inbox, events: Stream | None = None,
) -> HttpServer | None:
    """Serve on `settings.http` from a thread of its own; None when it is off."""
    address = parse_address("http", settings.http)
    if address is None:
        return None
    from committer.serve.agents import for_daemon
    from committer.serve.app import HttpServer
    from committer.serve.webhook import WebhookReceiver

    pages = make_pages(settings, address[0], status, inbox)
    webhook = None
    if settings.remote:
        receiver = WebhookReceiver(
            settings.branch,
            secret=lambda: webhook_secret(settings.webhook_secret_file),
            on_push=lambda _head: puller.request("webhook") if puller else None,
            on_forced=on_forced,
            remote=str(settings.remote),
            forge=forge_for(settings),
        )

        def webhook(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, Any]]:
            reply = receiver.handle(headers, body)
            return reply.status, reply.body

    server = HttpServer(address, metrics, health, ready, webhook=webhook, pages=pages, events=events,
                        webhook_headers=forge_for(settings).delivery_headers,
                        agents=for_daemon(settings, pages.repo, pages.request, pages.status))
    server.start()
    return server


def pulls_automatic(settings: Settings) -> bool:
    """Pulls happen on their own: on a timer, or a webhook can ask for them."""
    return settings.pull_interval > 0 or (
        bool(settings.http) and webhook_secret(settings.webhook_secret_file) is not None
    )
