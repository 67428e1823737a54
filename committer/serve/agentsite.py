"""/mcp on the daemon's HTTP port: the pages' access rule (serve/access.py), then the MCP transport
(serve/mcp.py), whose SDK is loaded on the first request that passes it, so a daemon no agent talks to never
carries it.

Who may call it is who may read the pages: anyone on a loopback bind, under a loopback Host name only (a
DNS-rebound name is refused); on any other bind only with the ui token (`Authorization: Bearer <token>`, or the
pages' login cookie); off without a token there. A request a browser sends from another site (an Origin that
is not this host and port, or `Sec-Fetch-Site: cross-site`) is refused whatever it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from committer.core import logs
from committer.serve.access import OFF, Access
from committer.serve.agents import Agents
from committer.serve.web import Message, Receive, Request, Response, Scope, Send, json_response, read_body
from committer.serve.work import Threads

if TYPE_CHECKING:
    from committer.serve.mcp import HttpMcp

log = logs.get("committer.http")

BODY_MAX = 256 * 1024  # bytes of one request to /mcp (a tool call's arguments are a few hundred)
BODY_SECONDS = 10.0  # the longest its body may take to arrive


def _transport() -> type[HttpMcp]:
    from committer.serve.mcp import HttpMcp  # the SDK: only once an agent calls

    return HttpMcp


class AgentSite:
    """The ASGI app at /mcp."""

    def __init__(self, agents: Agents, access: Access) -> None:
        self.agents = agents
        self.access = access
        self._mcp: HttpMcp | None = None
        self._lock: asyncio.Lock | None = None
        self._loading = Threads(1)  # the SDK's import takes a moment: never on the event loop
        self._closed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = self.refused(Request(scope))
        if refused is None and scope.get("method") != "POST":
            # Each POST is answered whole (JSON): no stream for the server to send on, and no session to end.
            refused = json_response(405, {"error": "/mcp answers POST only: it offers no event stream"}, allow="POST")
        if refused is None:
            body = await read_body(Request(scope, receive), BODY_MAX, BODY_SECONDS)
            mcp = await self._loaded() if body is not None else None
            if body is not None and mcp is not None:
                await mcp.handle(scope, _replay(body, receive), send)
                return
            refused = json_response(503, {"error": "committer is stopping"}) if body is not None else json_response(
                400, {"error": f"the request was not all there within {BODY_SECONDS:g} s, or over {BODY_MAX} bytes"})
        await refused(scope, receive, send)

    def refused(self, request: Request) -> Response | None:
        """None when the request may go on; else the answer that refuses it."""
        access, headers = self.access, request.headers
        if access.mode == OFF:
            return json_response(404, {"error": "/mcp is off on this address: no ui token is configured"})
        if not access.host_ok(headers):
            return json_response(403, {"error": "call /mcp at http://127.0.0.1 (or localhost), the address "
                                                "committer listens on"})
        if not access.same_origin(headers):
            log.warning("mcp_refused", reason="cross-site request", origin=headers.get("origin"))
            return json_response(403, {"error": "refused: this request came from another site"})
        if not access.authorized(headers, request.cookies):
            answer = json_response(401, {"error": "/mcp needs the ui token: send Authorization: Bearer <token>"})
            answer.headers["WWW-Authenticate"] = 'Bearer realm="committer"'
            return answer
        return None

    async def _loaded(self) -> HttpMcp | None:
        if self._mcp is None and not self._closed:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._mcp is None and not self._closed:
                    mcp = (await self._loading.run(_transport))(self.agents, BODY_MAX)
                    await mcp.start()
                    self._mcp = mcp
        return None if self._closed else self._mcp

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """The HTTP server's lifespan: the transport ends once the server has stopped serving."""
        try:
            yield
        finally:
            self._closed = True
            if self._mcp is not None:
                await self._mcp.close()

    def stop(self) -> None:
        """From any thread, before the server stops: the tool calls being computed end now (git killed)."""
        self.agents.stop("committer is stopping")


def _replay(body: bytes, receive: Receive) -> Receive:
    """The request's body, already read (whole, in time), then whatever comes next (the client leaving)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
