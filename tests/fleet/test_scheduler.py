"""The scheduler's decisions, on rows and times handed in: every repository once an interval, at its own
phase, never while a task of its is open; the beat's store queries behind them on a real SQLite file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from committer.fleet import db, schema
from committer.fleet.scheduler import Candidate, due, last_slot, phase
from committer.fleet.store import NewRepository, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = 60.0
INTERVAL = 15 * MINUTE


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_phases_spread_repositories_over_the_interval() -> None:
    phases = sorted(phase(repo_id, INTERVAL) for repo_id in range(1, 101))
    assert all(0 <= p < INTERVAL for p in phases)
    gaps = [b - a for a, b in itertools.pairwise(phases)]
    assert max(gaps) < INTERVAL / 20  # no long quiet stretch, no crowd: at most a few per 45 s
    assert phase(7, INTERVAL) == phase(7, INTERVAL)


def test_a_repository_is_due_once_per_interval_at_its_own_slot() -> None:
    candidates = [Candidate(repo_id, INTERVAL) for repo_id in range(1, 51)]
    last: dict[int, datetime] = {c.repository_id: at(0) for c in candidates}
    sends: dict[int, list[datetime]] = {c.repository_id: [] for c in candidates}
    per_tick = []
    tick = 5.0
    for step in range(1, int(3 * INTERVAL / tick) + 1):
        now = at(step * tick)
        chosen = due(candidates, set(), last, now)
        per_tick.append(len(chosen))
        for repo_id in chosen:
            last[repo_id] = now
            sends[repo_id].append(now)
    for repo_id, times in sends.items():
        assert len(times) in (2, 3), (repo_id, times)  # once an interval over three intervals
        gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
        assert all(INTERVAL - tick <= g <= INTERVAL + tick for g in gaps), (repo_id, gaps)
    assert max(per_tick) <= 2  # 50 repositories over 180 ticks: spread, not all at once


def test_never_while_a_task_is_open_and_at_once_after() -> None:
    repo = Candidate(3, INTERVAL)
    late = at(2 * INTERVAL)
    assert due([repo], {3}, {3: at(0)}, late) == []
    assert due([repo], set(), {3: at(0)}, late) == [3]


def test_a_new_migration_counts_as_sent_and_no_history_means_due() -> None:
    repo = Candidate(4, INTERVAL)
    now = at(10 * INTERVAL)
    assert due([repo], set(), {}, now) == [4]  # never synced, never sent: now
    assert due([repo], set(), {4: now - timedelta(seconds=1)}, now) == []  # just migrated
    synced = Candidate(4, INTERVAL, last_synced_at=now - timedelta(seconds=1))
    assert due([synced], set(), {}, now) == []


def test_each_repository_keeps_its_own_interval() -> None:
    fast, slow = Candidate(1, MINUTE), Candidate(2, INTERVAL)
    sent = {1: at(0), 2: at(0)}
    now = at(2 * MINUTE)
    assert due([fast, slow], set(), sent, now) == [1]


def test_the_beat_down_for_hours_sends_one_sync_a_repository() -> None:
    repo = Candidate(5, MINUTE)
    now = at(5 * 3600)
    assert last_slot(5, MINUTE, now) <= now
    assert now - last_slot(5, MINUTE, now) < timedelta(minutes=1)
    assert due([repo], set(), {5: at(0)}, now) == [5]
    assert due([repo], set(), {5: now}, now + timedelta(seconds=5)) == []


def test_the_store_gives_the_scheduler_its_rows(tmp_path: Path) -> None:
    engine = db.engine(f"sqlite:///{tmp_path / 'fleet.db'}")
    schema.upgrade(engine)
    store = Store(engine, tmp_path / "repos")
    org = store.create_organisation("team")
    make = {name: store.create_repository(NewRepository(name=name, organisation_id=org.id,
                                                          source_url="https://example.com/x.git")).id
            for name in ("active", "failed-after", "failed-never", "archived", "pending")}
    empty = store.create_repository(NewRepository(name="empty", organisation_id=org.id)).id
    store.set_status(make["active"], "active", last_synced_at=T0)
    store.set_status(make["failed-after"], "failed", "fetch failed", last_synced_at=T0)
    store.set_status(make["failed-never"], "failed", "clone failed")
    store.set_status(make["archived"], "archived", last_synced_at=T0)
    store.set_status(empty, "active")
    rows = store.schedulable(900)
    assert {row[0] for row in rows} == {make["active"], make["failed-after"]}
    assert all(row[1] == 900 and row[2] == T0 for row in rows)

    first = store.new_task(make["active"], "sync")
    newest, sent = store.tasks_sent_since(0)
    assert newest == first.id and sent == {make["active"]: first.created_at}
    assert store.busy_repositories() == {make["active"]}
    store.update_task(first.task_id, status="succeeded")
    assert store.busy_repositories() == set()
    assert store.tasks_sent_since(newest) == (newest, {})
    second = store.new_task(make["failed-after"], "sync")
    store.update_task(second.task_id, status="retrying", retry_at=db.now() - timedelta(seconds=60))
    assert [t.task_id for t in store.overdue_retries(30)] == [second.task_id]
    assert store.overdue_retries(120) == []


def test_the_beat_sends_due_syncs_and_the_tasks_of_dead_workers_once_a_lease(tmp_path: Path) -> None:
    from committer.fleet.config import FleetConfig
    from committer.fleet.processes import Beat
    from committer.fleet.queue import BrokerDown

    config = FleetConfig(repos_dir=tmp_path / "repos", lease=30.0, sync_interval=INTERVAL)
    engine = db.engine(config.db_url)
    config.state_dir.mkdir(parents=True)
    schema.upgrade(engine)
    store = Store(engine, config.repos_dir)
    org = store.create_organisation("team")
    repo = store.create_repository(NewRepository(name="app", organisation_id=org.id,
                                                 source_url="https://example.com/x.git")).id
    store.set_status(repo, "active", last_synced_at=db.now() - timedelta(hours=1))
    sent: list[str] = []
    beat = Beat(config, store, send=lambda _config, task: sent.append(task.task_id))

    beat.tick()
    assert len(sent) == 1 and store.task(sent[0]).kind == "sync"
    beat.tick()
    assert len(sent) == 1  # pending: not again
    store.update_task(sent[0], status="running", heartbeat_at=db.now() - timedelta(seconds=31))
    beat.tick()
    assert sent == [sent[0], sent[0]]  # a dead worker's task, under its own id
    beat.tick()
    assert len(sent) == 2  # its lease starts again: once a lease at most
    store.update_task(sent[0], status="succeeded")
    beat.tick()
    assert len(sent) == 2  # just sent: the next slot is an interval away

    def down(_config: object, _task: object) -> None:
        raise BrokerDown("the broker at redis://127.0.0.1:1/0 did not take task x: refused")

    store.set_status(repo, "active", last_synced_at=db.now() - timedelta(hours=1))
    late = Beat(config, store, send=down)
    failed = late.schedule(db.now() + timedelta(seconds=2 * INTERVAL))
    assert failed == []
    assert store.busy_repositories() == set()  # the unsent task failed: the repository is not stuck
    engine.dispose()


def _beat_world(tmp_path: Path, **settings: object) -> tuple[Any, Store, int]:
    from committer.fleet.config import FleetConfig

    config = FleetConfig(repos_dir=tmp_path / "repos", lease=30.0, sync_interval=INTERVAL, **settings)  # type: ignore[arg-type]
    engine = db.engine(config.db_url)
    config.state_dir.mkdir(parents=True)
    schema.upgrade(engine)
    store = Store(engine, config.repos_dir)
    org = store.create_organisation("team")
    repo = store.create_repository(NewRepository(name="app", organisation_id=org.id,
                                                 source_url="https://example.com/x.git")).id
    return config, store, repo


def test_the_beat_sends_again_a_pending_task_whose_message_was_lost(tmp_path: Path) -> None:
    """Held by a worker not heard from for a lease: sent again, once a lease. Held by none: sent again only
    when the queue is empty (else its message still waits there), once a lease too."""
    from committer.fleet.processes import Beat

    config, store, repo = _beat_world(tmp_path)
    sent: list[str] = []
    empty = [False]
    asked: list[bool] = []

    def queue_empty(_config: object) -> bool:
        asked.append(empty[0])
        return empty[0]

    beat = Beat(config, store, send=lambda _config, task: sent.append(task.task_id), queue_empty=queue_empty)
    held = store.new_task(repo, "sync").task_id
    store.hold_task(held, "host:1")
    beat.recover()
    assert sent == [] and asked == []  # heard from just now; nothing else pending a lease old: queue not asked
    store.update_task(held, heartbeat_at=db.now() - timedelta(seconds=31))
    beat.recover()
    assert sent == [held] and asked == []
    task = store.task(held)
    assert (task.status, task.worker, task.attempts) == ("pending", "", 0)
    beat.recover()
    assert sent == [held] and asked == []  # sent a moment ago: its lease starts again

    store.update_task(held, heartbeat_at=db.now() - timedelta(seconds=31))
    beat.recover()
    assert sent == [held] and asked[-1] is False  # its message waits in a queue that is not empty
    empty[0] = True
    beat.recover()
    assert sent == [held, held]  # the queue is empty and no worker holds it: its message is lost
    beat.recover()
    assert sent == [held, held]  # its lease starts again


def test_the_beat_prunes_finished_tasks_past_the_retention_keeping_the_newest(tmp_path: Path) -> None:
    from committer.fleet import config as fleet_config
    from committer.fleet.processes import TASK_KEEP, Beat

    assert fleet_config.load({}, {"COMMITTER_FLEET_TASK_RETENTION": "7d"}).task_retention == 7 * 86400
    assert fleet_config.load({}, {}).task_retention == 30 * 86400
    config, store, repo = _beat_world(tmp_path, task_retention=86400.0)
    other = store.create_repository(NewRepository(name="other", organisation_id=store.organisations()[0].id)).id
    old = db.now() - timedelta(days=2)
    made = []
    for n in range(TASK_KEEP + 5):
        task = store.new_task(repo, "sync").task_id
        store.update_task(task, status="succeeded" if n % 2 else "failed", finished_at=old)
        made.append(task)
    recent = store.new_task(other, "sync").task_id
    store.update_task(recent, status="succeeded", finished_at=db.now())
    lonely = store.new_task(other, "sync").task_id
    store.update_task(lonely, status="failed", finished_at=old)
    open_task = store.new_task(repo, "sync").task_id
    store.update_task(open_task, status="retrying")

    beat = Beat(config, store, send=lambda _config, _task: None)
    assert beat.prune(at=1000.0) == 5
    assert beat.prune(at=1001.0) == 0  # once an hour
    for task in made[:5]:
        with pytest.raises(Exception, match="does not exist"):
            store.task(task)
    assert all(store.task(t).status in ("succeeded", "failed") for t in made[5:])
    assert store.task(recent) and store.task(lonely) and store.task(open_task).status == "retrying"
