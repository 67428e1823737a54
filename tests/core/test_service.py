"""One life cycle for every worker thread (core.service): start, stop with a deadline, alive, last error;
and the daemon's supervision, into which any Service plugs (a fake one here, real threads throughout)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from committer.core.service import Service, Worker
from committer.core.settings import Settings
from committer.daemon.maintenance import Maintenance
from committer.daemon.service import Daemon
from committer.git.repo import GitRepo
from committer.ops.notify import Notify
from committer.sync.puller import Puller
from committer.sync.pusher import Pusher
from tests.gitserver import wait_for

DEADLINE = 10.0  # generous: stop() returns as soon as the thread ends; this only bounds a broken one


class Idle(Worker):
    """Waits in pause() until stopped."""

    name = "idle"

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0

    def run(self) -> None:
        while not self.stopping:
            self.rounds += 1
            self.pause(60.0)


class Queued(Worker):
    """Waits on a queue, not on pause(): stop() reaches it through interrupt()."""

    name = "queued"

    def __init__(self) -> None:
        super().__init__()
        self.items: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []

    def interrupt(self) -> None:
        self.items.put(None)

    def run(self) -> None:
        while (item := self.items.get()) is not None:
            self.seen.append(item)


class Failing(Worker):
    name = "failing"

    def run(self) -> None:
        raise ValueError("the disk said no")


class Stuck(Worker):
    """Ignores stop() until cut() releases it, as a network call past its deadline would."""

    name = "stuck"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.cuts = 0

    def cut(self) -> float | None:
        self.cuts += 1
        self.release.set()
        return None

    def run(self) -> None:
        self.release.wait()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers started by a test, stopped at its end even when it fails."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop(DEADLINE)


def test_a_worker_runs_on_its_thread_until_stopped_within_its_deadline(workers: list[Worker]) -> None:
    worker = Idle()
    assert not worker.alive() and not worker.started and worker.last_error is None
    workers.append(worker)
    worker.start()
    assert worker.alive() and worker.started
    wait_for(lambda: worker.rounds >= 1, what="the worker's first round")
    worker.stop(DEADLINE)
    assert not worker.alive()
    assert worker.last_error is None and worker.rounds == 1  # pause() ended at once, no second round


def test_a_second_start_while_it_runs_is_refused_and_a_stopped_worker_starts_again(workers: list[Worker]) -> None:
    worker = Idle()
    workers.append(worker)
    worker.start()
    with pytest.raises(RuntimeError, match="idle already started"):
        worker.start()
    worker.stop(DEADLINE)
    worker.start()
    assert worker.alive() and not worker.stopping
    worker.stop(DEADLINE)
    assert not worker.alive()


def test_stop_wakes_a_worker_waiting_elsewhere_through_interrupt(workers: list[Worker]) -> None:
    worker = Queued()
    workers.append(worker)
    worker.start()
    worker.items.put("a")
    wait_for(lambda: worker.seen == ["a"], what="the item taken")
    worker.stop(DEADLINE)
    assert not worker.alive()


def test_a_failing_run_ends_the_thread_and_is_kept_as_last_error() -> None:
    worker = Failing()
    with capture_logs() as logs:
        worker.start()
        wait_for(lambda: not worker.alive(), what="the failed worker to end")
    assert worker.last_error == "ValueError: the disk said no"
    assert [e["worker"] for e in logs if e["event"] == "worker_failed"] == ["failing"]
    worker.stop(DEADLINE)  # stopping an ended worker is harmless
    worker.start()  # and a start clears what ended the last run
    wait_for(lambda: not worker.alive(), what="the second run to fail too")
    assert worker.last_error == "ValueError: the disk said no"


def test_failed_records_and_clears_a_failure_without_ending_the_thread(workers: list[Worker]) -> None:
    worker = Idle()
    workers.append(worker)
    worker.start()
    worker.failed("the remote is down")
    assert worker.last_error == "the remote is down" and worker.alive()
    worker.failed(None)
    assert worker.last_error is None


def test_a_thread_past_its_deadline_is_cut_then_joined() -> None:
    worker = Stuck()
    worker.start()
    worker.stop(0.05)  # it ignores the stop; cut() releases it, and the join waits for it (None)
    assert worker.cuts == 1 and not worker.alive()


def test_the_real_workers_are_services(tmp_path: Path) -> None:
    """Each worker thread of the daemon speaks the one protocol the supervision uses."""
    (tmp_path / "data").mkdir()
    settings = Settings(git_dir=tmp_path / "git", data_dir=tmp_path / "data")
    repo = GitRepo(settings.git_dir, settings.data_dir, "main")
    parts = [Pusher(settings, repo), Puller(settings, repo, lambda: None), Maintenance(repo), Notify(settings)]
    assert all(isinstance(part, Service) for part in parts)
    assert [part.name for part in parts] == ["pusher", "puller", "maintenance", "notify"]


# -- the daemon's supervision, with a fake service ---------------------------------------------------


class FakeLoop:
    """A Service that is not a Worker: its own thread, which the test ends as a crash would."""

    name = "fake"

    def __init__(self) -> None:
        self.crash = threading.Event()
        self.stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set() and not self.crash.wait(0.01):
            pass

    def stop(self, timeout: float | None = None) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def last_error(self) -> str | None:
        return "crashed" if self.crash.is_set() else None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon wired but not run: its supervision and health, as /healthz reads them."""
    (tmp_path / "data").mkdir()
    daemon = Daemon(Settings(git_dir=tmp_path / "git", data_dir=tmp_path / "data"))
    yield daemon
    daemon.wakeup.close()


