"""The request mailbox: a command leaves a request file for the running daemon, wakes it with SIGUSR1 and
takes its answer file; requests are served in order, each answered once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from committer.core import fsio
from committer.git.layout import state_dir

REQUESTS = "requests"
ANSWERS = "answers"


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fsio.write_atomic(path, json.dumps(value).encode())


def submit_request(git_dir: Path, request: dict[str, Any]) -> str:
    """Leave a request for the daemon (it is told with SIGUSR1); returns its id."""
    ident = uuid.uuid4().hex
    _write_json(state_dir(git_dir) / REQUESTS / f"{ident}.json", request)
    return ident


def pending_requests(git_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Requests not answered yet, oldest first; unreadable ones are dropped."""
    folder = state_dir(git_dir) / REQUESTS
    found = []
    try:
        paths = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    except OSError:
        return []
    for path in paths:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if isinstance(value, dict):
            found.append((path.stem, value))
    return found


def answer_request(git_dir: Path, ident: str, answer: dict[str, Any]) -> None:
    """Publish the answer to a request and remove the request."""
    _write_json(state_dir(git_dir) / ANSWERS / f"{ident}.json", answer)
    (state_dir(git_dir) / REQUESTS / f"{ident}.json").unlink(missing_ok=True)


def take_answer(git_dir: Path, ident: str) -> dict[str, Any] | None:
    """The daemon's answer once it is there (read once, then removed)."""
    path = state_dir(git_dir) / ANSWERS / f"{ident}.json"
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    return value if isinstance(value, dict) else None


def withdraw_request(git_dir: Path, ident: str) -> None:
    """Forget a request nobody answered."""
    (state_dir(git_dir) / REQUESTS / f"{ident}.json").unlink(missing_ok=True)
