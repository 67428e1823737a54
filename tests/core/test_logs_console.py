"""Console logs for people: a save is one line naming its files and what became of it, a push failing again
and again is told once in full and then counted, a failed one-shot push says its error once."""

from __future__ import annotations

import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from committer.core import logs
from tests.conftest import DaemonProcess, Layout, committer, wait_for

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SHA = re.compile(r"\b[0-9a-f]{40}\b")
CONSOLE = {"COMMITTER_LOG_FORMAT": "console"}


def dead_remote() -> str:
    """An http remote on a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/notes.git"


def on_terminal(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdin, stdout and stderr; (exit code, what it printed)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env={**os.environ, **env}, close_fds=True)
    os.close(child)
    out, end = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=10), out.decode("utf-8", "replace")
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "committer", *args]


class Lines:
    """The console renderer's input, one dict per line it was given."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, _logger: object, _name: str, event: Any) -> str:
        self.seen.append(dict(event))
        return str(event["event"])


def feed(console: logs.Console, *events: dict[str, Any]) -> list[str]:
    out = []
    for event in events:
        try:
            out += console(None, "info", {"level": "info", **event}).split("\n")
        except BaseException as exc:  # structlog.DropEvent: nothing printed
            assert type(exc).__name__ == "DropEvent"
    return out


def test_console_lines_name_the_files_count_failures_and_say_when_pushes_work_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_expect_pushes", True)
    console = logs.Console(Lines())
    batch = "0b9f6a7e-3c52-4a43-9d4c-3f1e1fd0f0a1"
    failed = {"event": "git_push", "result": "failed", "kind": "transient", "batches": [batch],
              "message": "fatal: unable to access 'x': " + "Couldn't connect " * 20}
    said = feed(
        console,
        {"event": "git_commit", "batch": batch, "sha": "a" * 40, "summary": "save notes/plan.md and 1 more"},
        {**failed, "consecutive_failures": 1},
        {"event": "push_backoff", "attempt": 1},
        {**failed, "batches": [], "consecutive_failures": 2},
        {**failed, "batches": [], "consecutive_failures": 3},
        {"event": "git_commit", "batch": "b", "summary": "delete 3 files in journal/"},
        {"event": "git_push", "result": "ok", "batches": [batch, "b"], "commits": 2, "remote": "me/notes"},
        {"event": "daemon_ready", "seconds": 0.3, "batch": batch, "head": "b" * 40, "op": None},
    )
    assert said[0].startswith("push failed, will retry: fatal: unable to access")
    assert said[1] == "saved notes/plan.md (+1 more) → push failed, will retry"
    since = time.strftime("%H:%M")
    assert said[2:4] == [f"push still failing (2 times since {since}): remote unreachable",
                         f"push still failing (3 times since {since}): remote unreachable"]
    assert said[4] == "deleted 3 files in journal/ → not pushed yet"
    assert logs._said("rename notes/todo.md → notes/2026/todo.md") == "renamed notes/todo.md to notes/2026/todo.md"
    assert said[5] == f"push works again (it failed 3 times since {since})"
    assert said[6:] == ["pushed 2 commits to me/notes", "daemon_ready"]
    assert sum("Couldn't connect" in line for line in said) == 1
    progress = feed(console, {"event": "reconcile_progress", "why": "start", "seconds": 10.2, "files": 12345,
                              "bytes": 3_400_000},
                    {"event": "push_progress", "remote": "me/notes", "seconds": 5, "phase": "Writing objects",
                     "done": 420, "total": 1000, "size": "1.20 MiB"})
    assert progress == ["scanning the data directory (start): 12,345 files read (3.4 MB) in 10 s",
                        "pushing to me/notes: writing objects 420/1,000, 1.20 MiB in 5 s"]
    fetch = {"event": "pull_fetch_failed", "error": "fetch failed (transient): " + "x" * 300, "retry_in": 2.0}
    again = feed(console, dict(fetch), dict(fetch), {**fetch, "error": "other"})
    assert again[0] == "pull_fetch_failed" and again[2] == "pull_fetch_failed"
    assert again[1] == f"pull_fetch_failed again (2 times since {since}, the same error)"
    assert "error" not in console.render.seen[-2]  # type: ignore[attr-defined]
    last = console.render.seen[-6]  # type: ignore[attr-defined]
    assert last == {"level": "info", "event": "daemon_ready", "seconds": 0.3, "head": "b" * 12}


@pytest.mark.integration
def test_a_save_is_one_console_line_naming_its_file_and_its_push(layout: Layout, mirror: Path) -> None:
    assert committer("init", env=layout.env).returncode == 0
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "plan.md").write_text("plan\n")
    proc = committer("run", "--once", "--remote", f"file://{mirror}", env={**layout.env, **CONSOLE})
    assert proc.returncode == 0, proc.stderr
    assert "saved notes/plan.md → pushed" in proc.stderr
    assert not UUID.search(proc.stderr) and not SHA.search(proc.stderr) and "None" not in proc.stderr, proc.stderr


@pytest.mark.integration
def test_a_failing_push_is_told_once_in_full_then_counted(
        layout: Layout, start_daemon: Callable[..., DaemonProcess]) -> None:
    assert committer("init", env=layout.env).returncode == 0
    daemon = start_daemon("--remote", dead_remote(), ready=False,
                          env={**CONSOLE, "COMMITTER_PUSH_BACKOFF_MAX": "200ms", "COMMITTER_PUSH_INTERVAL": "100ms"})
    (layout.data / "a.md").write_text("a\n")
    wait_for(lambda: "push still failing (3 times since" in daemon.output(), 30, "three failures counted")
    out = daemon.output()
    pushes = out[out.index("daemon_ready"):]  # the start-up look at the remote is a line of its own
    assert pushes.count("Couldn't connect") == 1, out
    assert re.search(r"saved a\.md → (push failed, will retry|not pushed yet)", out), out
    assert "push_backoff" not in out


@pytest.mark.integration
def test_a_failed_push_on_a_terminal_says_its_error_once_and_what_to_do(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a\n")
    assert committer("init", env=layout.env).returncode == 0
    code, out = on_terminal(cli("push", *layout.args(), "--remote", dead_remote()), layout.env)
    assert code == 1, out
    assert out.count("Couldn't connect") == 1, out
    assert "retrying" not in out and "run `committer push` again later" in out


def test_console_lines_never_act_on_the_terminal() -> None:
    """A name holding `\\x1b[2J` or a line break, in any field or in the line's text (a git error message
    names files), is shown escaped: it can neither clear the operator's terminal nor pass for a line of its
    own."""
    import io

    out = io.StringIO()
    try:
        logs.configure("console", "info", stream=out)
        log = logs.get("test")
        log.error("commit_failed", error="unable to create 'notes/evil\x1b[2J.md'\nfatal: stop",
                  path="a\nb\x1b[31m.md", what="\x1b[2J\u202e", why="save \u202eevil")
        log.info("push failed: cannot open evil\x1b[2J.md\n2026-12-07 [info] all pushed")
    finally:
        logs.configure("json", "info")
    text = out.getvalue()
    assert "\x1b" not in text and "\u202e" not in text, text
    assert "evil\\x1b[2J.md" in text and "a\\x0ab\\x1b[31m.md" in text and "what=\\x1b[2J\\u202e" in text
    assert text.count("\n") == 3 and "\n    | 2026-12-07 [info] all pushed" in text, text
