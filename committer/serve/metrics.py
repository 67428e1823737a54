"""The only prometheus-client import: what the daemon counts, in its own registry, rendered for /metrics."""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily as GaugeMetricFamily
from prometheus_client.core import HistogramMetricFamily as HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector

from committer import __version__

# For collectors of other layers that read their numbers at scrape time (the fleet's, from its database).
__all__ = ["CONTENT_TYPE_LATEST", "CollectorRegistry", "GaugeMetricFamily", "HistogramMetricFamily", "Metrics",
           "generate_latest"]

# 1 ms to 60 s: a one-file commit takes milliseconds, a start-up reconcile or a slow push a minute.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH = "batch"  # the op label of an ordinary commit from the watcher (the pipeline passes op=None)
NO_ERROR = "none"  # the kind label of a successful push
# What one repository counts: in the per-project layout each project's series carry a `project` label; the
# rest (events, deliveries, the watcher, the process) are the daemon's own, once.
PER_REPOSITORY = (
    "committer_commits", "committer_files_committed", "committer_commit_duration_seconds", "committer_pushes",
    "committer_push_duration_seconds", "committer_pulls", "committer_conflict_copies",
    "committer_last_push_success_timestamp_seconds", "committer_pending_commits",
    "committer_oldest_pending_commit_age_seconds", "committer_held_deletions", "committer_held_files",
    "committer_github_token_refreshes", "committer_remote_diverged",
)


