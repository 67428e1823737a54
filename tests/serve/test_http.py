"""The HTTP endpoints with real requests, and the metrics parsed back with prometheus-client's parser."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from committer import __version__
from committer.core.errors import CommitterError
from committer.serve.app import HttpServer
from committer.serve.metrics import BUCKETS, Metrics

# Straight to the server: an http_proxy in the environment must not intercept 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(port: int, path: str, method: str = "GET") -> tuple[int, Message, bytes]:
    """Status, headers and body of one real request; error statuses are returned, not raised."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with _OPENER.open(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Daemon:
    """What the daemon hands the server: a health report and a readiness flag, changeable by the test."""

    def __init__(self) -> None:
        self.report: dict[str, Any] = {"healthy": True, "watcher": "alive", "last_commit_at": None}
        self.is_ready = False
        self.fail: Exception | None = None

    def health(self) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        return self.report

    def ready(self) -> bool:
        return self.is_ready


@pytest.fixture
def daemon() -> Daemon:
    return Daemon()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(clock=Clock(1_000_000.0))


@pytest.fixture
def server(daemon: Daemon, metrics: Metrics) -> Iterator[HttpServer]:
    srv = HttpServer(("127.0.0.1", 0), metrics, daemon.health, daemon.ready)
    srv.start()
    yield srv
    srv.stop()


