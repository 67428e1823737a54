"""The scheduler's decisions, on rows and times handed in: every repository once an interval, at its own
phase, never while a task of its is open; the beat's store queries behind them on a real SQLite file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
