"""The task rows' queries: created, claimed, heard from, resent, counted. Part of the store (fleet/store.py
`Store` is a `TaskRows`); kept apart so that each file reads as one subject."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from committer.fleet import rules
from committer.fleet.db import (
    Engine,
    GitRepository,
    SyncTask,
    and_,
    case,
    delete,
    func,
    now,
    or_,
    select,
    session,
    update,
)

# Upper bounds (seconds) of the task duration histogram: a no-op sync takes a second, a big migration minutes.
TASK_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0)
FINISHED = ("succeeded", "failed")
# Seconds a retry's message may come before its time (the clocks of the machines that wrote and read it).
CLOCK_SLACK = 2.0


@dataclass(frozen=True)
class Durations:
    """Finished tasks of one kind and outcome: how many, their seconds in all, and how many took at most
    each of TASK_BUCKETS (cumulative, as Prometheus histograms count)."""

    count: int
    seconds: float
    buckets: tuple[int, ...]




class TaskRows:
    engine: Engine

    def repository(self, repo_id: int) -> GitRepository:
        raise NotImplementedError

    def new_task(self, repo_id: int, kind: str, force: bool = False, repo: GitRepository | None = None) -> SyncTask:
        """A pending task on the repository (`repo`: its row, just read or made, so not read again)."""
        repo = repo if repo is not None and repo.id == repo_id else self.repository(repo_id)
        if repo.status == "archived":
            raise rules.Archived(f"repository {repo.organisation.slug}/{repo.name} is archived")
        with session(self.engine) as db:
            task = SyncTask(task_id=str(uuid.uuid4()), repository_id=repo_id, kind=kind, force=force)
            db.add(task)
            db.flush()
            return task

    def task(self, task_id: str) -> SyncTask:
        with session(self.engine) as db:
            return self._task(db, task_id)

    def task_with_repository(self, task_id: str) -> tuple[SyncTask, GitRepository | None]:
        """A task and its repository's row (None when the repository no longer exists), in one transaction."""
        with session(self.engine) as db:
            task = self._task(db, task_id)
            return task, db.scalar(select(GitRepository).where(GitRepository.id == task.repository_id)
                                   .execution_options(populate_existing=True))

    @staticmethod
    def _task(db: Any, task_id: str) -> SyncTask:
        task = db.scalar(select(SyncTask).where(SyncTask.task_id == task_id))
        if task is None:
            raise rules.NotFound(f"task {task_id!r} does not exist")
        return task  # type: ignore[no-any-return]

    def claim_task(self, task_id: str, worker: str, lease: float,
                   gone: Callable[[str], bool] = lambda _worker: False, task: SyncTask | None = None,
                   repository_status: str = "") -> SyncTask | None:
        """A delivery takes its task, or None: the row is the one judge of whether a message may run, so a
        message that comes twice (sent again by the beat, restored by the broker) never runs a task twice.
        It may when the task is pending, retrying and due (within CLOCK_SLACK: another machine's clock), or
        running but its worker is lost (not heard from for a lease, or `gone(worker)`: seen dead from here).
        The claim is one conditional UPDATE on the row as read (`task`: the row just read, else read here),
        so of two racing deliveries one wins: running, one more attempt, started and heard from now. With
        `repository_status`, the claim sets the repository's status in the same transaction (unless it is
        archived)."""
        task = task if task is not None and task.task_id == task_id else self.task(task_id)
        at = now()
        if task.status == "pending":
            free = True
        elif task.status == "retrying":
            free = task.retry_at is None or task.retry_at <= at + timedelta(seconds=CLOCK_SLACK)
        elif task.status == "running":
            beat = task.heartbeat_at
            free = beat is None or beat < at - timedelta(seconds=lease) or gone(task.worker)
        else:
            free = False
        if not free:
            return None
        with session(self.engine) as db:
            done = db.execute(update(SyncTask).where(and_(
                SyncTask.task_id == task_id, SyncTask.status == task.status, SyncTask.attempts == task.attempts))
                .values(status="running", attempts=SyncTask.attempts + 1, started_at=at, heartbeat_at=at,
                        worker=worker, finished_at=None, retry_at=None).execution_options(synchronize_session=False))
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return None
            if repository_status:
                db.execute(update(GitRepository).where(and_(
                    GitRepository.id == task.repository_id, GitRepository.status != "archived")).values(
                    status=repository_status, error_message="", updated_at=at)
                    .execution_options(synchronize_session=False))
        # The row is the one read, as the UPDATE found it, with what the UPDATE set: not read again.
        task.status, task.attempts, task.started_at, task.heartbeat_at = "running", task.attempts + 1, at, at
        task.worker, task.finished_at, task.retry_at = worker, None, None
        return task

    def hold_task(self, task_id: str, worker: str) -> None:
        """A worker has the task's message and waits to run it (its repository busy): while it stays
        pending, the row says who holds it and when it was last heard from, so that the beat sends it again
        if that worker dies before it claims it."""
        with session(self.engine) as db:
            db.execute(update(SyncTask).where(and_(
                SyncTask.task_id == task_id, SyncTask.status == "pending",
                or_(SyncTask.worker == "", SyncTask.worker == worker))).values(worker=worker, heartbeat_at=now()))

    def retried(self, task_id: str, message: str, retry_at: datetime) -> int:
        """The task failed and runs again at `retry_at`: one more of its retries used; how many now."""
        with session(self.engine) as db:
            db.execute(update(SyncTask).where(SyncTask.task_id == task_id).values(
                status="retrying", error_message=message, retry_at=retry_at, retries=SyncTask.retries + 1))
        return self.task(task_id).retries

    def update_task(self, task_id: str, **fields: Any) -> None:
        with session(self.engine) as db:
            db.execute(update(SyncTask).where(SyncTask.task_id == task_id).values(**fields)
                       .execution_options(synchronize_session=False))

    def stale_tasks(self, lease: float) -> list[SyncTask]:
        """Tasks a worker claimed and stopped reporting on (killed, or its machine lost): to be sent again."""
        cutoff = now() - timedelta(seconds=lease)
        with session(self.engine) as db:
            return list(db.scalars(select(SyncTask).where(and_(
                SyncTask.status == "running", or_(SyncTask.heartbeat_at.is_(None), SyncTask.heartbeat_at < cutoff)))))

    def busy_repositories(self) -> set[int]:
        """Repositories with a task pending, running or retrying."""
        with session(self.engine) as db:
            return set(db.scalars(select(SyncTask.repository_id).where(
                SyncTask.status.in_(("pending", "running", "retrying"))).distinct()))

    def tasks_sent_since(self, after_id: int) -> tuple[int, dict[int, datetime]]:
        """The newest task row id, and each repository's newest task time among rows after `after_id`: the
        scheduler reads only what is new at every tick (the primary key's index), not the whole history."""
        with session(self.engine) as db:
            rows = db.execute(select(SyncTask.repository_id, func.max(SyncTask.id), func.max(SyncTask.created_at))
                              .where(SyncTask.id > after_id).group_by(SyncTask.repository_id)).all()
        newest = max((row[1] for row in rows), default=after_id)
        return newest, {row[0]: aware(row[2]) or now() for row in rows}

    def overdue_retries(self, lease: float) -> list[SyncTask]:
        """Tasks waiting for a retry whose time passed a lease ago: their delayed message died with a worker."""
        cutoff = now() - timedelta(seconds=lease)
        with session(self.engine) as db:
            return list(db.scalars(select(SyncTask).where(and_(
                SyncTask.status == "retrying", or_(SyncTask.retry_at.is_(None), SyncTask.retry_at < cutoff)))))

    def lost_pending(self, lease: float, queue_empty: Callable[[], bool]) -> list[SyncTask]:
        """Pending tasks whose message is lost: held by a worker not heard from for a lease (killed before it
        claimed the task), or, when the queue is empty (`queue_empty`, asked only then), not held by any
        worker a lease after they were made or last sent. A task still queued behind others is not one."""
        cutoff = now() - timedelta(seconds=lease)
        with session(self.engine) as db:
            rows = list(db.scalars(select(SyncTask).where(and_(
                SyncTask.status == "pending", or_(SyncTask.heartbeat_at < cutoff, and_(
                    SyncTask.heartbeat_at.is_(None), SyncTask.created_at < cutoff))))))
        held = [task for task in rows if task.worker]
        unheld = [task for task in rows if not task.worker]
        return held + (unheld if unheld and queue_empty() else [])

    def resent(self, task: SyncTask) -> None:
        """The beat sent the task again: its lease starts again (a pending one no longer held by anyone)."""
        if task.status == "retrying":
            self.update_task(task.task_id, retry_at=now())
        elif task.status == "pending":
            self.update_task(task.task_id, worker="", heartbeat_at=now())
        else:
            self.update_task(task.task_id, heartbeat_at=now())

    def prune_tasks(self, older_than: timedelta, keep: int) -> int:
        """Delete finished tasks that finished before `older_than` ago, but keep the newest `keep` finished
        ones of each repository whatever their age; how many went."""
        cutoff = now() - older_than
        rank = func.row_number().over(partition_by=SyncTask.repository_id, order_by=SyncTask.id.desc())
        ranked = (select(SyncTask.id.label("id"), rank.label("rank"))
                  .where(SyncTask.status.in_(FINISHED)).subquery())
        with session(self.engine) as db:
            done = db.execute(delete(SyncTask).where(and_(
                SyncTask.status.in_(FINISHED), SyncTask.finished_at < cutoff,
                SyncTask.id.in_(select(ranked.c.id).where(ranked.c.rank > keep)))))
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    def counts(self) -> dict[str, dict[str, int]]:
        """Repositories by status and tasks by status: the gauges of /metrics."""
        with session(self.engine) as db:
            repos = dict(db.execute(select(GitRepository.status, func.count()).group_by(GitRepository.status)).all())
            tasks = dict(db.execute(select(SyncTask.status, func.count()).group_by(SyncTask.status)).all())
        return {"repositories": {k: int(v) for k, v in repos.items()}, "tasks": {k: int(v) for k, v in tasks.items()}}

    def task_stats(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], Durations]]:
        """Tasks by (kind, status), and the durations of the finished ones by (kind, outcome): two
        aggregate queries, so that any API process counts the tasks of every worker."""
        if self.engine.dialect.name == "sqlite":
            seconds: Any = (func.julianday(SyncTask.finished_at) - func.julianday(SyncTask.started_at)) * 86400.0
        else:
            seconds = func.date_part("epoch", SyncTask.finished_at - SyncTask.started_at)
        within = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in TASK_BUCKETS]
        with session(self.engine) as db:
            counted = db.execute(select(SyncTask.kind, SyncTask.status, func.count())
                                 .group_by(SyncTask.kind, SyncTask.status)).all()
            timed = db.execute(select(SyncTask.kind, SyncTask.status, func.count(), func.sum(seconds), *within)
                               .where(and_(SyncTask.status.in_(FINISHED), SyncTask.started_at.is_not(None),
                                           SyncTask.finished_at.is_not(None)))
                               .group_by(SyncTask.kind, SyncTask.status)).all()
        counts = {(str(row[0]), str(row[1])): int(row[2]) for row in counted}
        durations = {(str(row[0]), str(row[1])): Durations(
            int(row[2]), max(0.0, float(row[3] or 0.0)), tuple(int(n or 0) for n in row[4:])) for row in timed}
        return counts, durations


def aware(value: datetime | None) -> datetime | None:
    """A time read by a column query (not a row object): SQLite gives it without a zone; it is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
