"""The fleet's HTTP side on a real uvicorn (127.0.0.1, any free port) over a SQLite store: a real committer
daemon reporting its commits and pushes to /events, signed deliveries refused and applied once, /metrics as
Prometheus parses it, the overview page's filters, pages and escaping, and /healthz."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from committer.core import events
from committer.core.secret import signature
from committer.fleet import schema
from committer.fleet.config import FleetConfig
from committer.fleet.db import GitRepository, engine, now
from committer.fleet.store import NewRepository, Store
from committer.fleet.web import MAX_EVENT_BODY, serve_http
from tests.conftest import DaemonProcess, Layout, commit_count, finishes, git, wait_for

SECRET = "the secret acme/notes signs its events with"
FLEET_SECRET = "one secret for every other repository"


@dataclass
class Fleet:
    store: Store
    base: str
    credentials: Path

    def repo(self, org: str, name: str) -> GitRepository:
        return self.store.find(org, name)

    def add(self, org: str, name: str, status: str = "active", error: str = "") -> GitRepository:
        slugs = {o.slug: o.id for o in self.store.organisations()}
        org_id = slugs[org] if org in slugs else self.store.create_organisation(org).id
        repo = self.store.create_repository(NewRepository(name=name, organisation_id=org_id))
        self.store.set_status(repo.id, status, error)
        return self.store.repository(repo.id)


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    sent = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def deliver(fleet: Fleet, org: str, name: str, event: dict[str, Any], secret: str | None = SECRET,
            sign: str | None = None) -> int:
    """POST one event the way committer's HttpReceiver does (compact JSON, signed), its HTTP status."""
    body = events.body(event)
    headers = {"Content-Type": "application/json", "X-Committer-Event": str(event.get("event")),
               "X-Committer-Delivery": str(event.get("id"))}
    if sign is not None or secret is not None:
        headers["X-Committer-Signature-256"] = sign if sign is not None else signature(str(secret), body)
    return request(f"{fleet.base}/events/{org}/{name}", body, headers)[0]


def commit_event(sha: str = "a" * 40, commits: int = 1) -> dict[str, Any]:
    return events.make(events.GIT_COMMIT, batch="b1", sha=sha, old=None, op="batch", commits=commits,
                       paths={"added": ["x.md"]}, counts={"added": 1}, truncated=False)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    db = engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    schema.upgrade(db)
    store = Store(db, tmp_path / "repos")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "events.acme.notes").write_text(SECRET + "\n")
    config = FleetConfig(repos_dir=tmp_path / "repos", http="127.0.0.1:0", credentials_dir=credentials)
    server = serve_http(config, store)
    try:
        yield Fleet(store, f"http://127.0.0.1:{server.port}", credentials)
    finally:
        server.stop()
        db.dispose()


# -- /events ----------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_committer_daemon_keeps_its_row_current(
        fleet: Fleet, layout: Layout, start_daemon: Callable[..., DaemonProcess], mirror: Path) -> None:
    fleet.add("acme", "notes")
    env = {**layout.env, "COMMITTER_NOTIFY_URL": f"{fleet.base}/events/acme/notes",
           "COMMITTER_NOTIFY_SECRET": SECRET, "COMMITTER_PUSH_INTERVAL": "200ms"}
    daemon = start_daemon("--remote", f"file://{mirror}", env=env)
    (layout.data / "todo.md").write_text("- call Sam\n")

    def reported() -> GitRepository | None:
        repo = fleet.repo("acme", "notes")
        head = git(layout.git_dir, "rev-parse", "--verify", "-q", "HEAD", check=False).strip()
        return repo if head and repo.last_commit_hash == head and repo.last_pushed_at is not None else None

    repo = wait_for(reported, timeout=20, what="the daemon's head and push on the fleet's row")
    assert repo.total_commits == commit_count(layout.git_dir) and repo.push_failures == 0
    assert repo.last_event in ("git_commit", "git_push") and repo.last_event_at is not None
    assert daemon.events("notify_rejected") == []
    assert daemon.stop() == 0


def test_a_delivery_made_again_is_counted_once(fleet: Fleet) -> None:
    fleet.add("acme", "notes")
    first, second = commit_event("1" * 40, commits=2), commit_event("2" * 40)
    assert deliver(fleet, "acme", "notes", first) == 204
    assert deliver(fleet, "acme", "notes", first) == 204  # the answer was lost: delivered again, same id
    assert deliver(fleet, "acme", "notes", second) == 204
    assert deliver(fleet, "acme", "notes", first) == 204  # an old one replayed later
    repo = fleet.repo("acme", "notes")
    assert (repo.total_commits, repo.last_commit_hash) == (3, "2" * 40)


def test_the_same_event_delivered_many_times_at_once_counts_once(fleet: Fleet) -> None:
    fleet.add("acme", "notes")
    event = commit_event("4" * 40, commits=5)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: deliver(fleet, "acme", "notes", event), range(8)))
    assert statuses == [204] * 8
    assert fleet.repo("acme", "notes").total_commits == 5


