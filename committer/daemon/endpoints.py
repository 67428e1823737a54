"""The daemon's HTTP endpoints, given callbacks: health, readiness, metrics, and the push webhook (which
queues a pull, or reports a forced update to the main loop)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from committer.core import logs
from committer.core.secret import webhook_secret
from committer.core.settings import Settings
from committer.core.values import parse_address
from committer.serve.http import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.webhook import WebhookReceiver
from committer.sync.puller import Puller

log = logs.get(__name__)


def start_http(
    settings: Settings, metrics: Metrics, health: Callable[[], Mapping[str, Any]], ready: Callable[[], bool],
    puller: Puller | None, on_forced: Callable[[str | None], None],
) -> HttpServer | None:
    """Serve on `settings.http` from a thread of its own; None when it is off."""
    address = parse_address("http", settings.http)
    if address is None:
        return None
    webhook = None
    if settings.remote:
        receiver = WebhookReceiver(
            settings.branch,
            secret=lambda: webhook_secret(settings.webhook_secret_file),
            on_push=lambda _head: puller.request("webhook") if puller else None,
            on_forced=on_forced,
        )

        def webhook(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, Any]]:
            reply = receiver.handle(headers, body)
            return reply.status, reply.body

    server = HttpServer(address, metrics, health, ready, webhook=webhook)
    server.start()
    log.info("http_listening", address=f"{address[0]}:{server.port}")
    return server


def pulls_automatic(settings: Settings) -> bool:
    """Pulls happen on their own: on a timer, or a webhook can ask for them."""
    return settings.pull_interval > 0 or (
        bool(settings.http) and webhook_secret(settings.webhook_secret_file) is not None
    )
