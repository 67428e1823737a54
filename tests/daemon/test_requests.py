"""Requests to the main loop: typed, served the same way from the mailbox (other processes) and from the
inbox (the daemon's own threads), each answered once, and the push loop does what the answer's `push`
field says. A request kind registered here plugs in like the built-in ones (the seam)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from committer.commit.committer import Committer
from committer.core.errors import CommitterError
from committer.daemon.maintenance import Maintenance
from committer.daemon.work import Work
from committer.git.layout import state_dir
from committer.ops.asking import NOW, SOON, Answer, Asked, Push, as_json
from committer.ops.inbox import NOT_NOW, TOO_LATE, Inbox
from committer.ops.kinds import REQUESTS, ConfirmDeletes, Forced, PullNow, PushNow, Restore, Snapshot
from committer.ops.mailbox import pending_requests, submit_request, take_answer
from committer.serve.metrics import Metrics
from committer.sync.pullstate import PullRecord
from committer.watch.batcher import Batcher
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import DaemonProcess, Layout, git, show, wait_for


@dataclass(frozen=True)
class Echo(Asked):
    """A request kind only this test knows: it answers what it was given, with the push it names."""

    op: ClassVar[str] = "echo-for-test"
    text: str = ""
    push: str | None = None


def _echo(committer: Committer, _record: PullRecord, asked: Echo) -> Answer:
    push: Push | None = NOW if asked.push == NOW else SOON if asked.push == SOON else None
    # A `sha` in the payload that says nothing about pushing: only the field decides.
    return Answer({"text": asked.text, "head": committer.head, "sha": "0" * 40}, push=push)


@pytest.fixture
def echo() -> Iterator[None]:
    REQUESTS.register(Echo, _echo)
    yield
    REQUESTS.unregister(Echo.op)


class FakePusher:
    """Records what the main loop asks of the push loop."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def retry_now(self) -> None:
        self.calls.append("now")

    def request(self) -> None:
        self.calls.append("soon")


@dataclass
class Loop:
    work: Work
    pusher: FakePusher
    woken: threading.Event
    accepting: threading.Event


@pytest.fixture
def loop(layout: Layout) -> Loop:
    pipeline = make_pipeline(layout)
    write(layout, "a.md", "one\n")
    pipeline.reconcile()
    pusher, woken, accepting = FakePusher(), threading.Event(), threading.Event()
    accepting.set()
    inbox = Inbox(woken.set, accepting.is_set, timeout=30.0)
    work = Work(pipeline, PullRecord(), Batcher(60.0, 600.0), pusher, None, Metrics(process=False),  # type: ignore[arg-type]
                Maintenance(pipeline.repo), layout.git_dir, inbox)
    return Loop(work, pusher, woken, accepting)


def ask_in_thread(inbox: Inbox, request: Any) -> tuple[threading.Thread, list[Answer | BaseException]]:
    """What an HTTP thread does: ask, and wait for the answer."""
    got: list[Answer | BaseException] = []

    def ask() -> None:
        try:
            got.append(inbox.ask(request))
        except BaseException as exc:  # handed to the test
            got.append(exc)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    return thread, got


def test_a_request_kind_registered_here_is_served_through_the_inbox(echo: None, loop: Loop) -> None:
    """A fake request kind plugs into the registry and the main loop serves it from another thread's ask."""
    thread, got = ask_in_thread(loop.work.inbox, Echo("hello", push=NOW))
    assert loop.woken.wait(10), "asking wakes the loop"
    loop.work.serve_requests(lambda: None)
    thread.join(10)
    assert len(got) == 1 and isinstance(got[0], Answer)
    assert got[0].ok and got[0].payload["text"] == "hello" and got[0].payload["head"] == loop.work.committer.head
    assert loop.pusher.calls == ["now"]


