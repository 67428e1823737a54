"""The MCP server over stdio: `committer mcp` started as an agent host starts it, driven by the SDK's own
client through every tool and the resources, on a real history; a restore by an agent, and a write that is
refused without dry_run=false."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import ISOLATED, Layout, committer, git

pytestmark = pytest.mark.integration


def history(layout: Layout) -> dict[str, str]:
    """v1: notes/plan.md and a picture; v2: the plan overwritten by mistake; v3: an old note moved."""
    pipeline = make_pipeline(layout)
    write(layout, "notes/plan.md", "# Plan\n\n- call the printer\n- book the room for Friday\n")
    write(layout, "notes/old.md", "an old note\n")
    write(layout, "pic.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    versions = {"v1": str(pipeline.commit([""]).sha)}
    write(layout, "notes/plan.md", "oops\n")
    versions["v2"] = str(pipeline.commit(["notes/plan.md"]).sha)
    (layout.data / "notes" / "old.md").rename(layout.data / "notes" / "archive.md")
    versions["v3"] = str(pipeline.commit(["notes/old.md", "notes/archive.md"]).sha)
    return versions


def server(layout: Layout, cwd: str | None = None, env: dict[str, str] | None = None) -> StdioServerParameters:
    """`committer mcp` as a host's configuration starts it (the repository found from its environment)."""
    given = {**ISOLATED, **layout.env, "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
             "COMMITTER_LOG_FORMAT": "json", **(env or {})}
    return StdioServerParameters(command=sys.executable, args=["-m", "committer", "mcp"], env=given, cwd=cwd)


