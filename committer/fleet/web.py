"""The fleet's HTTP side: committer daemons report their events (`POST /events/{organisation}/{name}`), Prometheus
scrapes `/metrics`, operators read the overview page at `/`, and `/healthz` says whether the database answers.

Who may read `/` and `/metrics`: on a loopback bind, anyone on this machine, under a loopback Host name only (a
DNS-rebound name is refused); on any other bind, a request carrying the API token (`Authorization: Bearer`, or
HTTP Basic with the token as the password, which a browser asks for); without `api_token_file` they are off
there. `/healthz` stays open for probes, `/events` has its own signatures.

It runs on the daemon's own server (serve/app.py: uvicorn on a thread, head deadlines, a connection limit,
the security headers): only the app differs. Every database call runs on a small pool of threads of its
own kind (events, pages, probes), so a slow page never delays a delivery or a health check.

An event is checked the way committer signs it (ops/receivers.py): X-Committer-Signature-256, the HMAC-SHA256
of the body, keyed with the repository's secret from the credentials directory (`events.d/<organisation>/<name>`,
else `events` for the whole fleet), read again for every delivery. committer treats any 2xx as delivered and
drops an event that gets a 4xx (other than 429), so the answers are: 204 delivered (a delivery made again
included: the event id is applied once), 404 unknown repository, 401 bad signature, 403 no secret configured,
413 too large, 400 not an event; a database that does not answer is a 503, and committer sends the event again.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from committer.core import events, logs
from committer.core.secret import signature
from committer.fleet import rules
from committer.fleet.apitoken import PageAccess
from committer.fleet.config import FleetConfig
from committer.fleet.db import STATUSES, TASK_KINDS, TASK_STATUSES, OperationalError, now
from committer.fleet.store import TASK_BUCKETS, Reported, Store
from committer.serve.app import STOP_SECONDS, Guard, HttpServer
from committer.serve.metrics import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metrics,
    generate_latest,
)
from committer.serve.pages import Environment, PackageLoader, select_autoescape
from committer.serve.web import (
    ASGIApp,
    HTMLResponse,
    Mount,
    Request,
    Response,
    Route,
    Starlette,
    StaticFiles,
    json_response,
    read_body,
)
from committer.serve.work import Threads

log = logs.get("committer.fleet.http")

MAX_EVENT_BODY = 1024 * 1024  # committer's events are a few kB; path lists are cut at 1,000 entries
BODY_SECONDS = 30.0  # the longest an event's body may take to arrive
PROBE_SECONDS = 10.0  # /healthz and /metrics answer 503 when the database takes longer
SIGNATURE = "x-committer-signature-256"
SECRET, PAGE_SIZE = rules.EVENTS_SECRET, 50
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
FLEET_CSS = """/* committer fleet: the overview page, on top of the history pages' style.css */
form.filters { display: flex; flex-wrap: wrap; gap: .4rem .8rem; align-items: end; margin: 0 0 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
select { font: inherit; padding: .3rem .5rem; border: 1px solid var(--line); border-radius: 6px; background: #fff;
  max-width: 100%; }
table.repos th, table.repos td { text-align: left; vertical-align: top; padding: .45rem .4rem;
  border-bottom: 1px solid var(--line); }
table.repos td { overflow-wrap: anywhere; } table.repos td.n { text-align: right; }
.state { display: inline-block; padding: 0 .45rem; border-radius: 999px; border: 1px solid var(--line);
  font-size: .8rem; }
.state-active { background: var(--ok); } .state-failed { background: var(--bad); }
.state-pending, .state-initializing, .state-mirroring { background: var(--warn); }
.state, table.repos time { white-space: nowrap; }
.state-archived { color: var(--muted); } td.error { color: #a11; white-space: pre-wrap; }
.summary { color: var(--muted); }
@media (max-width: 40rem) {
  table.repos thead { display: none; }
  table.repos tr { display: block; border-bottom: 1px solid var(--line); padding: .4rem 0; }
  table.repos td { display: block; border: 0; padding: .1rem 0; }
  table.repos td.n { text-align: left; }
  table.repos td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: .85rem; }
}
"""


# -- events from committer daemons ------------------------------------------------------------------


def event_secret(credentials_dir: Path | None, organisation: str, name: str) -> bytes | None:
    """The secret a repository's daemon signs with: `events.d/<organisation>/<name>`, else (when neither
    holds a dot, so that the file names one repository only) `events.<organisation>.<name>`, else the
    fleet-wide `events`; None when none holds one. OSError when the file is there and cannot be read."""
    if credentials_dir is None:
        return None
    files = [credentials_dir / f"{SECRET}.d" / organisation / name]
    if "." not in organisation and "." not in name:  # `events.a.b.c`: a.b/c or a/b.c? Neither is read
        files.append(credentials_dir / f"{SECRET}.{organisation}.{name}")
    for file in (*files, credentials_dir / SECRET):
        if file.is_file():
            key = file.read_bytes().strip()
            if key:
                return key
    return None
    for file in (credentials_dir / f"{SECRET}.{organisation}.{name}", credentials_dir / SECRET):
        if file.is_file():
            key = file.read_bytes().strip()
            if key:
                return key
    return None


def reported(event: Any) -> Reported:
    """What a committer event (core/events.py) changes on its repository's row; ValueError when it is not one."""
    if not isinstance(event, dict):
        raise ValueError("the body is not a JSON object")
    name, event_id = event.get("event"), event.get("id")
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise ValueError("event: the event's name is missing")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 64:
        raise ValueError("id: the event's id is missing")
    at = _time(event.get("at"))
    if name == events.GIT_COMMIT:
        return Reported(event_id, name, at, commit=_sha(event.get("sha")), commits=_count(event.get("commits"), 1))
    if name == events.GIT_PULL:  # the head moved by a merge or a fast-forward; how many commits is not told
        return Reported(event_id, name, at, commit=_sha(event.get("new")))
    if name == events.GIT_PUSH:
        return Reported(event_id, name, at, pushed=True)
    if name == events.PUSH_FAILED:
        return Reported(event_id, name, at, push_failures=_count(event.get("consecutive_failures"), 1))
    if name == events.HOLD:
        sign = {events.SET: 1, events.RELEASED: -1}.get(str(event.get("action")), 0)
        return Reported(event_id, name, at, holds=sign * _count(event.get("count"), 0))
    return Reported(event_id, name, at)  # a conflict, or an event this fleet does not know: only noted


