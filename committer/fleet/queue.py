"""How the fleet's tasks are delivered: Celery on a Redis broker or the embedded one (kombu's SQLAlchemy
transport on a SQLite file beside the state), Celery's and kombu's one home.

A message carries ids only (the repository's and the SyncTask's, whose task_id is also the Celery task id),
never a credential or a URL: the worker reads everything else from the database, the secret from the
credentials directory. Tasks are acknowledged late and rejected back to the queue when their worker process
dies, so a message is never lost with a worker; and since a message may thus come twice, `Work.run` is
idempotent. A task holds an exclusive flock on its repository while it runs (the kernel drops it with a
killed process), so two tasks never work on one repository at once: the second waits its turn.

A failure `Work` calls temporary (`TaskFailed(retry=True)`) is retried after base, 2*base and 4*base seconds
(`retry_base`), then given up; any other failure is given up at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.apps import worker as celery_worker
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import setup_logging, worker_ready, worker_shutting_down
from kombu.utils.url import maybe_sanitize_url as maybe_sanitize_url

from committer.core import logs
from committer.fleet import db
from committer.fleet.config import FleetConfig
from committer.fleet.store import Store

if TYPE_CHECKING:
    from committer.fleet.work import Work

log = logs.get("committer.fleet.queue")
# kombu's SQLAlchemy transport (the embedded broker) declares a relationship SQLAlchemy 2.1 deprecates: not ours
# to fix, and a warning line in the middle of the JSON logs.
warnings.filterwarnings("ignore", message="The ``noload`` loader strategy", category=DeprecationWarning)

QUEUE = "fleet"
MAX_RETRIES = 3
TASKS = {"initialize": "initialize_repository", "migrate": "migrate_repository", "sync": "sync_repository"}
# Sending to a broker that is briefly away (restarted, failing over): tried for about ten seconds.
SEND_RETRY = {"max_retries": 8, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


class BrokerDown(Exception):
    """The broker did not take a task: its URL (without password) and why, in one line."""


def visibility_timeout(config: FleetConfig) -> float:
    """How long Redis waits for an acknowledgement before it delivers a message again: longer than a task may
    run (its time limit) plus the longest retry delay it may be held for, so a slow task is never run twice
    while its worker lives; a dead worker's task comes back sooner through the beat's lease check."""
    return max(3600.0, 2 * config.git_timeout + 8 * config.retry_base)


def make(config: FleetConfig) -> Any:
    """A Celery app for this configuration, with the fleet's three tasks registered."""
    app = Celery("committer.fleet", broker=config.broker_url, backend=config.result_backend or None,
                 set_as_current=False)
    if config.embedded:
        transport: dict[str, Any] = {"connect_args": {"timeout": 30}}  # SQLite: wait for the other writers
    else:
        transport = {"visibility_timeout": visibility_timeout(config)}
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A pool process killed under its task: its message goes back after this long (Celery's 10 s kept
        # the worker from taking anything else meanwhile; a result that late never comes).
        worker_lost_wait=2.0,
        task_ignore_result=not config.result_backend,
        worker_prefetch_multiplier=1,  # a worker takes one message at a time: the others stay for others
        broker_transport_options=transport,
        result_backend_transport_options=transport if config.result_backend else {},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for its broker as long as it takes
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=False,  # the database is where tasks are watched (no pidbox queues)
        worker_send_task_events=False,
        enable_utc=True,
    )
    _register(app, config)
    return app


_apps: dict[FleetConfig, Any] = {}


def app_for(config: FleetConfig) -> Any:
    """The app this process sends with (made once per configuration)."""
    if config not in _apps:
        _apps[config] = make(config)
    return _apps[config]


def arguments(task: db.SyncTask) -> list[Any]:
    """The task's message arguments, in the seed's order: ids (and migrate's force flag), nothing else."""
    if task.kind == "migrate":
        return [task.repository_id, bool(task.force), task.task_id]
    return [task.repository_id, task.task_id]


