"""The fleet's processes: the API (gRPC and HTTP), the workers, and the beat (scheduler and recovery), each
on its own (`committer fleet api|worker|beat`, across machines) or all three from `up` on one machine.

The beat is a plain loop, not Celery beat: which repositories are due depends on rows (each repository's
interval, phase, last task, open tasks), not on a fixed timetable, and the loop also finds the tasks of dead
workers; it sends its syncs straight to the queue, so a tick never waits behind a worker busy with a
30-minute migration, and it keeps no schedule file of its own. One beat runs at a time: a second one (another
machine sharing the volume) waits on the beat lock as a standby.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from committer.core import logs, values
from committer.core.errors import CommitterError, ConfigError, redact
from committer.fleet import db, queue, rules, scheduler, schema
from committer.fleet.config import ENV, FleetConfig
from committer.fleet.store import Store
from committer.git import runner

log = logs.get("committer.fleet.processes")

PRUNE_EVERY = 3600.0  # seconds between two prunes of finished tasks
TASK_KEEP = 20  # finished tasks of each repository kept whatever their age
STOP_GRACE = 10.0  # seconds a worker gets to finish on SIGTERM before it is killed (its tasks come back)


def configure_logs(environ: Mapping[str, str], default: str = "json") -> None:
    """The process's log lines through committer's logging (every registered secret removed, a traceback as
    plain text without its frames' values): COMMITTER_LOG_FORMAT (auto, console, json), COMMITTER_LOG_LEVEL."""
    fmt = environ.get("COMMITTER_LOG_FORMAT", default)
    level = environ.get("COMMITTER_LOG_LEVEL", "info")
    if fmt not in ("auto", "console", "json"):
        raise ConfigError("COMMITTER_LOG_FORMAT", f"{fmt!r} is not one of auto, console, json")
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError("COMMITTER_LOG_LEVEL", f"{level!r} is not one of debug, info, warning, error")
    logs.configure(fmt, level)


def prepare(config: FleetConfig) -> Store:
    """The state directory and the newest schema: every process does this before anything else."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        engine = db.engine(config.db_url)
        schema.upgrade(engine)
    except db.ArgumentError as exc:  # not a database URL, or no driver for it
        raise ConfigError("db", f"not a database URL SQLAlchemy can open: {_first_line(exc)}") from None
    except db.SQLAlchemyError as exc:
        raise CommitterError(f"db: cannot open the database: {_first_line(exc)}") from None
    return Store(engine, config.repos_dir)


def _first_line(exc: Exception) -> str:
    """The error's first line, any user:password@ of a URL in it removed."""
    lines = str(exc).strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__)


