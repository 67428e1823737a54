"""Delivery without workers: what a message carries (ids, nothing else), where it goes on each broker, the
repository lock, and a broker that is away for a moment or for good."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from committer.fleet import processes, queue
from committer.fleet.config import FleetConfig
from committer.fleet.store import NewRepository
from tests.conftest import finishes, wait_for
from tests.fleet.conftest import RedisServer, free_port

SOURCE = "https://example.com/team/app.git"


def made(config: FleetConfig) -> tuple[int, object]:
    store = processes.prepare(config)
    org = store.create_organisation("team")
    repo = store.create_repository(NewRepository(name="app", organisation_id=org.id, source_url=SOURCE,
                                                 credential="github-token"))
    return repo.id, store


def test_the_app_delivers_late_and_never_loses_a_message(tmp_path: Path) -> None:
    config = FleetConfig(repos_dir=tmp_path, git_timeout=1800, retry_base=60)
    app = queue.make(config)
    for kind, name in queue.TASKS.items():
        task = app.tasks[name]
        assert (task.acks_late, task.reject_on_worker_lost, task.max_retries) == (True, True, 3), kind
        assert task.time_limit == 1800 and task.soft_time_limit < 1800
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_url == f"sqla+sqlite:///{tmp_path}/.fleet/broker.db"
    redis = queue.make(FleetConfig(repos_dir=tmp_path, broker="redis://127.0.0.1:6399/0"))
    timeout = redis.conf.broker_transport_options["visibility_timeout"]
    assert timeout > 1800 + 60 + 120 + 240  # above the time limit and the longest retry delay


def test_a_message_on_the_embedded_broker_carries_ids_only(tmp_path: Path) -> None:
    config = FleetConfig(repos_dir=tmp_path / "repos")
    repo_id, store = made(config)
    migrate = store.new_task(repo_id, "migrate", force=True)  # type: ignore[attr-defined]
    sync = store.new_task(repo_id, "sync")  # type: ignore[attr-defined]
    queue.send(config, migrate)
    queue.send(config, sync)
    broker = (tmp_path / "repos" / ".fleet" / "broker.db").read_bytes()
    assert migrate.task_id.encode() in broker and sync.task_id.encode() in broker
    assert b"example.com" not in broker and b"github-token" not in broker
    assert queue.arguments(migrate) == [repo_id, True, migrate.task_id]
    assert queue.arguments(sync) == [repo_id, sync.task_id]


def test_a_message_on_redis_and_a_broker_back_after_a_moment(tmp_path: Path, redis: RedisServer) -> None:
    config = FleetConfig(repos_dir=tmp_path / "repos", broker=redis.url)
    repo_id, store = made(config)
    task = store.new_task(repo_id, "sync")  # type: ignore[attr-defined]
    redis.stop()
    sender = threading.Thread(target=queue.send, args=(config, task))
    sender.start()
    time.sleep(0.5)  # the broker away while the message is sent: the restart below is the point of the test
    redis.start()
    sender.join(15)
    assert not sender.is_alive()
    wait_for(lambda: redis.cli("LLEN", queue.QUEUE).strip() == "1", what="the message in redis")
    message = json.loads(redis.cli("LINDEX", queue.QUEUE, "0"))
    assert message["headers"]["id"] == task.task_id
    assert message["headers"]["task"] == "sync_repository"
    assert "example.com" not in json.dumps(message)


def test_whether_the_queue_is_empty_on_each_broker(tmp_path: Path, redis: RedisServer) -> None:
    """What the beat asks before it sends again a pending task no worker holds: empty, not empty, and a
    broker that does not answer is not taken for an empty queue."""
    for name, broker in (("embedded", ""), ("redis", redis.url)):
        config = FleetConfig(repos_dir=tmp_path / name, broker=broker)
        repo_id, store = made(config)
        assert queue.queue_empty(config) is True, name
        queue.send(config, store.new_task(repo_id, "sync"))  # type: ignore[attr-defined]
        assert queue.queue_empty(config) is False, name
    away = FleetConfig(repos_dir=tmp_path / "away", broker=f"redis://127.0.0.1:{free_port()}/0")
    assert finishes(lambda: queue.queue_empty(away), timeout=30, what="asking a broker that is away") is False


@pytest.mark.slow
def test_a_broker_away_for_good_is_one_line_without_its_password(tmp_path: Path) -> None:
    config = FleetConfig(repos_dir=tmp_path / "repos", broker=f"redis://:hunter2pw@127.0.0.1:{free_port()}/0")
    repo_id, store = made(config)
    task = store.new_task(repo_id, "sync")  # type: ignore[attr-defined]
    with pytest.raises(queue.BrokerDown) as caught:
        finishes(lambda: queue.send(config, task), 30, "send to a broker that is down")
    message = str(caught.value)
    assert "hunter2pw" not in message and "\n" not in message and task.task_id in message


def test_the_repository_lock_makes_a_second_task_wait(tmp_path: Path) -> None:
    config = FleetConfig(repos_dir=tmp_path)
    order: list[str] = []
    entered = threading.Event()

    def second() -> None:
        with queue.repository_lock(config, 7):
            order.append("second")

    with queue.repository_lock(config, 7):
        waiter = threading.Thread(target=second)
        waiter.start()
        with queue.repository_lock(config, 8):  # another repository: not held up
            entered.set()
        waiter.join(0.3)
        assert waiter.is_alive() and entered.is_set()
        order.append("first")
    waiter.join(10)
    assert order == ["first", "second"]
    assert (tmp_path / ".fleet" / "locks" / "7.lock").exists()


def test_a_process_with_a_bad_setting_says_so_in_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT), "GIT_REPOS_DIR": str(tmp_path), "COMMITTER_FLEET_RETRY_BASE": "soon"}
    proc = subprocess.run([sys.executable, "-m", "committer.fleet", "worker"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "retry_base" in proc.stderr, proc.stderr


def test_each_app_runs_its_own_configuration(tmp_path: Path) -> None:
    first = queue.make(FleetConfig(repos_dir=tmp_path / "one"))
    second = queue.make(FleetConfig(repos_dir=tmp_path / "two"))
    assert first.tasks["sync_repository"] is not second.tasks["sync_repository"]
    assert first.tasks["sync_repository"].run is not second.tasks["sync_repository"].run