class Metrics:
    """Every metric the daemon exports, owned by one registry so instances and tests never clash."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, clock: Callable[[], float] = time.time, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._oldest_pending: float | None = None
        self._projects: dict[str, Metrics] = {}  # per-project layout: each project's own, labelled at render
        reg = self.registry

        def counter(name: str, *labels: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=reg)

        def gauge(name: str, *, doc: str) -> Gauge:
            return Gauge(name, doc, registry=reg)

        def histogram(name: str, *labels: str, doc: str) -> Histogram:
            return Histogram(name, doc, labels, buckets=BUCKETS, registry=reg)

        self._commits = counter(
            "committer_commits", "op",
            doc="Commits written, by op (batch, reconcile, init, restore, untrack, ...).")
        self._files = counter(
            "committer_files_committed", "op",
            doc="Paths added, modified or deleted by commits, by op.")
        self._commit_seconds = histogram(
            "committer_commit_duration_seconds", "op",
            doc="Time to build and write one commit, by op.")
        self._pushes = counter(
            "committer_pushes", "result", "kind",
            doc="Push attempts by result (ok, failed) and failure kind (none when ok).")
        self._push_seconds = histogram(
            "committer_push_duration_seconds", "result",
            doc="Time of one push attempt, by result.")
        self._pulls = counter(
            "committer_pulls", "outcome",
            doc="Pulls applied or refused, by outcome (fast_forward, merge, up_to_date, ahead, held, refused, "
                "diverged, pull_request).")
        self._conflicts = counter(
            "committer_conflict_copies",
            doc="Conflict copies written by pulls (the remote's version beside the local one).")
        self._last_push = gauge(
            "committer_last_push_success_timestamp_seconds",
            doc="Unix time of the last successful push (0: none since start and none recorded).")
        self._pending = gauge(
            "committer_pending_commits",
            doc="Commits on the branch that the remote does not have yet.")
        oldest = gauge(
            "committer_oldest_pending_commit_age_seconds",
            doc="Age of the oldest commit the remote does not have yet (0 when nothing is pending).")
        oldest.set_function(self._oldest_pending_age)  # computed at scrape time, so it grows between pushes
        self._held_deletions = gauge(
            "committer_held_deletions",
            doc="Deletions held back by the mass-deletion guard until `committer confirm-deletes`.")
        self._held_files = gauge(
            "committer_held_files",
            doc="Files kept out of history (secrets, size limits, unreadable).")
        self._token_refreshes = counter(
            "committer_github_token_refreshes", "result",
            doc="GitHub App installation tokens minted, by result (ok, refused, unreachable).")
        self._diverged = gauge(
            "committer_remote_diverged",
            doc="1 while the remote branch was moved back or rewritten by someone else (nothing is pushed over it).")
        self._watcher_restarts = counter(
            "committer_watcher_restarts",
            doc="Times the file watcher died and was started again.")
        self._events = counter(
            "committer_events", "event",
            doc="Events made, by event (git_commit, git_push, git_pull, git_conflict, hold, push_failed, verify).")
        self._deliveries = counter(
            "committer_notify_deliveries", "result",
            doc="Event deliveries to notify_url and exec_hook, by result (ok; failed: tried again; rejected: "
                "refused by the receiver, dropped; dropped: past notify_outbox_max or not written).")
        self._outbox = gauge(
            "committer_notify_outbox",
            doc="Events in the outbox that a receiver has not taken yet.")
        self._verified = gauge(
            "committer_backup_verified_timestamp_seconds",
            doc="Unix time of the last verify that proved the remote copy restorable (0: none recorded).")
        self._verify_failures = counter(
            "committer_backup_verify_failures", "reason",
            doc="Verifies of the remote copy that failed, by reason (unreachable, objects_missing, fsck, rewritten, "
                "lfs_missing, ...).")
        Info("committer_build", "Version of committer and of Python.", registry=reg).info(
            {"version": __version__, "python": platform.python_version()}
        )
        # Series that exist from the start, so rate() and ratios work before the first event.
        self._commits.labels(op=BATCH)
        self._files.labels(op=BATCH)
        self._pushes.labels(result="ok", kind=NO_ERROR)
        self._deliveries.labels(result="ok")
        if process:  # the standard process_* series (memory, CPU, fds) for sizing a fleet; Linux only
            ProcessCollector(registry=reg)

    # -- what the daemon reports ------------------------------------------------------------------

    def commit(self, op: str | None, files: int, seconds: float) -> None:
        """One commit written: counts it and its files, observes its duration (op None means a batch)."""
        label = op or BATCH
        self._commits.labels(op=label).inc()
        self._files.labels(op=label).inc(max(0, files))
        self._commit_seconds.labels(op=label).observe(max(0.0, seconds))

    def push_ok(self, seconds: float) -> None:
        """A push the remote accepted: counts it, observes its duration, stamps the last success now."""
        self._pushes.labels(result="ok", kind=NO_ERROR).inc()
        self._push_seconds.labels(result="ok").observe(max(0.0, seconds))
        self._last_push.set(self._clock())

    def push_failed(self, kind: str, seconds: float) -> None:
        """A push the remote refused or that failed, with its PushError kind (auth, transient, ...)."""
        self._pushes.labels(result="failed", kind=kind or "unknown").inc()
        self._push_seconds.labels(result="failed").observe(max(0.0, seconds))

    def pulled(self, outcome: str, conflicts: int) -> None:
        """One pull handled, with its outcome and the conflict copies it wrote."""
        self._pulls.labels(outcome=outcome).inc()
        if conflicts:
            self._conflicts.inc(conflicts)

    def set_last_push(self, at: float) -> None:
        """Seed the last successful push time (unix seconds), e.g. from the state file at start-up."""
        self._last_push.set(at)

    def set_pending(self, commits: int, oldest_at: float | None) -> None:
        """Unpushed commits and the unix time of the oldest of them (None when nothing is pending)."""
        self._pending.set(max(0, commits))
        with self._lock:
            self._oldest_pending = oldest_at if commits > 0 else None

    def set_holds(self, deletions: int, files: int) -> None:
        """Deletions held by the guard and files held out of history, as counted now."""
        self._held_deletions.set(max(0, deletions))
        self._held_files.set(max(0, files))

    def token_refreshed(self, result: str) -> None:
        """A GitHub App installation token was minted (ok) or could not be (refused, unreachable)."""
        self._token_refreshes.labels(result=result).inc()

    def set_diverged(self, diverged: bool) -> None:
        """Whether the remote branch is now somewhere this repository did not push it."""
        self._diverged.set(1 if diverged else 0)

    def watcher_restarted(self) -> None:
        """The watcher died and was started again."""
        self._watcher_restarts.inc()

    def event(self, name: str) -> None:
        """One event made (whether or not anyone receives it)."""
        self._events.labels(event=name).inc()

    def delivery(self, result: str, count: int = 1) -> None:
        """Deliveries that ended with `result` (ok, failed, rejected, dropped)."""
        self._deliveries.labels(result=result).inc(count)

    def set_outbox(self, waiting: int) -> None:
        """Events waiting in the outbox now."""
        self._outbox.set(max(0, waiting))

    def verified(self, ok: bool, reason: str | None, at: float) -> None:
        """A verify of the remote copy ended: stamps the success, or counts the failure by its reason."""
        if ok:
            self._verified.set(at)
        else:
            self._verify_failures.labels(reason=reason or "unknown").inc()

    def set_verified(self, at: float) -> None:
        """Seed the last successful verify (unix seconds) from its record at start-up."""
        self._verified.set(at)

    # -- exposition ---------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The registry in Prometheus text format (serve with `content_type`)."""
        if self._projects:
            merged = CollectorRegistry(auto_describe=False)
            merged.register(_Labelled(self))
            return generate_latest(merged)
        return generate_latest(self.registry)

    def project(self, name: str) -> Metrics:
        """The metrics of one project (per-project layout), shown at /metrics with `project="<name>"`."""
        with self._lock:
            child = self._projects.get(name)
            if child is None:
                child = self._projects[name] = Metrics(self._clock, process=False)
            return child

    def projects(self) -> dict[str, Metrics]:
        """The projects' metrics by name (a copy)."""
        with self._lock:
            return dict(self._projects)

    def _oldest_pending_age(self) -> float:
        with self._lock:
            oldest = self._oldest_pending
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)


class _Labelled:
    """A collector: the daemon's own series, then each repository's series of every project with its
    `project` label, one family per name."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        families: dict[str, Metric] = {}
        for family in self.metrics.registry.collect():
            if family.name not in PER_REPOSITORY:
                families[family.name] = family
        for name, child in sorted(self.metrics.projects().items()):
            for family in child.registry.collect():
                if family.name not in PER_REPOSITORY:
                    continue
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type)
                merged.samples.extend(s._replace(labels={**s.labels, "project": name}) for s in family.samples)
        return list(families.values())