def test_a_fake_service_plugs_into_the_supervision_and_health_reports_it_down_when_it_dies(daemon: Daemon) -> None:
    fake = FakeLoop()
    assert isinstance(fake, Service)
    daemon.services.add(fake, "push_loop")
    assert daemon.health.report()["push_loop"] == "alive"  # not started yet (start-up): not down
    daemon.services.start_all()
    assert fake.alive()
    report = daemon.health.report()
    assert report["push_loop"] == "alive" and report["healthy"]
    fake.crash.set()
    wait_for(lambda: not fake.alive(), what="the fake service to die")
    report = daemon.health.report()
    assert report["push_loop"] == "down" and not report["healthy"]
    assert report["notify"] == "alive"  # another field's services are not blamed
    assert daemon.services.down() == [fake] and daemon.services.errors() == {"fake": "crashed"}
    assert set(report) == {"healthy", "degraded", "degraded_reasons", "watcher", "observer", "push_loop", "loop",
                           "data_dir_missing", "last_commit_at", "notify", "pull", "backup"}


def test_the_shutdown_pass_stops_a_service_none_of_its_steps_names(daemon: Daemon) -> None:
    """A worker added to the supervision is stopped (joined) at shutdown without a step of its own."""
    fake = daemon.services.add(FakeLoop())
    daemon.services.start_all()
    daemon.services.stop_rest(DEADLINE)
    assert fake.stopped.is_set() and not fake.alive()


def test_a_service_that_starts_itself_is_left_to_its_part_by_start_all(daemon: Daemon) -> None:
    fake = daemon.services.add(FakeLoop(), starts_itself=True)
    daemon.services.start_all()
    assert not fake.alive() and daemon.health.report()["healthy"]


def test_the_pull_loop_reports_its_fetch_failure_as_last_error_and_stops_within_its_deadline(tmp_path: Path) -> None:
    """A real worker on the protocol: failures it retries are its last_error while it keeps running."""
    (tmp_path / "data").mkdir()
    settings = Settings(git_dir=tmp_path / "git" / "k.git", data_dir=tmp_path / "data",
                        remote=f"file://{tmp_path}/missing.git", push_backoff_max=0.2)
    repo = GitRepo(settings.git_dir, settings.data_dir, "main")
    repo.init()
    puller = Puller(settings, repo, lambda: None, fetch_at_start=True)
    puller.start()
    try:
        wait_for(lambda: puller.last_error is not None, what="the first fetch to fail")
        assert puller.alive() and puller.failures >= 1
        assert (puller.fetch_error or {}).get("kind") == "pull"
    finally:
        puller.stop(DEADLINE)
    assert not puller.alive()