def _time(value: Any) -> datetime:
    if value is None:
        return now()
    if not isinstance(value, str):
        raise ValueError("at: not a time")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _sha(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not _SHA.fullmatch(value):
        raise ValueError("sha: not a commit id")
    return value


def _count(value: Any, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("count: not a count")
    return value


class Fleet:
    """The routes, given the settings and the store."""

    def __init__(self, config: FleetConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.event_threads = Threads(4)
        self.page_threads = Threads(4)
        self.probe_threads = Threads(4)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(store))
        self.env = Environment(loader=PackageLoader("committer.fleet", "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["when"] = _when
        self.access = PageAccess(listen_address(config)[0], config.http, config.api_token_file)

    def refused(self, request: Request) -> Response | None:
        """None when `request` may read the overview or the metrics; else the answer (see the docstring)."""
        refusal = self.access.refusal(request.headers)
        if refusal is None:
            return None
        status, text = refusal
        challenge = {"www-authenticate": 'Basic realm="committer fleet"'} if status == 401 else {}
        return Response(f"{text}\n".encode(), status, media_type="text/plain", headers=challenge)

    async def event(self, request: Request) -> Response:
        organisation, name = str(request.path_params["organisation"]), str(request.path_params["name"])
        try:
            rules.name(organisation, "organisation")
            rules.name(name)
        except rules.Invalid:
            return json_response(404, {"error": "no such repository"})
        try:
            key = await self.event_threads.run(event_secret, self.config.credentials_dir, organisation, name)
        except OSError as exc:
            log.error("events_secret_unreadable", repository=f"{organisation}/{name}", error=type(exc).__name__)
            return json_response(503, {"error": "the events secret cannot be read"})
        if key is None:
            return json_response(403, {"error": f"no events secret is configured for {organisation}/{name}"})
        sent = request.headers.get(SIGNATURE, "")
        if not sent:
            return json_response(401, {"error": "missing X-Committer-Signature-256"})
        length = request.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit()):
            return json_response(411, {"error": "Content-Length required"})
        if int(length) > MAX_EVENT_BODY:
            return json_response(413, {"error": f"an event is at most {MAX_EVENT_BODY} bytes"})
        body = await read_body(request, int(length), BODY_SECONDS)
        if body is None:
            return json_response(408, {"error": "the body did not arrive in time"})
        if not hmac.compare_digest(sent.encode(), signature(key, body).encode()):
            log.warning("event_refused", repository=f"{organisation}/{name}", reason="bad signature")
            return json_response(401, {"error": "bad signature"})
        try:
            change = reported(json.loads(body))
        except ValueError as exc:  # json's errors are ValueErrors too
            return json_response(400, {"error": f"not a committer event: {str(exc)[:200]}"})
        try:
            applied = await self.event_threads.run(self._apply, organisation, name, change)
        except rules.NotFound:
            return json_response(404, {"error": "no such repository"})
        except OperationalError as exc:
            log.error("event_not_recorded", repository=f"{organisation}/{name}", error=type(exc).__name__)
            return json_response(503, {"error": "the database does not answer; send it again"})
        log.info("event", repository=f"{organisation}/{name}", what=change.event, id=change.event_id,
                 applied=applied)
        return Response(b"", 204)

    def _apply(self, organisation: str, name: str, change: Reported) -> bool:
        return self.store.apply_event(self.store.find(organisation, name).id, change)

    # -- probes ---------------------------------------------------------------------------------------

    async def healthz(self, _request: Request) -> Response:
        try:
            await asyncio.wait_for(self.probe_threads.run(self.store.ping), PROBE_SECONDS)
        except Exception as exc:  # any failure of the database is a 503
            log.warning("health_down", error=type(exc).__name__)
            return json_response(503, {"status": "down", "error": "the database does not answer"})
        return json_response(200, {"status": "ok"})

    async def metrics(self, request: Request) -> Response:
        if (refusal := self.refused(request)) is not None:
            return refusal
        try:
            text = await asyncio.wait_for(self.probe_threads.run(generate_latest, self.registry), PROBE_SECONDS)
        except Exception as exc:  # the collector could not read the database
            log.warning("metrics_failed", error=type(exc).__name__)
            return Response(b"# the database does not answer\n", 503, media_type="text/plain")
        return Response(text, 200, media_type=CONTENT_TYPE_LATEST)

    # -- the overview page ----------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        if (refusal := self.refused(request)) is not None:
            return refusal
        params = request.query_params
        wanted = {"organisation": params.get("organisation", "").strip(), "status": params.get("status", "").strip()}
        after = params.get("after", "").strip()
        html, status = await self.page_threads.run(self._overview, wanted, after)
        return HTMLResponse(html, status)

    def _overview(self, wanted: Mapping[str, str], after: str) -> tuple[str, int]:
        organisations = self.store.organisations()
        org = next((o for o in organisations if o.slug == wanted["organisation"]), None)
        rows: list[Any] = []
        token, note, status = "", "", 200
        if wanted["organisation"] and org is None:
            note, status = f"There is no organisation {wanted['organisation']!r}.", 404
        elif wanted["status"] and wanted["status"] not in STATUSES:
            note, status = f"There is no status {wanted['status']!r}.", 400
        else:
            try:
                rows, token = self.store.repositories(org.id if org else 0, wanted["status"], PAGE_SIZE, after)
            except rules.Invalid:
                note, status = "That page link is not one this page made: here is the first page.", 400
                rows, token = self.store.repositories(org.id if org else 0, wanted["status"], PAGE_SIZE)
        filters = {k: v for k, v in wanted.items() if v}
        html = self.env.get_template("overview.html").render(
            repositories=rows, organisations=[o.slug for o in organisations], statuses=STATUSES,
            wanted=wanted, note=note, counts=self.store.counts()["repositories"],
            next=f"/?{urlencode({**filters, 'after': token})}" if token else None,
            first=f"/?{urlencode(filters)}" if after else None)
        return html, status

    def starlette(self) -> Starlette:
        routes = [
            Route("/", self.overview, methods=["GET", "HEAD"]),
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
            Route("/metrics", self.metrics, methods=["GET", "HEAD"]),
            Route("/events/{organisation}/{name}", self.event, methods=["POST"]),
            Route("/static/fleet.css", _css, methods=["GET", "HEAD"]),
            Mount("/static", StaticFiles(packages=[("committer.serve", "static")]), name="static"),
        ]
        return Starlette(routes=routes, exception_handlers={404: _not_found})


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "never"


async def _css(_request: Request) -> Response:
    return Response(FLEET_CSS, 200, media_type="text/css", headers={"cache-control": "max-age=300"})


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return json_response(404, {"error": "not found"})


# -- /metrics ---------------------------------------------------------------------------------------


class Collector:
    """The fleet's numbers, read from the database at scrape time: every API process reports the same,
    whichever worker ran the tasks."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        repos = self.store.counts()["repositories"]
        tasks, durations = self.store.task_stats()
        by_status = GaugeMetricFamily("committer_fleet_repositories", "Repositories by status.", labels=["status"])
        for status in sorted({*STATUSES, *repos}):
            by_status.add_metric([status], repos.get(status, 0))
        yield by_status
        task_gauge = GaugeMetricFamily("committer_fleet_tasks", "Sync tasks by kind and status.",
                                       labels=["kind", "status"])
        kinds = sorted({*TASK_KINDS, *(k for k, _ in tasks)})
        for kind in kinds:
            for status in sorted({*TASK_STATUSES, *(s for _, s in tasks)}):
                task_gauge.add_metric([kind, status], tasks.get((kind, status), 0))
        yield task_gauge
        queued = sum(n for (_, status), n in tasks.items() if status in ("pending", "retrying"))
        yield GaugeMetricFamily("committer_fleet_queue_depth", "Tasks waiting for a worker: pending and retrying.",
                                value=queued)
        histogram = HistogramMetricFamily(
            "committer_fleet_task_duration_seconds", "Time from a task's start to its end, by kind and outcome.",
            labels=["kind", "outcome"])
        for (kind, outcome), found in sorted(durations.items()):
            buckets = [(str(bound), n) for bound, n in zip(TASK_BUCKETS, found.buckets, strict=True)]
            histogram.add_metric([kind, outcome], [*buckets, ("+Inf", found.count)], found.seconds)
        yield histogram


# -- the server -------------------------------------------------------------------------------------


class FleetServer(HttpServer):
    """The daemon's HTTP server (serve/app.py) serving the fleet's app: same transport rules, same stop."""

    def __init__(self, address: tuple[str, int], fleet: Fleet) -> None:
        # The daemon's health, readiness and metrics are not served here: the fleet's routes replace them.
        super().__init__(address, Metrics(process=False), health=lambda: {"healthy": True}, ready=lambda: True)
        self.fleet = fleet

    def app(self) -> Starlette:
        return self.fleet.starlette()  # start() puts Guard around it


def listen_address(config: FleetConfig) -> tuple[str, int]:
    """`config.http` as (host, port); port 0 (any free port, for tests) is taken as it is."""
    host, _, port = config.http.strip().rpartition(":")
    if port == "0":
        return host.strip("[]") or "127.0.0.1", 0
    return config.http_address()


def make_app(config: FleetConfig, store: Store) -> ASGIApp:
    """The ASGI app alone (security headers, 500 for a failing handler), for tests and other servers."""
    return Guard(Fleet(config, store).starlette())


def serve_http(config: FleetConfig, store: Store, bind: tuple[str, int] | None = None) -> HttpServer:
    """Listen on `config.http` (port 0: any free port, in `.port`) from a thread; `.stop()` ends it
    within STOP_SECONDS. CommitterError when the address cannot be had. `bind` listens elsewhere than
    `config.http` says, whose host still decides who may read the pages (tests: loopback only)."""
    server = FleetServer(bind or listen_address(config), Fleet(config, store))
    server.start()
    return server


__all__ = ["STOP_SECONDS", "Collector", "FleetServer", "event_secret", "make_app", "reported", "serve_http"]