def _stopper() -> threading.Event:
    """An event set by SIGTERM or SIGINT (installed on the main thread)."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        stop.set()
        # Logged from another thread: the signal may come while this one is writing a log line and holds its
        # (not reentrant) lock, which the handler would wait on for ever.
        threading.Thread(target=log.info, args=("stopping",), kwargs={"signal": signal.Signals(signum).name},
                         name="committer-stopping", daemon=True).start()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


# The API


def _serve(config: FleetConfig, store: Store) -> list[Any]:
    """Start the gRPC and HTTP servers (imported here: the worker and the beat never need them)."""
    from committer.fleet import rpc, web

    grpc_server = rpc.serve_grpc(config, store, lambda task: queue.send(config, task))
    try:
        http_server = web.serve_http(config, store)
    except BaseException:
        grpc_server.stop(0)
        raise
    log.info("api listening", grpc_port=grpc_server.port, http_port=http_server.port)
    return [grpc_server, http_server]


def _stop_servers(servers: list[Any]) -> None:
    grpc_server, http_server = servers
    grpc_server.stop(5.0)
    http_server.stop()


def api(config: FleetConfig) -> int:
    """Serve the gRPC API and the HTTP side until SIGTERM or SIGINT."""
    store = prepare(config)
    stop = _stopper()
    servers = _serve(config, store)
    stop.wait()
    _stop_servers(servers)
    log.info("api stopped")
    return 0


# The worker


def worker(config: FleetConfig, concurrency: int = 1) -> int:
    """Run tasks, `concurrency` at a time, until SIGTERM (running tasks finish) or SIGQUIT."""
    if concurrency < 1:
        raise rules.Invalid(f"concurrency: {concurrency}; at least 1")
    prepare(config)
    log.info("worker starting", concurrency=concurrency, broker=queue.maybe_sanitize_url(config.broker_url))
    return queue.run_worker(config, concurrency)


# The beat


@dataclass
class Beat:
    """One tick: send again the tasks of dead workers, then send the syncs that are due."""

    config: FleetConfig
    store: Store
    send: Any = queue.send  # (config, SyncTask) -> None
    queue_empty: Any = queue.queue_empty  # (config) -> bool
    pruned_at: float | None = None  # time.monotonic() of the last prune
    after_id: int = 0  # the newest task row already read
    last_sent: dict[int, datetime] = field(default_factory=dict)

    def tick(self, at: datetime | None = None) -> None:
        self.recover()
        self.schedule(at or db.now())
        self.prune()

    def recover(self) -> None:
        """Send again, under their own task_id, the tasks whose message died with a worker: `running` with a
        heartbeat older than the lease (kill -9, a machine gone), `retrying` a lease past its time (its delayed
        message was held by a dead worker), `pending` held by a worker not heard from for a lease (killed
        before it claimed the task), or not held by any a lease after it was sent while the queue is empty
        (the broker lost it). Each one's lease starts again, so one is sent once a lease at most; a message
        that comes twice is harmless (the row's claim lets one delivery run the task)."""
        lease = self.config.lease
        lost = [*self.store.stale_tasks(lease), *self.store.overdue_retries(lease),
                *self.store.lost_pending(lease, lambda: self.queue_empty(self.config))]
        for task in lost:
            self.store.resent(task)
            try:
                self.send(self.config, task)
            except queue.BrokerDown as exc:
                log.warning("task not sent again", task_id=task.task_id, error=str(exc))
                continue
            log.warning("task sent again", task_id=task.task_id, repository_id=task.repository_id,
                        status=task.status, worker=task.worker)

    def prune(self, at: float | None = None) -> int:
        """Once an hour, delete the tasks that finished more than task_retention ago (the newest TASK_KEEP
        finished tasks of each repository stay whatever their age); how many went."""
        clock = time.monotonic() if at is None else at
        if self.pruned_at is not None and clock - self.pruned_at < PRUNE_EVERY:
            return 0
        self.pruned_at = clock
        gone = self.store.prune_tasks(timedelta(seconds=self.config.task_retention), TASK_KEEP)
        if gone:
            log.info("tasks pruned", count=gone, retention=self.config.task_retention, keep=TASK_KEEP)
        return gone

    def schedule(self, at: datetime) -> list[str]:
        """Send a sync to every repository due at `at`; returns their task ids."""
        self.after_id, newest = self.store.tasks_sent_since(self.after_id)
        for repo_id, created in newest.items():
            if repo_id not in self.last_sent or created > self.last_sent[repo_id]:
                self.last_sent[repo_id] = created
        candidates = [scheduler.Candidate(repo_id, float(interval), synced)
                      for repo_id, interval, synced in self.store.schedulable(int(self.config.sync_interval))]
        sent = []
        for repo_id in scheduler.due(candidates, self.store.busy_repositories(), self.last_sent, at):
            try:
                task = self.store.new_task(repo_id, "sync")
            except rules.FleetError:  # archived or removed since the rows were read
                continue
            self.last_sent[repo_id] = task.created_at
            try:
                self.send(self.config, task)
            except queue.BrokerDown as exc:
                self.store.update_task(task.task_id, status="failed", error_message=str(exc), finished_at=db.now())
                log.warning("sync not sent", repository_id=repo_id, error=str(exc))
                continue
            sent.append(task.task_id)
        return sent


def beat(config: FleetConfig) -> int:
    """Tick until SIGTERM or SIGINT, as the one beat of the fleet (another waits on the beat lock)."""
    store = prepare(config)
    stop = _stopper()
    period = min(scheduler.TICK, config.lease / 2)
    fd = os.open(config.state_dir / "beat.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while not _try_lock(fd):
            log.info("another beat runs: standing by")
            if stop.wait(period):
                return 0
        log.info("beat started", period=period, sync_interval=config.sync_interval, lease=config.lease)
        ticker = Beat(config, store)
        while not stop.is_set():
            try:
                ticker.tick()
            except Exception:  # the database or the broker away for a moment: the next tick tries again
                log.exception("tick failed")
            stop.wait(period)
    finally:
        os.close(fd)
    log.info("beat stopped")
    return 0


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


# Everything on one machine


def environ(config: FleetConfig) -> dict[str, str]:
    """The configuration as the environment a child process loads it from (never its argv: a broker or
    database URL may carry a password)."""
    out = {}
    for key, name in ENV.items():
        value = getattr(config, key)
        if isinstance(value, float):
            out[name] = values.duration_text(value)
        else:
            out[name] = "" if value is None else str(value)
    return out


def spawn(config: FleetConfig, role: str, *args: str) -> subprocess.Popen[bytes]:
    """Start `python -m committer.fleet ROLE ...` in its own process group, configured by its environment."""
    return runner.start_child([sys.executable, "-m", "committer.fleet", role, *args],
                              {**os.environ, **environ(config)})


def stop_child(child: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM, then SIGKILL to its whole group after `grace` seconds (a task cut short comes back)."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("child did not stop: killed", pid=child.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # its pool processes too, even when it has exited
    child.wait()
    runner.forget_child(child)


def up(config: FleetConfig, concurrency: int = 1) -> int:
    """The whole fleet on one machine: the API here, a worker and the beat as child processes. SIGTERM or
    SIGINT stop the API, then the beat, then the worker; a child that dies is started again."""
    store = prepare(config)
    stop = _stopper()
    roles = {"beat": ("beat",), "worker": ("worker", "--concurrency", str(concurrency))}
    children = {name: spawn(config, *argv) for name, argv in roles.items()}
    try:
        servers = _serve(config, store)
    except BaseException:
        for child in children.values():
            stop_child(child)
        raise
    log.info("fleet up", repos_dir=str(Path(config.repos_dir)), worker=children["worker"].pid,
             beat=children["beat"].pid)
    while not stop.wait(1.0):
        for name, child in children.items():
            if child.poll() is not None:
                log.error("child exited: starting it again", role=name, code=child.returncode)
                children[name] = spawn(config, *roles[name])
    _stop_servers(servers)
    stop_child(children["beat"])
    stop_child(children["worker"])
    log.info("fleet stopped")
    return 0
