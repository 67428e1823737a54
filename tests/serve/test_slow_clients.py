"""The HTTP side stays up for what matters: a commit page with long lines answers in seconds, abandoned
and slow pages hold no thread that /healthz, /metrics or the webhook need, their git processes are killed
when their client goes away or their deadline passes, and 200 connections dribbling their headers get
closed while health checks and signed webhooks are answered. Real sockets, real git, real processes."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from committer.commit.committer import Committer
from committer.serve import app, diffs
from committer.serve.access import Access
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages
from committer.serve.protocol import HEADER_SECONDS
from committer.serve.webhook import WebhookReceiver, signature
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, finishes, wait_for
from tests.serve.test_pages import fetch, perform

SECRET = "a webhook secret for the slow-client tests"


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def repeated(length: int, separator: str, number: int) -> str:
    """`a, a, a, ...` (or with another separator): the repeated tokens that made difflib take 10 s on a
    1,000-character pair and a minute on 2,000 (measured with the former word diff)."""
    return (f"{number} " + f"a{separator} " * length)[:length]


def test_a_commit_of_4000_character_repeated_word_lines_and_a_rewritten_csv_row_answers_in_seconds(
        layout: Layout) -> None:
    """The worst lines the old word diff met (over 120 s for one pair) render on the commit page in seconds,
    with the unchanged start and end of a line still shown unmarked."""
    pipeline = make_pipeline(layout)
    floats = random.Random(7)
    row = lambda: ",".join(f"{floats.random() * 1000:.6f}" for _ in range(500))  # noqa: E731
    # 1,990 characters: a pair the former word diff took on (a minute each); 4,000: the length.
    sizes = [1990] * 10 + [4000] * 10
    write(layout, "long.md", "\n".join(repeated(n, ",", i) for i, n in enumerate(sizes)) + "\n")
    write(layout, "table.csv", "head\n" + row() + "\n")
    pipeline.commit([""])
    write(layout, "long.md", "\n".join(repeated(n, ";", i) for i, n in enumerate(sizes)) + "\n")
    write(layout, "table.csv", "head\n" + row() + "\n")
    sha = pipeline.commit(["long.md", "table.csv"]).sha
    pages = Pages(pipeline.repo, Access("open"), dict, perform(pipeline))
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages)
    server.start()
    try:
        for view in ("", "?view=split"):
            answer, seconds = timed(fetch, server.port, f"/commit/{sha}{view}")
            assert answer.status == 200, answer.text[:300]
            assert answer.text.count('class="add"') >= 20 and "table.csv" in answer.text
            print(f"commit page{view or ''}: {seconds:.2f}s")  # measured: see the report
            assert seconds < 10
    finally:
        server.stop()


def test_the_word_diff_of_one_long_pair_is_bounded_and_keeps_the_common_ends() -> None:
    """4,000 characters of repeated tokens: milliseconds, not minutes; the common start and end unmarked."""
    old = repeated(3960, ",", 1)
    new = repeated(3960, ";", 1)
    (left, right), seconds = timed(diffs.words, "same start " + old + " same end", "same start " + new + " same end")
    print(f"4,000-character pair: {seconds * 1000:.1f} ms")
    assert seconds < 2
    assert left[0].text.startswith("same start ") and not left[0].changed
    assert right[-1].text.endswith(" same end") and not right[-1].changed
    assert "".join(s.text for s in right) == "same start " + new + " same end"
    _small_left, small_right = diffs.words("the cat sat", "the dog sat")
    assert [s for s in small_right if s.changed] == [diffs.Segment("dog", True)]


# -- slow pages ---------------------------------------------------------------------------------


@dataclass
class SlowSite:
    server: HttpServer
    pages: Pages
    pipeline: Committer
    slow: threading.Event
    marker: str  # the argument of the `sleep` a slow page's git alias runs: how its processes are found

    @property
    def port(self) -> int:
        return self.server.port

    def sleepers(self) -> int:
        return len(self.pids())

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-f", f"^sleep {self.marker}"], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]


@pytest.fixture
def slow_site(layout: Layout) -> Iterator[SlowSite]:
    """Pages whose work waits on a slow git process (a git alias running `sleep`) while `slow` is set:
    the page's thread started it, as it starts every git it reads history with."""
    pipeline = make_pipeline(layout)
    write(layout, "a.md", "hello\n")
    pipeline.commit([""])
    slow = threading.Event()
    marker = f"{random.randint(40, 59)}.{random.randint(100, 999)}"  # unique, and ends within a minute anyway
    repo = pipeline.repo

    def status() -> dict[str, Any]:
        if slow.is_set():
            repo.git("-c", f"alias.slowly=!sleep {marker}", "slowly", check=False)
        return {}

    pages = Pages(repo, Access("open"), status, perform(pipeline))
    receiver = WebhookReceiver("main", lambda: SECRET, lambda _head: None, lambda _head: None)

    def webhook(headers: Any, body: bytes) -> tuple[int, Any]:
        reply = receiver.handle(headers, body)
        return reply.status, reply.body

    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        webhook=webhook, pages=pages)
    server.start()
    site = SlowSite(server, pages, pipeline, slow, marker)
    yield site
    slow.clear()
    server.stop()
    for pid in site.pids():  # only this test's own sleeps, if a failed assertion left any
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def signed_push(port: int, delivery: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"ref": "refs/heads/other", "after": "a" * 40}).encode()
    head = (f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-GitHub-Event: push\r\nX-GitHub-Delivery: {delivery}\r\n"
            f"X-Hub-Signature-256: {signature(SECRET, body)}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}")


