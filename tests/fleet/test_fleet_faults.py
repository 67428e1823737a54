"""Tasks through real worker and beat processes, on SQLite with the embedded broker and on PostgreSQL with
Redis, from the loopback git server with a token: a migration and syncs end to end, a worker killed in the
middle of a clone, Redis restarted with tasks queued, a source that is down, two syncs of one repository at
once, and the token nowhere it must not be."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from committer.fleet import queue
from tests.conftest import wait_for
from tests.fleet.conftest import TOKEN, Fleet, Postgres, RedisServer, _pg_bin, descendants, seed
from tests.gitserver import GitHTTPServer

pytestmark = pytest.mark.integration


def leftovers(fleet: Fleet) -> list[str]:
    """Half clones and repositories moved aside (`.<name>.incoming-*`, `.<name>.old-*`)."""
    return [p.name for p in (fleet.config.repos_dir / "team").glob(".*") if ".incoming" in p.name or ".old" in p.name]


def token_nowhere(fleet: Fleet, postgres: Postgres | None = None) -> None:
    """Not in the database, the broker's keys and values or files, the logs, any process's argv, nor the
    repositories' files (their config)."""
    places: dict[str, bytes] = {}
    state = fleet.config.state_dir
    for path in state.glob("*.db*"):
        places[str(path)] = path.read_bytes()
    if postgres is not None:
        database = fleet.config.db.rsplit("/", 1)[1]
        places["pg_dump"] = subprocess.run(
            [_pg_bin("pg_dump"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", database],
            capture_output=True, check=True, timeout=60).stdout
        assert b"git_synctask" in places["pg_dump"]
    if fleet.redis is not None:
        places["redis"] = fleet.redis.everything()
    for path in fleet.logs.iterdir():
        places[str(path)] = path.read_bytes()
    for path in (fleet.config.repos_dir / "team").rglob("*"):
        if path.is_file() and path.stat().st_size < 1 << 20:
            places[str(path)] = path.read_bytes()
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            places[cmdline] = Path(cmdline).read_bytes()
        except OSError:
            continue  # gone meanwhile
    found = [where for where, data in places.items() if TOKEN.encode() in data]
    assert not found, f"the token is in {found}"
    assert any(b"task_id" in data for where, data in places.items() if where.startswith(str(fleet.logs)))


def test_a_migration_then_syncs_end_to_end(fleet: Fleet, source: GitHTTPServer,
                                           request: pytest.FixtureRequest) -> None:
    fleet.config = replace(fleet.config, sync_interval=1.0)  # the beat syncs every second
    repo_id = fleet.repository("app")
    empty_id = fleet.repository("notes", source=False)
    fleet.start("worker")
    migrate = fleet.submit(repo_id, "migrate")
    initialize = fleet.submit(empty_id, "initialize")
    assert fleet.wait_task(migrate).commits_synced == 3
    fleet.wait_task(initialize)
    repo = fleet.store.repository(repo_id)
    assert (repo.status, repo.total_commits, repo.default_branch) == ("active", 3, "main")
    assert [(b.name, b.commit_hash, b.is_default) for b in repo.branches] == [("main", source.head(), True)]
    assert fleet.store.repository(empty_id).status == "active"

    seed(source, commits=2)
    fleet.start("beat")  # the scheduler's syncs bring the new commits

    def synced() -> bool:
        return fleet.store.repository(repo_id).last_commit_hash == source.head()

    wait_for(synced, timeout=30, what="a scheduled sync to bring the new commits", interval=0.1)
    assert fleet.store.repository(repo_id).total_commits == 5
    assert fleet.store.commit_count(repo_id) == 5
    assert fleet.store.repository(empty_id).status == "active"  # no source: never scheduled
    assert leftovers(fleet) == []
    token_nowhere(fleet, request.getfixturevalue("postgres") if fleet.redis else None)


@pytest.mark.faults
def test_a_worker_killed_in_the_middle_of_a_migration(fleet: Fleet, source: GitHTTPServer,
                                                      request: pytest.FixtureRequest) -> None:
    repo_id = fleet.repository("app", mirror=True)
    worker = fleet.start("worker")
    fleet.start("beat")
    source.set_mode("hang")  # the clone starts and waits for the server's answer
    task_id = fleet.submit(repo_id, "migrate")
    wait_for(lambda: source.hanging >= 1 and fleet.store.task(task_id).status == "running", timeout=30,
             what="the clone to be under way")
    fleet.kill(worker)
    source.set_mode("normal")
    fleet.start("worker")
    done = fleet.wait_task(task_id, timeout=40)  # the beat sees the lease run out and sends it again
    assert done.attempts >= 2 and done.commits_synced == 3
    repo = fleet.store.repository(repo_id)
    assert repo.status == "active" and repo.last_commit_hash == source.head()
    assert leftovers(fleet) == []
    token_nowhere(fleet, request.getfixturevalue("postgres") if fleet.redis else None)


@pytest.mark.faults
def test_a_worker_killed_holding_a_task_it_had_not_claimed(fleet: Fleet, source: GitHTTPServer) -> None:
    """The worker took the message and waits for the repository (busy here): killed then, its message is
    gone with it (the embedded broker) or held by Redis for an hour, and the row still says pending. The
    beat sends it again a lease later, another worker runs it once; the same message sent yet again changes
    nothing."""
    fleet.config = replace(fleet.config, lease=1.5)
    repo_id = fleet.repository("app")
    lock = fleet.config.state_dir / "locks" / f"{repo_id}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the repository busy with another task
        worker = fleet.start("worker")
        task_id = fleet.submit(repo_id, "migrate")
        wait_for(lambda: fleet.store.task(task_id).worker != "", timeout=30, what="a worker to hold the task")
        fleet.kill(worker)
    finally:
        os.close(fd)
    assert fleet.store.task(task_id).status == "pending"
    fleet.start("worker")
    fleet.start("beat")
    done = fleet.wait_task(task_id, timeout=30)
    assert (done.attempts, done.retries, done.commits_synced) == (1, 0, 3)
    assert fleet.store.repository(repo_id).status == "active"

    queue.send(fleet.config, done)  # a duplicate: the broker giving the first message back, say
    wait_for(lambda: sum(task_id in line and "task finished" in line for line in fleet.output().splitlines()) >= 2,
             timeout=30, what="the duplicate to be delivered")
    again = fleet.store.task(task_id)
    assert (again.status, again.attempts, again.finished_at) == ("succeeded", 1, done.finished_at)


def pool_processes(worker: subprocess.Popen[bytes]) -> list[int]:
    """The worker's pool processes (forks of it, running tasks) and everything they started."""
    pool = []
    for pid in descendants(worker.pid):
        with contextlib.suppress(OSError):
            if b"committer.fleet" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pool.append(pid)
    return [*pool, *(child for pid in pool for child in descendants(pid))]


@pytest.mark.faults
def test_a_worker_killed_under_a_task_costs_it_none_of_its_retries(tmp_path: Path, source: GitHTTPServer) -> None:
    """Killed in the middle of a clone twice (its pool process, which Celery sees die and puts the message
    back; then the whole worker, whose task the beat sends again a lease later), then a source that is down:
    the task is still retried three times. A kill is no failure of the task's."""
    fleet = Fleet(tmp_path, "", "", None, source)
    fleet.config = replace(fleet.config, retry_base=0.1, lease=1.5)
    try:
        repo_id = fleet.repository("app", mirror=True)
        source.set_mode("hang")
        task_id = fleet.submit(repo_id, "migrate")
        fleet.start("beat")
        worker = fleet.start("worker")

        def under_way(attempt: int) -> None:
            wait_for(lambda: source.hanging >= attempt and fleet.store.task(task_id).attempts == attempt,
                     timeout=30, what=f"attempt {attempt} to be under way")

        under_way(1)
        for pid in pool_processes(worker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        under_way(2)  # its pool process seen dead from this host: claimed again at once, no lease to wait
        fleet.kill(worker)
        source.set_mode("503")
        last = fleet.start("worker")
        down = fleet.wait_task(task_id, status="failed", timeout=40)
        assert (down.attempts, down.retries) == (3 + queue.MAX_RETRIES, queue.MAX_RETRIES)
        assert "503" in down.error_message
        assert leftovers(fleet) == []
        last.send_signal(signal.SIGTERM)  # a warm shutdown
        assert last.wait(30) == 0
        lines = [json.loads(line) for path in fleet.logs.iterdir()  # every line of every process is JSON
                 for line in path.read_text().splitlines() if line.strip()]
        assert any(line["event"] == "worker stopping" and line["how"] == "warm" for line in lines)
        assert any(line.get("error", "").startswith("WorkerLostError") for line in lines)  # its pool process
    finally:
        fleet.stop()


@pytest.mark.faults
def test_a_source_down_is_retried_three_times_then_failed_and_a_later_sync_recovers(
        fleet: Fleet, source: GitHTTPServer) -> None:
    repo_id = fleet.repository("app")
    fleet.start("worker")
    fleet.wait_task(fleet.submit(repo_id, "migrate"))
    source.set_mode("503")
    down = fleet.wait_task(fleet.submit(repo_id, "sync"), status="failed", timeout=40)
    assert down.attempts == 1 + queue.MAX_RETRIES
    assert down.error_message and "\n" not in down.error_message.strip()
    repo = fleet.store.repository(repo_id)
    assert repo.status == "failed" and repo.error_message == down.error_message

    source.set_mode("normal")
    seed(source, commits=1)
    back = fleet.wait_task(fleet.submit(repo_id, "sync"))
    assert back.commits_synced == 1
    repo = fleet.store.repository(repo_id)
    assert (repo.status, repo.error_message, repo.total_commits) == ("active", "", 4)


def test_two_syncs_of_one_repository_run_one_after_the_other(fleet: Fleet, source: GitHTTPServer) -> None:
    repo_id = fleet.repository("app")
    fleet.start("worker", "--concurrency", "2")
    fleet.wait_task(fleet.submit(repo_id, "migrate"))
    seed(source, commits=2)
    first, second = fleet.submit(repo_id, "sync"), fleet.submit(repo_id, "sync")
    a, b = fleet.wait_task(first), fleet.wait_task(second)
    spans = sorted([(a.started_at, a.finished_at), (b.started_at, b.finished_at)])
    assert spans[0][1] <= spans[1][0], f"the syncs overlapped: {spans}"
    assert a.commits_synced + b.commits_synced == 2
    assert fleet.store.repository(repo_id).total_commits == 5


@pytest.mark.faults
def test_redis_restarted_with_tasks_queued_loses_none(tmp_path: Path, source: GitHTTPServer, redis: RedisServer,
                                                     postgres_url: str) -> None:
    fleet = Fleet(tmp_path, postgres_url, redis.url, redis, source)
    try:
        repos = [fleet.repository(f"app{n}") for n in range(4)]
        fleet.start("worker")
        source.set_mode("hang")  # the first migration holds the worker; the others wait in Redis
        tasks = [fleet.submit(repo_id, "migrate") for repo_id in repos]
        wait_for(lambda: source.hanging >= 1, timeout=30, what="the first clone to be under way")
        assert int(redis.cli("LLEN", queue.QUEUE)) >= 2
        redis.stop()
        redis.start()  # the same port and data directory: the queue comes back from the append-only file
        assert int(redis.cli("LLEN", queue.QUEUE)) >= 2
        source.set_mode("normal")
        for task_id in tasks:
            fleet.wait_task(task_id, timeout=40)
        assert {fleet.store.repository(repo_id).status for repo_id in repos} == {"active"}
    finally:
        fleet.stop()


def test_the_fleet_suite_has_its_tools() -> None:
    """One line says which real part is missing, rather than a wall of skips."""
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    missing += [tool for tool in ("initdb", "pg_ctl", "pg_dump") if not _pg_bin(tool)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/system-deps.sh installs them)")
