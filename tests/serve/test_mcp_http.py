"""The MCP server at /mcp on a running daemon's HTTP port, driven by the SDK's own client: every tool, a restore
by an agent done by the daemon's main loop, a refused write without dry_run=false; the pages' access rule
(a foreign Host or Origin refused on loopback, 401 without the ui token on any other address); and `committer
mcp` over stdio finding the running daemon's repository from inside its data directory, as other commands do."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import DaemonProcess, Layout, git, wait_for
from tests.daemon.test_daemon_http import free_port
from tests.serve.test_mcp import call, drive, server

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
TOKEN = "a-long-enough-ui-token-0123456789"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}}


def over_http(url: str, work: Callable[[ClientSession], Awaitable[Any]], token: str | None = None) -> Any:
    async def run() -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(headers=headers, timeout=30) as client, \
                streamable_http_client(url, http_client=client) as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)

    return asyncio.run(asyncio.wait_for(run(), 120))


def post(port: int, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                **{k.replace("_", "-"): v for k, v in headers.items()}}
        conn.request("POST", "/mcp", body=json.dumps(body).encode(), headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def commits(layout: Layout) -> list[str]:
    return git(layout.git_dir, "rev-list", "HEAD", check=False).split()


def agent_session(layout: Layout) -> Callable[[ClientSession], Awaitable[dict[str, Any]]]:
    """An agent asked to put the plan back as it was before it was overwritten, using every tool on the way."""

    async def work(session: ClientSession) -> dict[str, Any]:
        return await _agent_session(layout, session)

    return work


async def _agent_session(layout: Layout, session: ClientSession) -> dict[str, Any]:
    seen: dict[str, Any] = {"tools": {t.name for t in (await session.list_tools()).tools}}
    seen["status"] = await call(session, "status")
    seen["search"] = await call(session, "search", text="printer", in_history=True)
    _, _, changes = seen["history"] = await call(session, "history", path="notes/plan.md", since="1 hour ago")
    assert changes is not None
    before = changes["changes"][-1]["id"]
    seen["show"] = await call(session, "show", path="notes/plan.md", at=before)
    seen["diff"] = await call(session, "diff", path="notes/plan.md")
    seen["dry"] = await call(session, "restore", path="notes/plan.md", to=before)
    seen["after_dry"] = ((layout.data / "notes" / "plan.md").read_text(), commits(layout))
    seen["done"] = await call(session, "restore", path="notes/plan.md", to=before, dry_run=False)
    seen["snapshot"] = await call(session, "snapshot", message="the plan is back")
    seen["resources"] = [str(r.uri) for r in (await session.list_resources()).resources]
    read = await session.read_resource(types.AnyUrl("file:///notes/plan.md"))
    seen["read"] = read.contents[0]
    (layout.data / "notes" / "after.md").write_text("written just before the agent asks for a backup\n")
    seen["sync"] = await call(session, "sync_now", timeout_seconds=60)  # no debounce: committed at once
    return seen


def test_an_agent_restores_a_note_through_the_daemons_mcp_endpoint(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "plan.md").write_text("# Plan\n\n- call the printer\n")
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}")
    wait_for(lambda: len(commits(layout)) == 1, what="the first commit")
    (layout.data / "notes" / "plan.md").write_text("oops\n")
    wait_for(lambda: len(commits(layout)) == 2, what="the overwrite committed")

    overwritten = commits(layout)
    seen = over_http(f"http://127.0.0.1:{port}/mcp", agent_session(layout))
    assert seen["tools"] == {"history", "show", "diff", "search", "status", "restore", "snapshot", "sync_now"}
    assert seen["status"][2]["running"] is True and seen["status"][2]["head"] in commits(layout)
    assert seen["search"][2]["past"]
    assert [c["kind"] for c in seen["history"][2]["changes"]] == ["save", "save"]
    assert seen["show"][1] == "# Plan\n\n- call the printer\n"
    assert "+oops" in seen["diff"][1]
    dry = seen["dry"][2]
    assert dry["dry_run"] is True and dry["sha"] is None and "dry_run=false" in dry["summary"]
    assert seen["after_dry"] == ("oops\n", overwritten)  # the dry run wrote nothing, committed nothing
    done = seen["done"][2]
    assert not seen["done"][0] and done["sha"] in commits(layout)
    assert (layout.data / "notes" / "plan.md").read_text() == "# Plan\n\n- call the printer\n"
    trailer = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)",
                             done["sha"]))
    assert trailer["op"] == "restore"
    assert seen["snapshot"][2]["tag"].startswith("snapshot-")
    assert seen["resources"] == ["file:///notes/plan.md"]
    assert isinstance(seen["read"], types.TextResourceContents) and "printer" in seen["read"].text
    error, _, synced = seen["sync"]
    assert not error and synced is not None and synced["reason"] is None and synced["by"] == "daemon", synced
    assert git(layout.git_dir, "show", f"{synced['commit']}:notes/after.md").startswith("written just before")

    # The pages' rules: a DNS-rebound Host name and a request from another site get nothing.
    assert post(port, INIT, Host="evil.example:80")[0] == 403
    assert post(port, INIT, Origin="http://evil.example")[0] == 403
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/mcp", headers={"Accept": "text/event-stream"})
    answer = conn.getresponse()
    assert answer.status == 405 and answer.getheader("allow") == "POST"  # no stream held open
    conn.close()
    status, _, body = post(port, INIT, Origin=f"http://127.0.0.1:{port}")
    assert status == 200 and json.loads(body)["result"]["serverInfo"]["name"] == "committer"
    assert daemon.stop() == 0
    assert not daemon.events("http_handler_failed") and "Traceback" not in daemon.output()


def test_off_loopback_mcp_needs_the_ui_token(layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    (layout.data / "a.md").write_text("a note\n")
    token_file = tmp_path / "ui_token"
    token_file.write_text(TOKEN)
    port = free_port()
    start_daemon("--http", f"0.0.0.0:{port}", "--ui-token-file", str(token_file))
    status, headers, body = post(port, INIT)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert "ui token" in json.loads(body)["error"]
    assert post(port, INIT, Authorization="Bearer wrong-token-0123456789")[0] == 401

    async def shown(session: ClientSession) -> tuple[bool, str, dict[str, Any] | None]:
        return await call(session, "show", path="a.md")

    assert over_http(f"http://127.0.0.1:{port}/mcp", shown, token=TOKEN)[:2] == (False, "a note\n")


@pytest.mark.slow  # a daemon and a stdio server: the restore itself is proven by the tests above
def test_committer_mcp_in_the_data_directory_finds_the_running_daemon(layout: Layout, start_daemon: Start) -> None:
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "plan.md").write_text("first\n")
    start_daemon()
    wait_for(lambda: len(commits(layout)) == 1, what="the first commit")
    (layout.data / "notes" / "plan.md").write_text("second\n")
    wait_for(lambda: len(commits(layout)) == 2, what="the second commit")
    first = commits(layout)[-1]
    found = Layout(layout.root, layout.data, layout.git_dir, {k: v for k, v in layout.env.items()
                                                               if not k.startswith("COMMITTER_")})

    async def work(session: ClientSession) -> Any:
        return await call(session, "restore", path="notes/plan.md", to=first, dry_run=False)

    error, _, done = drive(server(found, cwd=str(layout.data / "notes")), work)
    assert not error and done is not None and done["sha"] in commits(layout)
    assert (layout.data / "notes" / "plan.md").read_text() == "first\n"