def send(config: FleetConfig, task: db.SyncTask) -> None:
    """Queue the SyncTask row's work under its own task_id (the broker tried again for a few seconds when it
    is away); raises BrokerDown if it stays away. The message shows the retries the row has used."""
    if config.embedded:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        app_for(config).send_task(TASKS[task.kind], args=arguments(task), task_id=task.task_id, queue=QUEUE,
                                  retries=min(task.retries, MAX_RETRIES), retry=True, retry_policy=SEND_RETRY)
    except Exception as exc:  # kombu and the transports raise many kinds; all mean the same here
        where = maybe_sanitize_url(config.broker_url)
        raise BrokerDown(f"the broker at {where} did not take task {task.task_id}: "
                         f"{type(exc).__name__}: {exc}") from None
    log.info("task sent", task_id=task.task_id, repository_id=task.repository_id, kind=task.kind)


@contextmanager
def repository_lock(config: FleetConfig, repository_id: int,
                    waiting: Callable[[], AbstractContextManager[None]] | None = None) -> Iterator[None]:
    """Hold the repository's exclusive lock: `<repos_dir>/.fleet/locks/<id>.lock`. When another task holds it,
    wait for it inside `waiting()` (what the wait must say meanwhile); a free lock is taken at once."""
    path = config.state_dir / "locks" / f"{int(repository_id)}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with waiting() if waiting is not None else contextlib.nullcontext():
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


_works: dict[tuple[int, FleetConfig], tuple[Work, Store]] = {}


def queue_empty(config: FleetConfig) -> bool:
    """Whether no message waits in the fleet's queue (a broker that does not answer: False, nothing known)."""
    try:
        with app_for(config).connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)  # asked at every beat tick: not waited on for ever
            return int(connection.default_channel.queue_declare(queue=QUEUE).message_count) == 0
    except Exception as exc:  # kombu and the transports raise many kinds; all mean the same here
        log.warning("queue depth unknown", broker=maybe_sanitize_url(config.broker_url), error=str(exc))
        return False


def work_for(config: FleetConfig) -> tuple[Work, Store]:
    """This process's Work and store (a forked pool process makes its own: a database connection never
    crosses a fork)."""
    key = (os.getpid(), config)
    if key not in _works:
        from committer.fleet.work import Work  # the task's work on git and the database

        store = Store(db.engine(config.db_url), config.repos_dir)
        _works[key] = Work(config, store, worker=f"{socket.gethostname()}:{os.getpid()}"), store
    return _works[key]


def deliver(task: Any, config: FleetConfig, repository_id: int, sync_task_id: str) -> int:
    """One delivery of a task: its repository's lock, then the work; retries and giving up as above. The
    retries a task has used are counted on its row (a worker killed under it used none), not in its message."""
    from committer.fleet.work import TaskFailed

    work, store = work_for(config)
    bound = log.bind(task_id=sync_task_id, repository_id=repository_id, task=task.name)
    with contextlib.ExitStack() as held:
        # While it waits for a busy repository, the task's row says this worker holds it (one killed while it
        # waits: the beat sends the task again); a free repository is claimed at once, in work.run.
        held.enter_context(repository_lock(config, repository_id, lambda: work.hold(sync_task_id)))
        bound.info("task started")
        try:
            commits = work.run(sync_task_id)
        except TaskFailed as failed:
            message, retry = failed.message, failed.retry
        except SoftTimeLimitExceeded:
            message, retry = f"the task ran over its time limit of {config.git_timeout:g}s", False
        except Exception as exc:  # a fault of ours or the database's: tried again like a temporary failure
            bound.exception("task raised")
            message, retry = f"internal error: {type(exc).__name__}: {exc}", True
        else:
            if commits is None:
                bound.info("task not run: another delivery has it, or its retry is not due")
                return 0
            bound.info("task finished", commits_synced=commits)
            return commits
        used = store.task(sync_task_id).retries
        if retry and used < MAX_RETRIES:
            delay = config.retry_base * 2**used
            work.retrying(sync_task_id, message, db.now() + timedelta(seconds=delay))
            bound.warning("task failed, retrying", error=message, delay=delay, retries=used + 1)
        else:
            if store.task(sync_task_id).status != "failed":  # a message come again after the task failed
                work.give_up(sync_task_id, message)
            bound.warning("task failed", error=message)
            return 0
    # A new message, the same task id; how many retries are left is the row's business, not Celery's.
    raise task.retry(countdown=delay, max_retries=None)