def samples(metrics_text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition as (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_healthz_follows_the_health_report(server: HttpServer, daemon: Daemon) -> None:
    """/healthz is 200 with the report while healthy and 503 with the same body when not."""
    status, headers, body = request(server.port, "/healthz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body.startswith(b"{") and b'"watcher": "alive"' in body and b'"healthy": true' in body

    daemon.report = {"healthy": False, "watcher": "dead", "last_commit_at": "2024-01-01T00:00:00Z"}
    status, _, body = request(server.port, "/healthz")
    assert status == 503
    assert b'"healthy": false' in body and b'"watcher": "dead"' in body

    daemon.report = {"watcher": "alive"}  # no explicit healthy: true is not healthy
    assert request(server.port, "/healthz")[0] == 503


def test_readyz_turns_200_once_ready(server: HttpServer, daemon: Daemon) -> None:
    """/readyz is 503 until the daemon says it is ready (repository open, first reconcile done), then 200."""
    status, _, body = request(server.port, "/readyz")
    assert (status, body) == (503, b'{"ready": false}\n')
    daemon.is_ready = True
    status, _, body = request(server.port, "/readyz")
    assert (status, body) == (200, b'{"ready": true}\n')


def test_unknown_paths_are_404_and_other_methods_405(server: HttpServer) -> None:
    """Unknown paths (and /webhook without a remote) are 404; POST on a known path is 405 naming GET and HEAD."""
    assert request(server.port, "/")[0] == 404
    assert request(server.port, "/metrics/extra")[0] == 404
    assert request(server.port, "/webhook", method="POST")[0] == 404
    status, headers, _ = request(server.port, "/healthz", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert request(server.port, "/metrics", method="DELETE")[0] == 405
    status, headers, body = request(server.port, "/healthz?verbose=1", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_a_failing_callable_is_a_500_and_the_server_keeps_serving(server: HttpServer, daemon: Daemon) -> None:
    """An exception in a handler becomes a 500 and is logged; the next requests are answered as usual."""
    daemon.fail = RuntimeError("boom")
    with capture_logs() as logs:
        status, _, body = request(server.port, "/healthz")
    assert status == 500 and b"internal error" in body and b"boom" not in body
    assert any(e["event"] == "http_handler_failed" and e["log_level"] == "error" for e in logs)
    assert request(server.port, "/metrics")[0] == 200
    daemon.fail = None
    assert request(server.port, "/healthz")[0] == 200


def test_requests_are_not_logged_to_stderr(server: HttpServer, capfd: pytest.CaptureFixture[str]) -> None:
    """http.server's access lines go to the structured log at debug level, not to stderr."""
    with capture_logs() as logs:
        request(server.port, "/healthz")
        request(server.port, "/nope")
    assert "GET /healthz" not in capfd.readouterr().err
    lines = [e["line"] for e in logs if e["event"] == "http_request"]
    assert any("GET /nope" in line and "404" in line for line in lines)
    assert all(e["log_level"] == "debug" for e in logs if e["event"] == "http_request")


def test_metrics_endpoint_serves_the_registry(server: HttpServer, metrics: Metrics) -> None:
    """/metrics answers in the Prometheus text format with what the Metrics object counted."""
    metrics.commit("reconcile", files=12, seconds=0.3)
    status, headers, body = request(server.port, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == metrics.content_type and metrics.content_type.startswith(
        "text/plain; version="
    )
    found = samples(body.decode())
    assert value(found, "committer_commits_total", op="reconcile") == 1
    assert value(found, "committer_files_committed_total", op="reconcile") == 12


def test_every_metric_method_shows_up_with_its_labels_and_values() -> None:
    """Each Metrics method feeds the metric it names, with the right labels, values and histogram counts."""
    clock = Clock(1_700_000_000.0)
    m = Metrics(clock=clock)
    m.commit(None, files=3, seconds=0.004)  # a watcher batch
    m.commit(None, files=2, seconds=0.02)
    m.commit("reconcile", files=100, seconds=4.0)
    m.commit("confirm-deletes", files=7, seconds=0.01)
    m.push_ok(seconds=0.8)
    m.push_failed("auth", seconds=0.2)
    m.push_failed("transient", seconds=70.0)  # beyond the last bucket: only +Inf
    m.push_failed("transient", seconds=1.5)
    m.set_pending(4, oldest_at=clock.now - 90)
    m.set_holds(deletions=250, files=2)
    m.watcher_restarted()
    m.watcher_restarted()
    m.event("git_commit")
    m.event("git_commit")
    m.event("git_conflict")
    m.delivery("failed")
    m.delivery("ok")
    m.delivery("dropped", 3)
    m.set_outbox(12)
    found = samples(m.render().decode())

    assert value(found, "committer_commits_total", op="batch") == 2
    assert value(found, "committer_commits_total", op="reconcile") == 1
    assert value(found, "committer_commits_total", op="confirm-deletes") == 1
    assert value(found, "committer_files_committed_total", op="batch") == 5
    assert value(found, "committer_files_committed_total", op="reconcile") == 100
    assert value(found, "committer_commit_duration_seconds_count", op="batch") == 2
    assert value(found, "committer_commit_duration_seconds_sum", op="batch") == pytest.approx(0.024)
    assert value(found, "committer_commit_duration_seconds_bucket", op="batch", le="0.005") == 1
    assert value(found, "committer_commit_duration_seconds_bucket", op="batch", le="0.025") == 2
    assert value(found, "committer_commit_duration_seconds_bucket", op="reconcile", le="2.5") == 0
    assert value(found, "committer_commit_duration_seconds_bucket", op="reconcile", le="5.0") == 1

    assert value(found, "committer_pushes_total", result="ok", kind="none") == 1
    assert value(found, "committer_pushes_total", result="failed", kind="auth") == 1
    assert value(found, "committer_pushes_total", result="failed", kind="transient") == 2
    assert value(found, "committer_push_duration_seconds_count", result="ok") == 1
    assert value(found, "committer_push_duration_seconds_count", result="failed") == 3
    assert value(found, "committer_push_duration_seconds_bucket", result="failed", le="60.0") == 2
    assert value(found, "committer_push_duration_seconds_bucket", result="failed", le="+Inf") == 3
    assert value(found, "committer_last_push_success_timestamp_seconds") == clock.now

    assert value(found, "committer_pending_commits") == 4
    assert value(found, "committer_oldest_pending_commit_age_seconds") == 90
    assert value(found, "committer_held_deletions") == 250
    assert value(found, "committer_held_files") == 2
    assert value(found, "committer_watcher_restarts_total") == 2
    assert value(found, "committer_events_total", event="git_commit") == 2
    assert value(found, "committer_events_total", event="git_conflict") == 1
    assert value(found, "committer_notify_deliveries_total", result="ok") == 1
    assert value(found, "committer_notify_deliveries_total", result="failed") == 1
    assert value(found, "committer_notify_deliveries_total", result="dropped") == 3
    assert value(found, "committer_notify_outbox") == 12
    build = dict(next(labels for name, labels in found if name == "committer_build_info"))
    assert build["version"] == __version__ and build["python"].count(".") == 2

    m.set_last_push(1_600_000_000.0)  # seeded from the state file at start-up
    assert value(samples(m.render().decode()), "committer_last_push_success_timestamp_seconds") == 1.6e9


def test_series_exist_before_the_first_event() -> None:
    """Batch commits and ok pushes are exported at 0 from the start, so rate() and ratios work at once."""
    found = samples(Metrics(process=False).render().decode())
    assert value(found, "committer_commits_total", op="batch") == 0
    assert value(found, "committer_pushes_total", result="ok", kind="none") == 0
    assert value(found, "committer_last_push_success_timestamp_seconds") == 0
    assert value(found, "committer_oldest_pending_commit_age_seconds") == 0
    assert not any(name.startswith("process_") for name, _ in found)


def test_oldest_pending_age_grows_between_scrapes_and_clears_when_pushed() -> None:
    """The age of the oldest unpushed commit is computed at scrape time from the stored timestamp."""
    clock = Clock(5_000.0)
    m = Metrics(clock=clock, process=False)

    def age() -> float:
        return value(samples(m.render().decode()), "committer_oldest_pending_commit_age_seconds")

    m.set_pending(1, oldest_at=4_990.0)
    assert age() == 10
    clock.now += 60
    assert age() == 70
    clock.now += 830
    assert age() == 900
    m.set_pending(0, oldest_at=None)
    assert age() == 0
    m.set_pending(0, oldest_at=4_000.0)  # nothing pending means no age, whatever the timestamp
    assert age() == 0
    m.set_pending(2, oldest_at=clock.now + 5)  # a commit stamped ahead of our clock is not negative
    assert age() == 0


def test_two_instances_do_not_share_state() -> None:
    """Each Metrics owns its registry: counting in one leaves the other untouched, and both can exist."""
    a, b = Metrics(process=False), Metrics(process=False)
    a.commit(None, files=1, seconds=0.01)
    a.set_pending(3, oldest_at=0.0)
    a.watcher_restarted()
    found = samples(b.render().decode())
    assert value(found, "committer_commits_total", op="batch") == 0
    assert value(found, "committer_pending_commits") == 0
    assert value(found, "committer_watcher_restarts_total") == 0
    assert value(samples(a.render().decode()), "committer_commits_total", op="batch") == 1


def test_histogram_buckets_span_a_millisecond_to_a_minute() -> None:
    """Commit and push durations are bucketed from 1 ms to 60 s."""
    assert BUCKETS[0] == 0.001 and BUCKETS[-1] == 60.0 and list(BUCKETS) == sorted(BUCKETS)


def test_an_address_in_use_is_one_clear_error(metrics: Metrics, daemon: Daemon) -> None:
    """Starting on a port another socket listens on raises CommitterError naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = HttpServer(("127.0.0.1", port), metrics, daemon.health, daemon.ready)
        with pytest.raises(CommitterError) as info:
            srv.start()
    assert str(info.value) == f"http: cannot listen on 127.0.0.1:{port}: Address already in use"
    srv.stop()  # nothing started: a no-op


def test_stop_closes_the_port(metrics: Metrics, daemon: Daemon) -> None:
    """After stop() the port refuses connections, and a second stop() is harmless."""
    srv = HttpServer(("127.0.0.1", 0), metrics, daemon.health, daemon.ready)
    srv.start()
    port = srv.port
    assert port != 0 and request(port, "/readyz")[0] == 503
    srv.stop()
    srv.stop()
    with pytest.raises(urllib.error.URLError):
        request(port, "/readyz")


# -- POST /webhook: the transport checks before the webhook logic sees anything ---------------------


@pytest.fixture
def hooked(daemon: Daemon, metrics: Metrics) -> Iterator[tuple[HttpServer, list[bytes]]]:
    seen: list[bytes] = []

    def webhook(_headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        seen.append(body)
        return 202, {"action": "pull_queued"}

    srv = HttpServer(("127.0.0.1", 0), metrics, daemon.health, daemon.ready, webhook=webhook)
    srv.start()
    yield srv, seen
    srv.stop()


def raw(port: int, head: str, body: bytes = b"") -> bytes:
    """One raw HTTP exchange (for headers no well-behaved client sends)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode("utf-8") + b"\r\n\r\n" + body)
        return conn.recv(65536)


SIGNED = "X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=00"


def test_webhook_transport_checks(hooked: tuple[HttpServer, list[bytes]]) -> None:
    server, seen = hooked
    port = server.port
    # uvicorn answers HTTP/1.1 (http.server answered HTTP/1.0): the status codes are what the checks are about.
    assert raw(port, f"POST /webhook HTTP/1.1\r\nHost: x\r\n{SIGNED}\r\nContent-Length: 2", b"{}").startswith(
        b"HTTP/1.1 202")
    assert seen == [b"{}"]
    # Unsigned: refused before the body is read, whatever its announced size.
    assert raw(port, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 999999").startswith(b"HTTP/1.1 401")
    assert raw(port, f"POST /webhook HTTP/1.1\r\nHost: x\r\n{SIGNED}").startswith(b"HTTP/1.1 411")
    # A Content-Length that is not digits is refused by the HTTP parser (h11) before the app sees it.
    assert raw(port, f"POST /webhook HTTP/1.1\r\nHost: x\r\n{SIGNED}\r\nContent-Length: \u00b2").startswith(
        b"HTTP/1.1 400")
    assert raw(port, f"POST /webhook HTTP/1.1\r\nHost: x\r\n{SIGNED}\r\nContent-Length: 99999999999").startswith(
        b"HTTP/1.1 413")
    assert len(seen) == 1
    assert request(port, "/webhook")[0] == 405  # GET
    assert request(port, "/healthz")[0] == 200  # and the server is still there


def test_a_slow_webhook_body_is_a_408_and_blocks_nothing(
    hooked: tuple[HttpServer, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery whose body does not arrive in time is answered 408; other requests are served meanwhile."""
    from committer.serve import app

    monkeypatch.setattr(app, "BODY_SECONDS", 0.5)
    server, seen = hooked
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(f"POST /webhook HTTP/1.1\r\nHost: x\r\n{SIGNED}\r\nContent-Length: 10\r\n\r\n{{".encode())
        assert request(server.port, "/healthz")[0] == 200
        assert conn.recv(65536).startswith(b"HTTP/1.1 408")
    assert seen == []


def test_every_response_carries_the_security_headers(server: HttpServer) -> None:
    """A strict Content-Security-Policy and nosniff on every answer, errors included."""
    for path in ("/healthz", "/metrics", "/nope"):
        _, headers, _ = request(server.port, path)
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Server"] == f"committer/{__version__}"