def test_a_client_that_never_sends_its_body_does_not_hold_up_deliveries(fleet: Fleet) -> None:
    fleet.add("acme", "notes")
    port = int(fleet.base.rsplit(":", 1)[1])
    slow = []
    for _ in range(6):  # more than the threads events are recorded on
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /events/acme/notes HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                     b"X-Committer-Signature-256: sha256=00\r\n\r\n{")
        slow.append(sock)
    try:
        assert finishes(lambda: deliver(fleet, "acme", "notes", commit_event()), 10, "a delivery") == 204
        assert finishes(lambda: request(f"{fleet.base}/healthz")[0], 10, "a health check") == 200
    finally:
        for sock in slow:
            sock.close()


def test_pushes_holds_and_failures_are_counted(fleet: Fleet) -> None:
    fleet.add("acme", "notes")

    def send(name: str, **fields: Any) -> None:
        assert deliver(fleet, "acme", "notes", events.make(name, **fields)) == 204

    send(events.HOLD, action=events.SET, reason="max_delete", count=12, paths=[], truncated=False)
    send(events.HOLD, action=events.SET, reason="secret", count=1, paths=["key.pem"], truncated=False)
    send(events.PUSH_FAILED, remote="origin", kind="auth", message="refused", permanent=True, old=None, new=None,
         commits=1, consecutive_failures=2)
    repo = fleet.repo("acme", "notes")
    assert (repo.holds, repo.push_failures, repo.last_pushed_at, repo.last_event) == (13, 2, None, "push_failed")
    send(events.HOLD, action=events.RELEASED, reason="max_delete", count=12, paths=[], truncated=False)
    send(events.GIT_PUSH, remote="origin", old=None, new="3" * 40, commits=1, tags=0, batches=[], truncated=False)
    repo = fleet.repo("acme", "notes")
    assert (repo.holds, repo.push_failures, repo.last_event) == (1, 0, "git_push")
    assert repo.last_pushed_at is not None and abs(repo.last_pushed_at - now()) < timedelta(minutes=5)


def test_deliveries_that_are_not_signed_right_are_refused(fleet: Fleet) -> None:
    fleet.add("acme", "notes")
    fleet.add("acme", "wiki")
    event = commit_event()
    assert deliver(fleet, "acme", "notes", event, secret="not the secret") == 401
    assert deliver(fleet, "acme", "notes", event, secret=None) == 401
    assert deliver(fleet, "acme", "notes", event, sign="sha256=") == 401
    assert deliver(fleet, "acme", "wiki", event) == 403  # no secret for it, and none for the fleet
    (fleet.credentials / "events").write_text(FLEET_SECRET)
    assert deliver(fleet, "acme", "wiki", event, secret=SECRET) == 401  # notes' secret is not wiki's
    assert deliver(fleet, "acme", "ghost", event, secret=FLEET_SECRET) == 404
    assert deliver(fleet, "nobody", "notes", event, secret=FLEET_SECRET) == 404
    assert deliver(fleet, "acme", "..", event, secret=FLEET_SECRET) == 404
    assert fleet.repo("acme", "notes").total_commits == 0
    assert deliver(fleet, "acme", "wiki", event, secret=FLEET_SECRET) == 204
    assert fleet.repo("acme", "wiki").total_commits == 1


