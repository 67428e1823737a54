"""One Starlette app on uvicorn, on a thread of the daemon's process: /healthz, /readyz, /metrics,
POST /webhook and (given pages) the history pages. No client can take the daemon down.

The transport rules of the endpoints are kept as they were: JSON answers, 404 for unknown paths, 405
naming the methods a known path takes, webhook deliveries refused before their body is read when they
are unsigned, too large, or when both delivery slots are busy, and a body that takes longer than
BODY_SECONDS to arrive is a 408.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from committer import __version__
from committer.core import logs
from committer.core.errors import CommitterError
from committer.serve.metrics import Metrics
from committer.serve.protocol import CONNECTIONS, HeadDeadlineProtocol
from committer.serve.web import (
    ASGIApp,
    BaseRoute,
    Message,
    Mount,
    Receive,
    Request,
    Response,
    Route,
    Scope,
    Send,
    Starlette,
    StaticFiles,
    UvicornConfig,
    UvicornServer,
    json_response,
    read_body,
)
from committer.serve.webhook import DELIVERY_HEADERS
from committer.serve.work import Threads

if TYPE_CHECKING:
    from committer.ops.stream import Stream
    from committer.serve.agents import Agents
    from committer.serve.agentsite import AgentSite
    from committer.serve.pages import Pages

log = logs.get("committer.http")

ALLOWED = "GET, HEAD"
MAX_WEBHOOK_BODY = 25 * 1024 * 1024  # GitHub caps a delivery at 25 MB
WEBHOOK_SLOTS = 2  # deliveries read at once; more are answered 503 (redelivered from GitHub by hand)
BUSY = ("busy reading other deliveries; redeliver this one from the webhook's Recent Deliveries "
        "(GitHub does not retry by itself)")
BODY_SECONDS = 30.0  # the longest a delivery's body may take to arrive
ANY = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]  # the endpoints answer 405 themselves
STOP_SECONDS = 5.0
# Every response: nothing from another origin, no inline script or style, no framing, no sniffing.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}

Webhook = Callable[[Mapping[str, str], bytes], tuple[int, Mapping[str, Any]]]


class Guard:
    """Pure ASGI middleware: the security headers on every response, the access line in the log, and a
    500 (logged) instead of a dead connection when a handler fails."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started: dict[str, int] = {}

        def access(status: int) -> None:
            # Logged as the answer starts, so the line is there once the client has its answer.
            client = scope.get("client") or ("-", 0)
            line = f'"{scope["method"]} {scope.get("path", "")} HTTP/{scope.get("http_version", "1.1")}" {status}'
            log.debug("http_request", client=str(client[0]), line=line)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["status"] = int(message["status"])
                access(started["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                have = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in have:
                        headers.append((name.encode(), value.encode()))
                if b"cache-control" not in have:
                    headers.append((b"cache-control", b"no-store"))
                headers.append((b"server", f"committer/{__version__}".encode()))
                headers.append((b"date", formatdate(usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:  # a failing handler is a 500 for this request, never a dead server
            log.error("http_handler_failed", path=scope.get("path"), exc_info=True)
            if "status" not in started:
                await json_response(500, {"error": "internal error"})(scope, receive, sending)


class Endpoints:
    """/healthz, /readyz, /metrics and /webhook, with the rules they always had."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.slots = asyncio.Semaphore(WEBHOOK_SLOTS)
        self.threads = Threads()  # never shared with the pages: a slow page cannot delay these
        self.hook_threads = Threads(WEBHOOK_SLOTS)  # a delivery being checked never delays a health check

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self._json_route(self._health), methods=ANY),
            Route("/readyz", self._json_route(self._ready), methods=ANY),
            Route("/metrics", self._json_route(self._metrics), methods=ANY),
            Route("/webhook", self._webhook, methods=ANY),
        ]

    def _json_route(self, make: Callable[[], Response]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.method not in ("GET", "HEAD"):
                return json_response(405, {"error": "method not allowed"}, allow=ALLOWED)
            try:
                return await self.threads.run(make)
            except Exception:  # a failing health callable is a 500 for this request, never a dead server
                log.error("http_handler_failed", path=request.url.path, exc_info=True)
                return json_response(500, {"error": "internal error"})

        return endpoint

    def _health(self) -> Response:
        """The daemon's health report as it is; 503 only when it is not alive (`healthy` false), so an
        orchestrator restarts a daemon that is down, never one that is up but degraded (a pull that
        fails, a path it cannot write: 200 with `status: degraded`)."""
        report = dict(self.server.health())
        healthy = report.get("healthy") is True
        degraded = bool(report.get("degraded")) or bool(report.get("unwritable_paths"))
        report.setdefault("status", "down" if not healthy else "degraded" if degraded else "ok")
        return json_response(200 if healthy else 503, report)

    def _ready(self) -> Response:
        ready = bool(self.server.ready())
        return json_response(200 if ready else 503, {"ready": ready})

    def _metrics(self) -> Response:
        metrics = self.server.metrics
        return Response(metrics.render(), 200, media_type=metrics.content_type)

    async def _webhook(self, request: Request) -> Response:
        webhook = self.server.webhook
        if webhook is None:
            return json_response(404, {"error": "not found"})
        if request.method != "POST":
            return json_response(405, {"error": "method not allowed"}, allow="POST")
        # Unsigned requests are refused before a byte of their body is read: nobody can fill memory.
        required = self.server.webhook_headers
        if not all(request.headers.get(name) for name in required):
            return json_response(401, {"error": "missing " + " or ".join(required)})
        length = request.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit()):
            return json_response(411, {"error": "Content-Length required"})
        if int(length) > MAX_WEBHOOK_BODY:
            return json_response(413, {"error": "payload too large"})
        if self.slots.locked():
            return json_response(503, {"error": BUSY})
        async with self.slots:
            body = await read_body(request, int(length), BODY_SECONDS)
        if body is None:
            return json_response(408, {"error": "the body did not arrive in time"})
        try:
            status, answer = await self.hook_threads.run(webhook, dict(request.headers.items()), body)
        except Exception:  # a failing handler is a 500 for this delivery, never a dead server
            log.error("http_handler_failed", path="/webhook", exc_info=True)
            status, answer = 500, {"error": "internal error"}
        return json_response(status, answer)


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_response(404, {"error": "not found"})


class QuietServer(UvicornServer):
    """uvicorn's server without its tick: uvicorn wakes ten times a second to refresh its Date header
    and look for should_exit. Here the Date header is set per response (Guard) and the serving loop
    sleeps until stop() wakes it, so an idle daemon does not wake at all for HTTP."""

    def __init__(self, config: UvicornConfig) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._stopped = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if not self.should_exit:  # stop() may have come before the loop was known
            await self._stopped.wait()

    def request_stop(self) -> None:
        """From any thread: finish serving (open requests get STOP_SECONDS)."""
        self.should_exit = True
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(stopped.set)


class HttpServer:
    """Serves health, readiness, metrics, (given a handler) the webhook and (given pages) the history
    pages on one address until stop()."""

    def __init__(
        self,
        address: tuple[str, int],
        metrics: Metrics,
        health: Callable[[], Mapping[str, Any]],
        ready: Callable[[], bool],
        webhook: Webhook | None = None,
        pages: Pages | None = None,
        events: Stream | None = None,
        webhook_headers: tuple[str, ...] = DELIVERY_HEADERS,
        agents: Agents | None = None,
        pick: Callable[[str], Pages | None] | None = None,
    ) -> None:
        self.address = address
        self.webhook = webhook
        self.webhook_headers = webhook_headers  # the forge's: a delivery without them is refused unread
        self.port = address[1]
        self.metrics = metrics
        self.health = health
        self.ready = ready
        self.pages = pages
        self.pick = pick  # per-project layout: a project's pages by name (the picker's cookie)
        self.events = events
        self.agents = agents  # the MCP tools, served at /mcp under the pages' access rule
        self.agent_site: AgentSite | None = None
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def app(self) -> Starlette:
        """The ASGI app: the endpoints, the live stream of events, then the pages when there are any."""
        routes = Endpoints(self).routes()
        if self.events is not None:
            from committer.serve.events import EventsEndpoint

            access = (lambda: self.pages.access) if self.pages is not None else (lambda: None)
            routes.append(Route("/events", EventsEndpoint(self.events, access)))
        if self.pages is not None:
            from committer.serve.site import routes as page_routes  # jinja2 and the pages, only when served

            routes += page_routes(self.pages, self.pick)
            routes.append(Mount("/static", StaticFiles(packages=[("committer.serve", "static")]), name="static"))
        if self.pages is not None and self.agents is not None:
            from committer.serve.agentsite import AgentSite

            self.agent_site = AgentSite(self.agents, self.pages.access)
            routes.append(Route("/mcp", self.agent_site))
        lifespan = self.agent_site.lifespan if self.agent_site is not None else None
        app = Starlette(routes=routes, exception_handlers={404: _not_found}, lifespan=lifespan)
        return app

    def start(self) -> None:
        """Bind now (CommitterError when the address is unusable) and serve from a daemon thread."""
        if self._server is not None:
            return
        host, port = self.address
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise CommitterError(f"http: cannot listen on {shown}: {exc.strerror or exc}") from exc
        sock.setblocking(False)
        app = self.app()
        config = UvicornConfig(
            Guard(app),
            log_config=None,
            access_log=False,
            lifespan="off" if self.agent_site is None else "on",  # /mcp's transport ends after the last request
            server_header=False,
            date_header=False,
            proxy_headers=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=int(STOP_SECONDS),
            # Past this uvicorn answers 503; the protocol keeps below it by closing slow heads first.
            limit_concurrency=CONNECTIONS + 100,
            http=HeadDeadlineProtocol,
            ws="none",
        )
        server = QuietServer(config)
        self._server, self._socket = server, sock
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http", daemon=True)
        self._thread.start()
        log.info("http_listening", host=host, port=self.port)

    def stop(self) -> None:
        """Stop accepting requests and close the socket; safe to call twice or before start()."""
        server, self._server = self._server, None
        if server is None:
            return
        if self.events is not None:
            self.events.close()  # open streams end now rather than hold the stop for STOP_SECONDS
        if self.pages is not None and "pool" in vars(self.pages):  # pages being computed end now, git killed
            self.pages.pool.stop_all("committer is stopping")
        if self.agent_site is not None:  # so do the agents' tool calls
            self.agent_site.stop()
        server.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=STOP_SECONDS + 2)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
