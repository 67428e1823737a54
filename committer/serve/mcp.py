"""The MCP SDK's one home (the official `mcp` package): the agents' tools (serve/agents.py) and the files at
HEAD as resources, served over stdio (`committer mcp`) or over the SDK's streamable HTTP transport (/mcp on
the daemon's HTTP port, behind serve/agentsite.py's access rule). Its low-level server is used, not FastMCP:
FastMCP configures the process's logging and reads a `.env` file from the current directory, and the tools'
schemas are written out in serve/tools.py anyway.

Over HTTP the transport is stateless with JSON answers: each POST is one exchange, no session lives between
requests, no stream stays open, so nothing is kept per client and a stop never waits for a client to hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import McpError
from pydantic import AnyUrl

from committer import __version__
from committer.core.errors import CommitterError
from committer.serve.agents import Agents, one_line
from committer.serve.web import Receive, Scope, Send

RESOURCES_PAGE = 500  # files listed per page of resources/list (the cursor pages on)
RESOURCE_MAX = 1_000_000  # bytes of a file a resource carries
INSTRUCTIONS = (
    "committer keeps a versioned history of a directory of notes and files and backs it up. Use history, "
    "show, diff and search to look at earlier versions, restore (a dry run unless dry_run=false) to bring "
    "a file back as it was, snapshot to mark a state. Paths are relative to the data directory."
)


def build(agents: Agents) -> Server[Any, Any]:
    """The MCP server of these tools and resources."""
    server: Server[Any, Any] = Server("committer", version=__version__, instructions=INSTRUCTIONS)

    async def list_tools() -> list[types.Tool]:
        return [types.Tool(
            name=spec.name, title=spec.title or None, description=spec.description, inputSchema=spec.schema,
            annotations=types.ToolAnnotations(
                title=spec.title or None, readOnlyHint=not spec.writes, destructiveHint=spec.name == "restore",
                idempotentHint=spec.name != "snapshot", openWorldHint=False),
        ) for spec in agents.tools]

    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        result = await agents.call(name, arguments)
        content = [types.TextContent(type="text", text=result.text)]
        structured = result.data if result.structured and not result.error else None
        if result.data is not None and not result.structured and not result.error:
            content.append(types.TextContent(type="text", text=json.dumps(result.data, ensure_ascii=False)))
        return types.CallToolResult(content=list(content), structuredContent=structured, isError=result.error)

    async def list_resources(request: types.ListResourcesRequest) -> types.ListResourcesResult:
        cursor = request.params.cursor if request.params is not None else None
        skip = int(cursor) if cursor and cursor.isdigit() else 0
        paths, more = await _run(agents, lambda: agents.files(skip, RESOURCES_PAGE), "resources")
        return types.ListResourcesResult(resources=[
            types.Resource(uri=AnyUrl(uri_of(path)), name=path, mimeType=_listed_type(path)) for path in paths
        ], nextCursor=str(skip + len(paths)) if more else None)

    async def list_templates() -> list[types.ResourceTemplate]:
        return [types.ResourceTemplate(
            uriTemplate="file:///{path}", name="file",
            description="A file of the data directory as last saved (its path relative to the data directory)")]

    async def read_resource(uri: Any) -> list[ReadResourceContents]:
        path = path_of(str(uri))
        data, kind = await _run(agents, lambda: agents.read(path, RESOURCE_MAX), "resource")
        if not kind.startswith("image/") and b"\0" not in data[:8000]:
            with contextlib.suppress(UnicodeDecodeError):
                return [ReadResourceContents(content=data.decode("utf-8"), mime_type=kind)]
        return [ReadResourceContents(content=data, mime_type=kind)]

    # The SDK's decorators are not typed; each registers its handler and hands it back.
    server.list_tools()(list_tools)  # type: ignore[no-untyped-call]
    server.call_tool()(call_tool)
    server.list_resources()(list_resources)  # type: ignore[no-untyped-call]
    server.list_resource_templates()(list_templates)  # type: ignore[no-untyped-call]
    server.read_resource()(read_resource)  # type: ignore[no-untyped-call]
    return server


async def _run(agents: Agents, work: Any, what: str) -> Any:
    """Resource work on the tools' pool; a failure is the request's error, one line."""
    try:
        return await agents.pool.run(None, lambda job: work(), what)
    except CommitterError as exc:
        raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=one_line(exc.message))) from None


def uri_of(path: str) -> str:
    """A file's resource URI: file:/// and its path relative to the data directory, its bytes escaped."""
    return "file:///" + quote(os.fsencode(path), safe="/")


def path_of(uri: str) -> str:
    """The path of the data directory a resource URI names."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc:
        raise McpError(types.ErrorData(code=types.INVALID_PARAMS,
                                       message=f"not a file of the data directory: {one_line(uri)[:200]}"))
    return os.fsdecode(unquote_to_bytes(parts.path.lstrip("/")))


def _listed_type(path: str) -> str | None:
    import mimetypes

    return "text/markdown" if path.lower().endswith(".md") else mimetypes.guess_type(path)[0]


def serve_stdio(agents: Agents) -> None:
    """Serve on stdin and stdout until the host closes stdin (`committer mcp`)."""
    server = build(agents)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    asyncio.run(main())


class HttpMcp:
    """The SDK's streamable HTTP transport for the daemon's /mcp: started on the first request, closed when
    the HTTP server stops (its lifespan), never holding a request open after that."""

    def __init__(self, agents: Agents, body_max: int) -> None:
        self.manager = StreamableHTTPSessionManager(
            app=build(agents), stateless=True, json_response=True, max_request_body_size=body_max,
            security_settings=None,  # the Host, Origin and token checks are serve/agentsite.py's, the pages' own
        )
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the transport's task group on a task of its own; return once it takes requests."""
        ready = asyncio.Event()

        async def run() -> None:
            async with self.manager.run():
                ready.set()
                await self._closing.wait()

        self._task = asyncio.create_task(run(), name="committer-mcp")
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait([self._task, waiting], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._task.done():
            self._task.result()  # it could not start: its error

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.handle_request(scope, receive, send)

    async def close(self) -> None:
        """End the transport (its requests are cancelled)."""
        self._closing.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
