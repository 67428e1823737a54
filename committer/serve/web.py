"""The web framework's one home: the Starlette and uvicorn names the serve layer uses, and the helpers every
endpoint shares (a JSON answer, a body read with a size and time limit). The other serve modules import
them from here, so changing or upgrading the framework is one module's business."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn import Config as UvicornConfig
from uvicorn import Server as UvicornServer
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "JSON", "ASGIApp", "BaseRoute", "FileResponse", "H11Protocol", "HTMLResponse", "Message", "Mount", "Receive",
    "RedirectResponse", "Request", "Response", "Route", "Scope", "Send", "Starlette", "StaticFiles",
    "UvicornConfig", "UvicornServer", "json_response", "read_body", "run_in_threadpool",
]

JSON = "application/json"


def json_response(status: int, data: Mapping[str, Any], allow: str | None = None) -> Response:
    """A JSON answer (keys sorted, one line), with an Allow header for a 405."""
    body = (json.dumps(data, default=str, sort_keys=True) + "\n").encode()
    headers = {"Allow": allow} if allow else None
    return Response(body, status, headers=headers, media_type=JSON)


async def read_body(request: Request, most: int, seconds: float) -> bytes | None:
    """The request body, or None when it is longer than `most` bytes or not all there within `seconds`
    (a slow client)."""

    async def collect() -> bytes | None:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > most:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), seconds)
    except (TimeoutError, OSError):
        return None
    except Exception as exc:  # starlette's ClientDisconnect: the client went away
        if type(exc).__name__ == "ClientDisconnect":
            return None
        raise
