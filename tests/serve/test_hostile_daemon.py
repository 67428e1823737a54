"""A running daemon's pages against an impatient or flooding client: a double click on a hold's button deals
with the hold once, and a flood of as-you-type requests neither stalls the pages' health answers nor the
daemon's commits."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Layout, git, wait_for
from tests.serve.test_pages import Answer, fetch, post

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def held_page(port: int) -> str | None:
    text = fetch(port, "/").text
    return text if 'id="hold"' in text else None


def at_once(calls: list[Callable[[], Answer]]) -> list[Answer]:
    """The calls started together (a double click), their answers in order."""
    answers: list[Answer | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def one(n: int) -> None:
        start.wait()
        answers[n] = calls[n]()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


@pytest.mark.parametrize("button", ["/holds/confirm", "/holds/put-back"])
def test_a_double_click_on_a_hold_button_deals_with_the_hold_once(layout: Layout, start_daemon: Start,
                                                                   button: str) -> None:
    (layout.data / "kb").mkdir()
    for n in range(6):
        (layout.data / "kb" / f"n{n}.md").write_text(f"note {n}\n")
    port = free_port()
    start_daemon("--http", f"127.0.0.1:{port}", env={"COMMITTER_MAX_DELETE": "3"})
    wait_for(lambda: git(layout.git_dir, "ls-tree", "-r", "--name-only", "HEAD").count("kb/") == 6, timeout=20,
             what="the first commit")
    for n in range(5):
        (layout.data / "kb" / f"n{n}.md").unlink()
    page = wait_for(lambda: held_page(port), timeout=20, what="the hold on the page")
    fields = {name: re.search(rf'name="{name}" value="([^"]*)"', page)[1]  # type: ignore[index]
              for name in ("csrf", "seen")}
    origin = f"http://127.0.0.1:{port}"
    commits = git(layout.git_dir, "rev-list", "--count", "HEAD").strip()
    answers = at_once([lambda: post(port, button, fields, Origin=origin)] * 2)
    done = [a for a in answers if a.status in (200, 303) and "Nothing was done" not in a.text]
    assert len(done) == 1, [(a.status, a.text[-300:]) for a in answers]
    other = next(a for a in answers if a is not done[0])
    assert other.status == 409 and "nothing was done" in other.text.lower()
    if button == "/holds/confirm":
        assert int(git(layout.git_dir, "rev-list", "--count", "HEAD")) == int(commits) + 1
        assert git(layout.git_dir, "ls-tree", "-r", "--name-only", "HEAD").split() == ["kb/n5.md"]
    else:
        assert git(layout.git_dir, "rev-list", "--count", "HEAD").strip() == commits
        assert sorted(p.name for p in (layout.data / "kb").iterdir()) == [f"n{n}.md" for n in range(6)]


def test_a_flood_of_typed_names_stalls_neither_health_nor_commits(layout: Layout, start_daemon: Start,
                                                                 tmp_path: Path) -> None:
    for n in range(300):
        (layout.data / f"note-{n:03}.md").write_text("x\n")
    port = free_port()
    start_daemon("--http", f"127.0.0.1:{port}")
    wait_for(lambda: "note-299.md" in git(layout.git_dir, "ls-tree", "-r", "--name-only", "HEAD"), timeout=20,
             what="the first commit")
    stop = threading.Event()
    statuses: list[int] = []

    def flood() -> None:
        while not stop.is_set():
            statuses.append(fetch(port, "/search/names?q=note").status)

    floods = [threading.Thread(target=flood) for _ in range(12)]
    for thread in floods:
        thread.start()
    try:
        wait_for(lambda: len(statuses) > 50, timeout=30, what="the flood to be under way")
        assert fetch(port, "/healthz").status == 200
        (layout.data / "during-the-flood.md").write_text("saved all the same\n")
        wait_for(lambda: "during-the-flood.md" in git(layout.git_dir, "ls-tree", "--name-only", "HEAD"),
                 timeout=20, what="a commit during the flood")
    finally:
        stop.set()
        for thread in floods:
            thread.join(30)
    assert set(statuses) <= {200, 503}, set(statuses)