def test_a_request_kind_registered_here_is_served_through_the_mailbox_from_another_process(
    echo: None, loop: Loop, layout: Layout
) -> None:
    """Another process leaves the request as JSON in the mailbox and reads the answer file the CLI reads."""
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from committer.ops.mailbox import submit_request, take_answer\n"
        "git_dir = Path(sys.argv[1])\n"
        "ident = submit_request(git_dir, {'op': 'echo-for-test', 'args': {'text': 'from afar'}})\n"
        "deadline = time.monotonic() + 30\n"
        "while (answer := take_answer(git_dir, ident)) is None and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "print(json.dumps(answer))\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script, str(layout.git_dir)], stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: pending_requests(layout.git_dir), 20, "the other process's request in the mailbox")
        loop.work.serve_requests(lambda: None)
        out, _ = other.communicate(timeout=30)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    answer = json.loads(out)
    assert answer["ok"] is True and answer["text"] == "from afar"
    assert loop.pusher.calls == [], "no push: the answer's field says none, whatever its payload holds"


@pytest.mark.parametrize(("push", "calls"), [(NOW, ["now"]), (SOON, ["soon"]), (None, [])])
def test_the_push_loop_does_what_the_answers_field_says(
    echo: None, loop: Loop, push: str | None, calls: list[str]
) -> None:
    """The same payload (a `sha` included), three push decisions: only the field decides."""
    loop.work.inbox.tell(Echo("x", push=push))
    loop.work.serve_requests(lambda: None)
    assert loop.pusher.calls == calls


def test_the_built_in_requests_say_what_to_push(loop: Loop, layout: Layout) -> None:
    """A commit made by a request is pushed now; a tag or a failure goes with the next push; push-now is now."""
    loop.work.inbox.tell(PushNow())
    loop.work.serve_requests(lambda: None)
    assert loop.pusher.calls == ["now"]
    first = loop.work.committer.head
    write(layout, "a.md", "two\n")
    loop.work.committer.reconcile()
    for request in (Snapshot("a snapshot", "snap-1"), Restore("a.md", str(first)), Restore("nope.md", str(first))):
        loop.work.inbox.tell(request)
    loop.work.serve_requests(lambda: None)
    assert loop.pusher.calls == ["now", "soon", "now", "soon"]
    assert (layout.data / "a.md").read_text() == "one\n"


def test_a_forced_update_goes_through_the_inbox(loop: Loop) -> None:
    """The webhook's forced update is queued, then recorded as refused by the main loop, in order."""
    loop.work.forced_update(loop.work.committer.head)  # our own force-push coming back: nothing refused
    assert loop.woken.is_set()
    loop.work.serve_requests(lambda: None)
    assert loop.work.record.refused() is None
    loop.work.forced_update("e" * 40)
    assert loop.work.record.refused() is None, "nothing happens on the webhook's thread"
    loop.work.serve_requests(lambda: None)
    refused = loop.work.record.refused()
    assert refused is not None and refused["remote_head"] == "e" * 40
    assert loop.pusher.calls == []


def test_the_mailbox_refuses_what_it_does_not_know(loop: Loop, layout: Layout) -> None:
    """An unknown operation, or one only the daemon's own threads may ask (a forced update), is answered
    exit code 2 and does nothing."""
    bad = submit_request(layout.git_dir, {"op": "format-disk", "args": {}})
    forced = submit_request(layout.git_dir, as_json(Forced("e" * 40)))
    loop.work.serve_requests(lambda: None)
    assert take_answer(layout.git_dir, bad) == {"error": "unknown operation 'format-disk'", "exit_code": 2}
    assert take_answer(layout.git_dir, forced) == {"error": "unknown operation 'forced-update'", "exit_code": 2}
    assert loop.work.record.refused() is None


def test_a_request_queued_when_the_daemon_stops_is_answered_with_an_error(loop: Loop) -> None:
    """The page waiting for it gets the "starting or stopping" error; the loop then skips it."""
    thread, got = ask_in_thread(loop.work.inbox, PullNow())
    assert loop.woken.wait(10)
    loop.accepting.clear()
    thread.join(15)
    assert len(got) == 1 and isinstance(got[0], CommitterError) and got[0].message == NOT_NOW
    assert loop.work.inbox.take() is None


def test_a_request_is_refused_while_the_daemon_starts(loop: Loop) -> None:
    loop.accepting.clear()
    with pytest.raises(CommitterError, match="starting or stopping"):
        loop.work.inbox.ask(ConfirmDeletes())
    assert loop.work.inbox.take() is None