def test_bodies_too_large_or_not_events_are_refused(fleet: Fleet) -> None:
    fleet.add("acme", "notes")
    port = int(fleet.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # refused before a byte is read
        sock.sendall(f"POST /events/acme/notes HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_EVENT_BODY + 1}\r\n"
                     f"X-Committer-Signature-256: sha256=00\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 413")
    url = f"{fleet.base}/events/acme/notes"
    for body in (b"{not json", b"[1, 2]", b'{"event": "git_commit"}', events.body({**commit_event(), "sha": 7})):
        headers = {"X-Committer-Signature-256": signature(SECRET, body), "Content-Type": "application/json"}
        assert request(url, body, headers)[0] == 400, body
    assert fleet.repo("acme", "notes").last_event == ""


# -- /metrics and /healthz --------------------------------------------------------------------------


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_repositories_tasks_and_their_durations(fleet: Fleet) -> None:
    repos = [fleet.add("acme", f"r{i}", status) for i, status in enumerate(("active", "active", "failed"))]
    started = now() - timedelta(minutes=5)
    for seconds, status in ((2.0, "succeeded"), (40.0, "succeeded"), (3.0, "failed")):
        task = fleet.store.new_task(repos[0].id, "sync")
        fleet.store.update_task(task.task_id, status=status, started_at=started,
                                finished_at=started + timedelta(seconds=seconds))
    fleet.store.new_task(repos[1].id, "migrate")
    retrying = fleet.store.new_task(repos[2].id, "migrate")
    fleet.store.update_task(retrying.task_id, status="retrying")
    status, text = request(f"{fleet.base}/metrics")
    assert status == 200
    found = samples(text)
    assert found[("committer_fleet_repositories", (("status", "active"),))] == 2
    assert found[("committer_fleet_repositories", (("status", "failed"),))] == 1
    assert found[("committer_fleet_repositories", (("status", "archived"),))] == 0
    assert found[("committer_fleet_tasks", (("kind", "sync"), ("status", "succeeded")))] == 2
    assert found[("committer_fleet_tasks", (("kind", "migrate"), ("status", "pending")))] == 1
    assert found[("committer_fleet_queue_depth", ())] == 2
    succeeded = (("kind", "sync"), ("outcome", "succeeded"))
    assert found[("committer_fleet_task_duration_seconds_count", succeeded)] == 2
    assert found[("committer_fleet_task_duration_seconds_sum", succeeded)] == pytest.approx(42.0, abs=0.01)
    assert found[("committer_fleet_task_duration_seconds_bucket", (*succeeded[:1], ("le", "5.0"),
                                                                     *succeeded[1:]))] == 1
    assert found[("committer_fleet_task_duration_seconds_count", (("kind", "sync"), ("outcome", "failed")))] == 1


def test_health_says_whether_the_database_answers(fleet: Fleet, tmp_path: Path) -> None:
    assert request(f"{fleet.base}/healthz") == (200, b'{"status": "ok"}\n')
    gone = Store(engine(f"sqlite:///{tmp_path / 'no such folder' / 'fleet.db'}"), tmp_path)
    server = serve_http(FleetConfig(repos_dir=tmp_path, http="127.0.0.1:0"), gone)
    try:
        status, body = request(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 503 and json.loads(body)["status"] == "down"
        assert request(f"http://127.0.0.1:{server.port}/metrics")[0] == 503
    finally:
        server.stop()


# -- the overview page, as HTML -----------------------------------------------------------------------


def test_the_overview_pages_filters_and_escapes(fleet: Fleet) -> None:
    for i in range(55):
        fleet.add("acme", f"repo-{i:02d}")
    fleet.add("globex", "broken", "failed", "<script>alert(1)</script> clone failed")
    status, page = request(f"{fleet.base}/")
    html = page.decode()
    assert status == 200 and html.count('<tr id="repo-') == 50 and "<script>alert" not in html
    next_link = html.split('id="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    status, page = request(f"{fleet.base}{next_link}")
    assert status == 200 and page.decode().count('<tr id="repo-') == 6
    assert "&lt;script&gt;alert(1)&lt;/script&gt; clone failed" in page.decode()
    status, page = request(f"{fleet.base}/?status=failed")
    assert page.decode().count('<tr id="repo-') == 1 and "globex/broken" in page.decode()
    status, page = request(f"{fleet.base}/?organisation=globex&status=active")
    assert status == 200 and 'id="empty"' in page.decode()
    assert request(f"{fleet.base}/?organisation=nobody")[0] == 404
    assert request(f"{fleet.base}/?status=sleeping")[0] == 400
    status, page = request(f"{fleet.base}/?after=garbage")
    assert status == 400 and page.decode().count('<tr id="repo-') == 50
    assert request(f"{fleet.base}/static/fleet.css")[0] == 200
    assert request(f"{fleet.base}/static/style.css")[0] == 200


def test_a_token_for_events_is_not_served(fleet: Fleet) -> None:
    """GET on the events address is not an event (405), and the secret never shows on any page."""
    fleet.add("acme", "notes")
    assert request(f"{fleet.base}/events/acme/notes")[0] == 405
    for path in ("/", "/metrics", "/healthz"):
        assert SECRET.encode() not in request(f"{fleet.base}{path}")[1]
    assert uuid.UUID(commit_event()["id"])  # the ids committer gives are what the table keeps (36 characters)


def test_an_events_secret_names_one_repository_even_with_dots_in_names(tmp_path: Path) -> None:
    """`events.a.b.c` could be a.b/c or a/b.c: it is read for neither; `events.d/<org>/<name>` is exact, and
    the dotted file still serves a repository whose names hold no dot."""
    from committer.fleet.web import event_secret

    (tmp_path / "events.a.b.c").write_text("ambiguous\n")
    (tmp_path / "events.acme.notes").write_text("plain\n")
    assert event_secret(tmp_path, "a.b", "c") is None and event_secret(tmp_path, "a", "b.c") is None
    (tmp_path / "events.d" / "a.b").mkdir(parents=True)
    (tmp_path / "events.d" / "a.b" / "c").write_text("exact\n")
    assert event_secret(tmp_path, "a.b", "c") == b"exact" and event_secret(tmp_path, "a", "b.c") is None
    assert event_secret(tmp_path, "acme", "notes") == b"plain"
    (tmp_path / "events").write_text("fleet-wide\n")
    assert event_secret(tmp_path, "a", "b.c") == b"fleet-wide"