def _register(app: Any, config: FleetConfig) -> None:
    # The soft limit comes first, so the task is given up with a message before the hard limit kills it.
    soft = max(config.git_timeout - 30, config.git_timeout * 0.9)
    # shared=False: Celery would otherwise give these tasks (and their configuration) to every app made later.
    options = {"bind": True, "shared": False, "acks_late": True, "reject_on_worker_lost": True,
               "max_retries": MAX_RETRIES, "time_limit": config.git_timeout, "soft_time_limit": soft}

    @app.task(name=TASKS["initialize"], **options)  # type: ignore[untyped-decorator]
    def initialize_repository(self: Any, repository_id: int, sync_task_id: str) -> int:
        return deliver(self, config, repository_id, sync_task_id)

    @app.task(name=TASKS["migrate"], **options)  # type: ignore[untyped-decorator]
    def migrate_repository(self: Any, repository_id: int, force: bool, sync_task_id: str) -> int:
        return deliver(self, config, repository_id, sync_task_id)  # force is on the task's row

    @app.task(name=TASKS["sync"], **options)  # type: ignore[untyped-decorator]
    def sync_repository(self: Any, repository_id: int, sync_task_id: str) -> int:
        return deliver(self, config, repository_id, sync_task_id)


def run_worker(config: FleetConfig, concurrency: int = 1) -> int:
    """Consume tasks with `concurrency` pool processes until SIGTERM (warm: running tasks finish) or SIGQUIT."""
    app = app_for(config)
    if os.geteuid() == 0:  # said once, as a log line, instead of Celery's multi-line warning
        warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")
        log.warning("worker runs as root: a dedicated user is safer")
    class Worker(app.Worker):  # type: ignore[misc,name-defined]
        def install_platform_tweaks(self, worker: Any) -> None:
            """Celery's own signal handlers, without the line each prints to stdout (not JSON): the
            shutdown is a log line of ours (worker_shutting_down)."""
            super().install_platform_tweaks(worker)
            celery_worker.install_worker_term_handler(worker, verbose=False)
            celery_worker.install_worker_term_hard_handler(worker, verbose=False)

    setup_logging.connect(_logging, weak=False)  # connected: Celery leaves the logging to us
    worker_shutting_down.connect(_shutting_down, weak=False)
    worker = Worker(concurrency=concurrency, pool="prefork", hostname=f"fleet-{os.getpid()}@{socket.gethostname()}",
                    queues=[QUEUE], quiet=True, without_mingle=True, without_gossip=True,
                    without_heartbeat=True, loglevel="WARNING")
    worker_ready.connect(_ready, weak=False)
    worker.start()
    return int(worker.exitcode or 0)


_METHODS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}


class _ToCommitterLogs(logging.Handler):
    """Celery's, kombu's and billiard's log records as committer's log lines (JSON by default): the message's
    first line, the logger, and an exception as one line (`error`), never a traceback's frames."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = record.getMessage().strip().splitlines() or [record.name]
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                inner = getattr(error, "exc", None)  # billiard's ExceptionWithTraceback wraps the exception
                error = inner if isinstance(inner, BaseException) else error
                fields["error"] = (f"{type(error).__name__}: {error}".strip().splitlines() or [""])[0]
            method = _METHODS.get(record.levelno, "error" if record.levelno > logging.ERROR else "debug")
            getattr(log, method)(lines[0], **fields)
        except Exception:  # a log line must never stop the worker
            self.handleError(record)


def _logging(**_details: Any) -> None:
    handler = _ToCommitterLogs()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    for name in ("multiprocessing", "celery", "kombu"):  # billiard logs as multiprocessing, not propagated
        logging.getLogger(name).handlers = [handler]
        logging.getLogger(name).propagate = False


def _shutting_down(sig: str = "", how: str = "", **_details: Any) -> None:
    """Logged from another thread: this runs in a signal handler, maybe while a log line is being written."""
    threading.Thread(target=log.info, args=("worker stopping",), kwargs={"signal": sig, "how": how.lower()},
                     name="committer-stopping", daemon=True).start()


def _ready(**_details: Any) -> None:
    """The worker consumes from now on: one line an operator (or a readiness check) can wait for."""
    log.info("worker ready", pid=os.getpid())