def test_a_request_nobody_serves_times_out() -> None:
    """A loop that never answers: the asker gives up with the usual message and the request is withdrawn."""
    inbox = Inbox(lambda: None, lambda: True, timeout=0.2)
    with pytest.raises(CommitterError) as raised:
        inbox.ask(PullNow())
    assert raised.value.message == TOO_LATE
    assert inbox.take() is None


def test_typed_requests_travel_as_the_json_the_mailbox_always_carried() -> None:
    """The file format between processes is unchanged, and parses back to the same typed request."""
    cases: list[tuple[Any, dict[str, Any]]] = [
        (Restore("notes/a.md", "abc", True), {"op": "restore", "args": {"path": "notes/a.md", "rev": "abc",
                                                                         "dry_run": True}}),
        (Snapshot("m", None), {"op": "snapshot", "args": {"message": "m", "tag": None}}),
        (ConfirmDeletes(), {"op": "confirm-deletes", "args": {}}),
        (PullNow(), {"op": "pull", "args": {}}),
        (PushNow(), {"op": "push", "args": {}}),
    ]
    for request, wire in cases:
        assert as_json(request) == wire
        assert REQUESTS.parse(json.loads(json.dumps(wire)), remote=True) == request
    assert REQUESTS.parse({"op": "restore", "args": {"path": "p", "rev": "r"}}) == Restore("p", "r", False)
    with pytest.raises(CommitterError, match="do not fit"):
        REQUESTS.parse({"op": "restore", "args": {"path": "p"}})


def test_answers_travel_as_the_json_the_cli_always_read() -> None:
    done = Answer.committed({"sha": "abc", "deleted": 2})
    assert done.push == NOW and done.to_json() == {"ok": True, "sha": "abc", "deleted": 2}
    assert Answer.committed({"sha": None}).push == SOON
    failed = Answer.failed("no such revision", 2)
    assert failed.to_json() == {"error": "no such revision", "exit_code": 2}
    assert Answer.from_json(failed.to_json()).error == "no such revision"
    assert Answer.from_json({"ok": True, "tag": "t"}).payload == {"tag": "t"}


def test_an_operation_is_registered_once(echo: None) -> None:
    with pytest.raises(ValueError, match="twice"):
        REQUESTS.register(Echo, _echo)


def _http(port: int, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.mark.integration
def test_a_page_restore_is_served_by_the_running_daemon_through_the_inbox(
    layout: Layout, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """The history page's restore preview and restore reach the daemon's main loop in process: answered,
    committed, logged as a request, and nothing written to the mailbox the CLI uses."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    (layout.data / "a.md").write_text("one\n")
    daemon = start_daemon("--http", f"127.0.0.1:{port}")
    wait_for(lambda: show(layout.git_dir, "a.md") == b"one\n", what="the first version committed")
    first = git(layout.git_dir, "rev-parse", "HEAD").strip()
    (layout.data / "a.md").write_text("two\n")
    wait_for(lambda: show(layout.git_dir, "a.md") == b"two\n", what="the second version committed")
    status, _, preview = _http(port, "GET", f"/restore?path=a.md&rev={first}",
                               headers={"Sec-Fetch-Site": "same-origin"})
    assert status == 200 and "a.md" in preview
    found = re.search(r'name="csrf" value="([^"]+)"', preview)
    assert found is not None
    form = urllib.parse.urlencode({"path": "a.md", "rev": first, "csrf": found.group(1)}).encode()
    status, headers, _ = _http(port, "POST", "/restore", form,
                               {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{port}"})
    assert status == 303 and headers["location"].startswith("/commit/")
    sha = headers["location"].split("/")[2].split("?")[0]
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == sha
    assert (layout.data / "a.md").read_text() == "one\n"
    asked = daemon.events("request")
    assert [e["op"] for e in asked] == ["restore", "restore"] and all(e.get("id") for e in asked)
    assert not (state_dir(layout.git_dir) / "requests").exists(), "the pages never use the file mailbox"
