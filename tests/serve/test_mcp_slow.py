"""/mcp never stalls the rest of the daemon's HTTP side: tool calls whose git hangs leave /healthz and the pages
answering, at most the tools' own workers run at once, and a stop ends them at once (their git killed)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from committer.serve import agentsite, app
from committer.serve.access import Access
from committer.serve.agents import Agents
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, finishes, wait_for
from tests.serve.test_pages import fetch, perform
from tests.serve.test_slow_clients import timed


def slow_status_call(port: int) -> socket.socket:
    """A `status` tool call sent whole; its answer is read (or not) later."""
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                       "params": {"name": "status", "arguments": {}}}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                  f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                 + body)
    return sock


@pytest.fixture
def hung_tools(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HttpServer, Agents, Any]]:
    """The daemon's HTTP server with pages and /mcp, whose `status` tool runs a git that sleeps a minute."""
    monkeypatch.setattr(app, "STOP_SECONDS", 600.0)  # a stop that waited for a tool call would be unmistakable
    pipeline = make_pipeline(layout)
    write(layout, "a.md", "hello\n")
    pipeline.commit([""])
    repo = pipeline.repo
    marker = f"{random.randint(40, 59)}.{random.randint(100, 999)}"

    def status() -> dict[str, Any]:
        repo.git("-c", f"alias.slowly=!sleep {marker}", "slowly", check=False)
        return {}

    def sleepers() -> list[int]:
        out = subprocess.run(["pgrep", "-f", f"^sleep {marker}"], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    agents = Agents(repo, status, lambda asked: perform(pipeline)(asked).payload, seconds=600.0)
    pages = Pages(repo, Access("open"), lambda: {}, perform(pipeline))
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages, agents=agents)
    server.start()
    yield server, agents, sleepers
    server.stop()
    for pid in sleepers():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_hung_tool_calls_leave_health_and_pages_answering_and_a_stop_ends_them(
        hung_tools: tuple[HttpServer, Agents, Any]) -> None:
    server, agents, sleepers = hung_tools
    calls = [slow_status_call(server.port) for _ in range(6)]
    try:
        wait_for(lambda: len(sleepers()) >= agents.pool.workers, timeout=30, what="the tools' workers to be busy")
        for path in ("/healthz", "/", "/file/a.md"):
            answer, seconds = timed(fetch, server.port, path)
            assert answer.status == 200 and seconds < 5, (path, answer.status, seconds)
        assert len(sleepers()) <= agents.pool.workers  # bounded: the other calls wait, they do not run
        # Not the ten minutes a stop may wait for requests, nor the minute the tools' git sleeps.
        finishes(server.stop, 30, "the server's stop")
        wait_for(lambda: not sleepers(), timeout=5, what="the tools' git processes to be killed")
    finally:
        for sock in calls:
            sock.close()


def test_a_request_too_large_or_too_slow_is_refused_before_any_tool_runs(
        hung_tools: tuple[HttpServer, Agents, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    server, _agents, sleepers = hung_tools
    monkeypatch.setattr(agentsite, "BODY_SECONDS", 1.0)
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "' + b"a" * 300_000 + b'"}}'
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.format(len(big)).encode() + big)
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.format(100).encode() + b'{"jsonrpc": ')  # and nothing more
        answer, seconds = timed(sock.recv, 100)
        assert answer.startswith(b"HTTP/1.1 400") and seconds < 10
    assert not sleepers()


def test_the_daemon_loads_the_mcp_sdk_only_when_an_agent_calls() -> None:
    """Starting the daemon's HTTP side with /mcp mounted imports nothing of the SDK (20 MB, half a second)."""
    script = ("import sys\n"
              "from pathlib import Path\n"
              "from committer.daemon import service\n"
              "from committer.git.repo import GitRepo\n"
              "from committer.serve import access, agents, app, pages\n"
              "repo = GitRepo(Path('/nonexistent/git'), Path('/nonexistent/data'), 'main')\n"
              "site = pages.Pages(repo, access.Access('open'), dict, lambda asked: None)\n"
              "server = app.HttpServer(('127.0.0.1', 0), app.Metrics(process=False), dict, bool, pages=site,\n"
              "                        agents=agents.Agents(repo, dict, lambda asked: {}))\n"
              "server.app()\n"
              "assert server.agent_site is not None\n"
              "print(sorted(name for name in sys.modules if name == 'mcp' or name.startswith('mcp.')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