def open_page(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


def test_forty_abandoned_slow_pages_leave_health_metrics_and_the_webhook_answering(slow_site: SlowSite) -> None:
    """40 requests for a slow page, then their clients go away: /healthz, /readyz, /metrics and a signed
    webhook answer meanwhile; the pages' git processes are killed once their clients are gone; pages work
    again at once."""
    site = slow_site
    site.slow.set()
    clients = [open_page(site.port, "/commit/main") for _ in range(40)]
    workers = site.pages.pool.workers
    wait_for(lambda: site.sleepers() >= workers, timeout=15, what="the page workers to be busy")
    timings = {}
    for path in ("/healthz", "/readyz", "/metrics"):
        answer, timings[path] = timed(fetch, site.port, path)
        assert answer.status == 200, (path, answer.status)
    (status, body), timings["/webhook"] = timed(signed_push, site.port, "slow-1")
    assert status == 200 and body["action"] == "ignored"
    print("while 40 slow pages were pending:", {k: f"{v * 1000:.0f} ms" for k, v in timings.items()})
    assert all(seconds < 5 for seconds in timings.values()), timings
    assert site.sleepers() <= workers  # the pool is bounded: the other 36 wait, they do not run
    for sock in clients:
        sock.close()
    wait_for(lambda: site.sleepers() == 0, timeout=10, what="the abandoned pages' git processes to be killed")
    site.slow.clear()
    answer, seconds = timed(fetch, site.port, "/")
    assert answer.status == 200 and seconds < 5


def test_a_page_past_its_deadline_is_stopped_and_answers_503(slow_site: SlowSite) -> None:
    """A client that waits gets a clear 503 at the page deadline, and the page's git is killed then."""
    site = slow_site
    site.pages.pool.seconds = 2.0
    site.slow.set()
    answer, seconds = timed(fetch, site.port, "/commit/main")
    assert answer.status == 503 and "took too long" in answer.text
    assert 1.5 < seconds < 10
    wait_for(lambda: site.sleepers() == 0, timeout=10, what="the page's git process to be killed")


# -- slow headers --------------------------------------------------------------------------------


def test_two_hundred_connections_dribbling_headers_are_closed_and_health_and_webhooks_still_answer(
        slow_site: SlowSite) -> None:
    """200 real sockets send a header byte a second: /healthz and a signed webhook are answered meanwhile,
    and every slow connection is closed by the server soon after the header deadline."""
    site = slow_site
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\nX-Slow: " + "x" * 100
    socks = []
    for _ in range(200):
        sock = socket.create_connection(("127.0.0.1", site.port), timeout=10)
        sock.setblocking(False)
        socks.append(sock)
    opened = time.monotonic()
    closed: set[int] = set()
    stop = threading.Event()

    def dribble() -> None:
        position = 0
        while not stop.is_set() and len(closed) < len(socks):
            for number, sock in enumerate(socks):
                if number in closed:
                    continue
                try:
                    if sock.recv(4096) == b"":
                        closed.add(number)
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed.add(number)
                    continue
                try:
                    sock.send(request[position % len(request)].encode())
                except OSError:
                    closed.add(number)
            position += 1
            stop.wait(1.0)

    thread = threading.Thread(target=dribble)
    thread.start()
    try:
        wait_for(lambda: time.monotonic() - opened > 1.5, timeout=5, what="the dribble to start")
        answer, health_seconds = timed(fetch, site.port, "/healthz")
        (status, _body), hook_seconds = timed(signed_push, site.port, "dribble-1")
        still_open = len(socks) - len(closed)
        print(f"with {still_open} dribbling connections: /healthz {health_seconds * 1000:.0f} ms, "
              f"signed webhook {hook_seconds * 1000:.0f} ms")
        assert answer.status == 200 and status == 200
        assert still_open > 150  # measured while they were still dribbling
        wait_for(lambda: len(closed) == len(socks), timeout=HEADER_SECONDS + 15,
                 what="the server to close every connection whose head is late")
        print(f"all 200 closed {time.monotonic() - opened:.1f}s after they opened")
    finally:
        stop.set()
        thread.join()
        for sock in socks:
            sock.close()


def test_a_keep_alive_connection_gets_a_new_head_deadline_after_each_answer(slow_site: SlowSite) -> None:
    """After a first answer on a kept-alive connection, a second request whose head stops half-way is
    closed at the head deadline too (uvicorn's keep-alive timer stops at the first byte)."""
    site = slow_site
    with socket.create_connection(("127.0.0.1", site.port), timeout=HEADER_SECONDS + 10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        head, _, body = first.partition(b"\r\n\r\n")
        lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
        length = int(lengths[0])
        while len(body) < length:
            body += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and nothing more
        started = time.monotonic()
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
        assert rest == b"" and time.monotonic() - started < HEADER_SECONDS + 5


@pytest.fixture
def long_graceful_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server made after this gives open requests ten minutes at a stop (not 5 s): a stop that waited for
    a page would be unmistakable."""
    monkeypatch.setattr(app, "STOP_SECONDS", 600.0)


def test_stopping_the_server_ends_pages_being_computed_at_once(long_graceful_stop: None, slow_site: SlowSite) -> None:
    """A stop while a slow page is computed (its git running for a minute) returns in seconds, and the
    page's git process is gone: shutdown never waits for a page."""
    site = slow_site
    site.pages.pool.seconds = 600.0  # nor is the page cut by its own deadline meanwhile
    site.slow.set()
    client = open_page(site.port, "/commit/main")
    try:
        wait_for(lambda: site.sleepers() >= 1, timeout=15, what="the page's git to run")
        # Not the ten minutes, nor the page's git (40 to 60 s): far above the 0.1 s it takes.
        _, seconds = timed(finishes, site.server.stop, 30, "the server's stop")
        print(f"stop with a slow page running: {seconds:.2f}s")
        wait_for(lambda: site.sleepers() == 0, timeout=5, what="the page's git process to be killed")
    finally:
        client.close()