def drive(params: StdioServerParameters, session_work: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        with open(os.devnull, "w") as errors:
            async with stdio_client(params, errlog=errors) as (read, write_), ClientSession(read, write_) as session:
                await session.initialize()
                return await session_work(session)

    return asyncio.run(asyncio.wait_for(run(), 120))


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def call(session: ClientSession, name: str, **args: Any) -> tuple[bool, str, dict[str, Any] | None]:
    result = await session.call_tool(name, args)
    return result.isError, text(result), result.structuredContent


async def every_tool(session: ClientSession) -> dict[str, Any]:
    """Each tool once as an agent uses it, and the refusals; what came back, by name."""
    seen: dict[str, Any] = {}
    listed = await session.list_tools()
    seen["tools"] = {tool.name: tool for tool in listed.tools}
    seen["history"] = await call(session, "history", path="notes", since="1 hour ago")
    seen["history_all"] = await call(session, "history", limit=2)
    seen["history_future"] = await call(session, "history", since="2999-01-01")
    seen["show_now"] = await call(session, "show", path="notes/plan.md")
    seen["show_picture"] = await call(session, "show", path="pic.png")
    seen["diff"] = await call(session, "diff", path="notes/plan.md")
    seen["search"] = await call(session, "search", text="printer", in_history=True)
    seen["status"] = await call(session, "status")
    seen["snapshot"] = await call(session, "snapshot", message="before the agent's fix")
    seen["outside"] = await call(session, "show", path="../secret.txt")
    seen["bad_date"] = await call(session, "show", path="notes/plan.md", at="the day before the fire")
    seen["too_early"] = await call(session, "show", path="notes/plan.md", at="2001-01-01")
    seen["no_such"] = await call(session, "show", path="plan.md")
    seen["folder"] = await call(session, "show", path="notes")
    seen["everything"] = await call(session, "show", path=".")
    seen["bad_args"] = await call(session, "restore", path="notes/plan.md")
    seen["resources"] = await session.list_resources()
    seen["templates"] = await session.list_resource_templates()
    seen["read"] = await session.read_resource(types.AnyUrl("file:///notes/archive.md"))
    seen["sync_bad"] = await call(session, "sync_now", timeout_seconds=0)
    return seen


def test_an_agent_over_stdio_sees_the_history_and_gets_one_line_errors(layout: Layout) -> None:
    versions = history(layout)

    async def then_sync(session: ClientSession) -> dict[str, Any]:
        seen = await every_tool(session)
        write(layout, "notes/unsaved.md", "written, no daemon running\n")
        seen["sync"] = await call(session, "sync_now", timeout_seconds=30)  # commits what waits
        return seen

    seen = drive(server(layout), then_sync)
    assert set(seen["tools"]) == {"history", "show", "diff", "search", "status", "restore", "snapshot", "sync_now"}
    restore = seen["tools"]["restore"]
    assert restore.inputSchema["properties"]["dry_run"]["default"] is True
    assert restore.annotations.readOnlyHint is False and seen["tools"]["show"].annotations.readOnlyHint is True
    assert all(tool.description for tool in seen["tools"].values())

    error, _, changes = seen["history"]
    assert not error and changes is not None
    kinds = [(c["id"], c["kind"]) for c in changes["changes"]]
    assert kinds == [(versions["v3"], "rename"), (versions["v2"], "save"), (versions["v1"], "save")]
    assert changes["changes"][0]["paths"] == [{"path": "notes/archive.md", "change": "renamed", "from": "notes/old.md"}]
    assert seen["history_all"][2]["more"] is True and len(seen["history_all"][2]["changes"]) == 2
    assert seen["history_future"][2]["changes"] == []

    assert seen["show_now"][:2] == (False, "oops\n")
    error, picture, _ = seen["show_picture"]
    assert not error and "binary file: 2056 bytes, image/png" in picture
    error, diff, _ = seen["diff"]
    assert not error and "-- call the printer" in diff and "+oops" in diff
    found = seen["search"][2]
    assert found["names"] == [] and found["lines"] == []  # the newest version has no printer
    assert [(hit["sha"], hit["came"]) for hit in found["past"]] == [(versions["v2"], False), (versions["v1"], True)]
    status = seen["status"][2]
    assert status["head"] == versions["v3"] and status["held_files"] == [] and status["remote"] is None
    assert seen["snapshot"][2]["head"] == versions["v3"]
    assert git(layout.git_dir, "tag", "-l", "snapshot-*").strip() == seen["snapshot"][2]["tag"]

    error, _, synced = seen["sync"]  # no daemon: the command commits itself; no remote to push to
    assert not error and synced is not None and synced["reason"] is None and synced["by"] == "command"
    assert synced["commit"] == git(layout.git_dir, "rev-parse", "HEAD").strip() != seen["snapshot"][2]["head"]
    assert "there is no remote" in synced["summary"]
    assert git(layout.git_dir, "show", "HEAD:notes/unsaved.md") == "written, no daemon running\n"
    for name in ("outside", "bad_date", "too_early", "no_such", "bad_args", "folder", "everything", "sync_bad"):
        error, line, _ = seen[name]
        assert error and "\n" not in line and "Traceback" not in line, (name, line)
    assert "outside the data directory" in seen["outside"][1]
    assert "is not a date" not in seen["bad_date"][1] and "names no version" in seen["bad_date"][1]
    assert "before the history starts" in seen["too_early"][1]
    assert "did you mean notes/plan.md?" in seen["no_such"][1] and "history with path PATH" in seen["no_such"][1]
    assert "'to' is a required property" in seen["bad_args"][1]
    assert "notes is a folder" in seen["folder"][1] and "name one file" in seen["everything"][1]

    uris = {str(r.uri) for r in seen["resources"].resources}
    assert uris == {"file:///notes/plan.md", "file:///notes/archive.md", "file:///pic.png"}
    assert seen["templates"].resourceTemplates[0].uriTemplate == "file:///{path}"
    content = seen["read"].contents[0]
    assert isinstance(content, types.TextResourceContents) and content.text == "an old note\n"


def put_back(layout: Layout) -> Callable[[ClientSession], Awaitable[dict[str, Any]]]:
    """What an agent does when asked to put the overwritten plan back as it was before."""

    async def work(session: ClientSession) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        _, _, changes = await call(session, "history", path="notes/plan.md")
        assert changes is not None
        before = changes["changes"][-1]["id"]  # the oldest version, before the overwrite
        seen["dry"] = await call(session, "restore", path="notes/plan.md", to=before)
        seen["dry_run_true"] = await call(session, "restore", path="notes/plan.md", to=before, dry_run=True)
        seen["after_dry"] = ((layout.data / "notes" / "plan.md").read_text(),
                             git(layout.git_dir, "rev-parse", "HEAD").strip())
        seen["done"] = await call(session, "restore", path="notes/plan.md", to=before, dry_run=False)
        seen["after"] = await call(session, "history", path="notes/plan.md", limit=1)
        return seen

    return work


def test_an_agent_restores_a_note_only_with_dry_run_false(layout: Layout) -> None:
    versions = history(layout)
    seen = drive(server(layout), put_back(layout))
    for name in ("dry", "dry_run_true"):
        error, _, answer = seen[name]
        assert not error and answer is not None and answer["dry_run"] is True and answer["sha"] is None
        assert answer["actions"] == [{"action": "write", "path": "notes/plan.md"}]
        assert "nothing was changed" in answer["summary"] and "dry_run=false" in answer["summary"]
    assert seen["after_dry"] == ("oops\n", versions["v3"])  # the dry runs wrote nothing, committed nothing
    error, _, done = seen["done"]
    assert not error and done is not None and done["sha"]
    assert (layout.data / "notes" / "plan.md").read_text().startswith("# Plan")
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == done["sha"]
    assert json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)"))["op"] == \
        "restore"
    assert seen["after"][2]["changes"][0] == {**seen["after"][2]["changes"][0], "id": done["sha"], "kind": "restore"}
    assert versions["v2"] in git(layout.git_dir, "rev-list", "HEAD")  # the mistake stays in the history


def test_committer_mcp_without_a_repository_is_one_line_and_exit_2(layout: Layout) -> None:
    proc = committer("mcp", *layout.args(), env=layout.env)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert "no repository at" in proc.stderr.strip().splitlines()[-1]
