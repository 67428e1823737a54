"""`POST /sync`: the sync-now barrier for programs, behind the pages' access rule (serve/site.py's gate: a
loopback Host on a loopback bind, the ui token elsewhere, no foreign Origin).

A program sends no body, or JSON (`{"wait": true, "timeout": "30s"}`), or the same as query parameters
(`?wait=1&timeout=30s`). A body a browser form could send from another site (url-encoded, multipart, plain
text) must carry the pages' CSRF token (`csrf`), as every form of the pages does. The answer is the sync's
JSON: 200 when done (or, without wait, 202: committed, the push asked for, or something in the way), 503 when
waiting ended with the remote lacking the commit or something in the way (the `reason` says what)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import parse_qs

from committer.core.errors import CommitterError, ConfigError
from committer.core.values import parse_duration
from committer.ops.syncnow import sync_in_daemon
from committer.serve.pages import Pages, log
from committer.serve.web import Request, Response, json_response, read_body, run_in_threadpool

BODY_MAX = 4096
BODY_SECONDS = 10.0
DEFAULT_TIMEOUT, MOST_TIMEOUT = 120.0, 600.0
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")


async def sync_route(pages: Pages, request: Request) -> Response:
    """POST: commit what is pending now and push it; with wait, answer once the remote has it."""
    body = await read_body(request, BODY_MAX, BODY_SECONDS)
    if body is None:
        return json_response(400, {"error": f"the body did not arrive whole (at most {BODY_MAX} bytes)"})
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, Any] = {k: v[-1] for k, v in parse_qs(request.url.query).items()}
    if kind in FORM_TYPES:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), max_num_fields=20).items()}
        if not pages.access.csrf_ok(str(form.get("csrf", ""))):
            log.warning("page_refused", path="/sync", reason="a form body without the pages' CSRF token")
            return json_response(403, {"error": "refused: a form post needs the pages' csrf field; programs send "
                                                "JSON or no body"})
        fields.update(form)
    elif body.strip():
        try:
            given = json.loads(body)
        except ValueError:
            return json_response(400, {"error": "the body is not JSON"})
        if not isinstance(given, dict):
            return json_response(400, {"error": "the body is not a JSON object"})
        fields.update(given)
    try:
        wait = _flag(fields.get("wait", False))
        timeout = min(MOST_TIMEOUT, parse_duration("timeout", fields.get("timeout", DEFAULT_TIMEOUT)))
    except ConfigError as exc:
        return json_response(400, {"error": exc.message})
    log.info("page_sync", wait=wait, timeout=timeout)
    gone = threading.Event()
    watch = asyncio.create_task(_until_gone(request, gone))  # a client that leaves ends the wait for it
    try:
        answer = await run_in_threadpool(sync_in_daemon, pages.request, pages.status, pages.repo, wait=wait,
                                         timeout=timeout, gone=gone.is_set)
    except CommitterError as exc:  # starting or stopping, or no answer from the main loop
        return json_response(503, {"error": exc.message})
    finally:
        watch.cancel()
    if gone.is_set():
        log.info("page_sync_client_gone", commit=answer.commit, pushed=answer.pushed)
        return Response(b"", 499)  # nobody reads it
    if wait:
        status = 200 if answer.ok else 503
    else:
        status = 200 if answer.ok and (answer.pushed or answer.remote is None) else 202
    return json_response(status, answer.as_dict())


async def _until_gone(request: Request, gone: threading.Event) -> None:
    """Set `gone` once the client disconnects (the body is read: the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    gone.set()


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError("wait", f"expected true or false, got {value!r}")
