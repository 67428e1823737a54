"""What a sync task does to git and the database: real git, the loopback smart-HTTP server with a token as
the source, a SQLite store in a temporary folder."""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from committer.fleet import db, schema
from committer.fleet.config import FleetConfig
from committer.fleet.db import GitRepository
from committer.fleet.store import NewRepository, Store
from committer.fleet.work import TaskFailed, Work
from committer.git.runner import GitRunner
from tests.conftest import wait_for
from tests.gitserver import USER, GitHTTPServer, git

TOKEN = "ghp_FleetToken0123456789abcdefABCDEF0042"


def fast_import(git_dir: Path, count: int, *, ref: str = "refs/heads/main", start: int = 0, files: bool = True,
                parent: bool = True) -> str:
    """`count` commits on `ref` (after its tip, when it has one and `parent`), written by git fast-import."""
    tip = git("--git-dir", str(git_dir), "for-each-ref", "--format=%(objectname)", ref) if parent else ""
    out = bytearray()
    for i in range(start, start + count):
        message = f"change {i}\n".encode()
        out += f"commit {ref}\nauthor Ann Author <ann@example.com> {1_700_000_000 + i} +0000\n".encode()
        out += f"committer Cy <cy@example.com> {1_700_000_000 + i} +0000\n".encode()
        out += f"data {len(message)}\n".encode() + message
        if i == start and tip:
            out += f"from {tip}\n".encode()
        if files:
            body = f"line {i}\n".encode()
            out += f"M 644 inline notes/{i % 7}.txt\ndata {len(body)}\n".encode() + body
        out += b"\n"
    git("--git-dir", str(git_dir), "fast-import", "--quiet", "--force", input=bytes(out))
    return git("--git-dir", str(git_dir), "rev-parse", ref)


@dataclasses.dataclass
class World:
    tmp: Path
    server: GitHTTPServer
    store: Store
    config: FleetConfig
    creds: Path
    db_file: Path

    def repository(self, name: str, *, url: str | None = None, mode: str = "bare", credential: str = "gh",
                   source_type: str = "github") -> GitRepository:
        org = self.store.organisations()[0]
        return self.store.create_repository(NewRepository(
            name=name, organisation_id=org.id, source_url=self.server.url if url is None else url,
            source_type=source_type, credential=credential, is_mirror=mode == "mirror", is_bare=mode != "regular"))

    def task(self, repo: GitRepository, kind: str, force: bool = False) -> str:
        return self.store.new_task(repo.id, kind, force).task_id

    def run(self, repo: GitRepository, kind: str, force: bool = False, **config: Any) -> int:
        work = Work(dataclasses.replace(self.config, **config), self.store, worker="test-worker")
        return work.run(self.task(repo, kind, force))

    def fresh(self, repo: GitRepository) -> GitRepository:
        return self.store.repository(repo.id)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    server = GitHTTPServer(tmp_path / "served", token=TOKEN)
    fast_import(server.repo, 3)
    fast_import(server.repo, 1, ref="refs/heads/dev", start=100)
    git("--git-dir", str(server.repo), "tag", "v1", "main~1")
    server.start()
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "gh").write_text(TOKEN + "\n")
    db_file = tmp_path / "fleet.db"
    engine = db.engine(f"sqlite:///{db_file}")
    schema.upgrade(engine)
    config = FleetConfig(repos_dir=tmp_path / "repos", credentials_dir=creds, lease=0.3, git_timeout=60)
    store = Store(engine, config.repos_dir)
    store.create_organisation("acme")
    try:
        yield World(tmp_path, server, store, config, creds, db_file)
    finally:
        server.stop()
        engine.dispose()


def refs(git_dir: Path, *patterns: str) -> str:
    return git("--git-dir", str(git_dir), "for-each-ref", "--format=%(objectname) %(refname)", *patterns)


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_initialize_makes_an_empty_bare_or_regular_repository_on_main(world: World) -> None:
    """initialize: an empty repository (bare or regular) under {slug}/{name}, default branch main, active."""
    bare = world.repository("empty.git", url="", credential="")
    regular = world.repository("work", url="", credential="", mode="regular")
    assert world.run(bare, "initialize") == 0
    assert world.run(regular, "initialize") == 0
    path = world.config.repos_dir / "acme" / "empty.git"
    assert (path / "objects").is_dir() and not (path / ".git").exists()
    assert git("--git-dir", str(path), "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git("--git-dir", str(path), "rev-parse", "--is-bare-repository") == "true"
    work = world.config.repos_dir / "acme" / "work"
    assert git("--git-dir", str(work / ".git"), "symbolic-ref", "HEAD") == "refs/heads/main"
    for repo in (bare, regular):
        row = world.fresh(repo)
        assert (row.status, row.default_branch, row.total_commits, row.branches) == ("active", "main", 0, [])
    assert siblings(path) == ["work"]  # nothing left beside them


@pytest.mark.parametrize("mode", ["mirror", "bare", "regular"])
def test_migrate_clones_the_source_with_a_token_credential(world: World, mode: str) -> None:
    """migrate: the source cloned (mirror, bare or regular) with the token, its branches, head and every commit
    recorded, the repository active and the task succeeded."""
    repo = world.repository(f"proj-{mode}", mode=mode)
    task_id = world.task(repo, "migrate")
    work = Work(world.config, world.store, worker="w1")
    assert work.run(task_id) == 4
    path = Path(repo.local_path)
    git_dir = path if mode != "regular" else path / ".git"
    upstream = world.server.repo
    if mode == "mirror":
        assert refs(git_dir) == refs(upstream)
    elif mode == "bare":
        assert refs(git_dir, "refs/heads", "refs/tags") == refs(upstream)
    else:
        assert (path / "notes" / "2.txt").read_text() == "line 2\n"
        assert git("--git-dir", str(git_dir), "rev-parse", "HEAD") == world.server.head()
    row = world.fresh(repo)
    assert row.status == "active" and row.error_message == "" and row.last_synced_at is not None
    assert row.total_commits == 4 and row.default_branch == "main"
    assert row.last_commit_hash == world.server.head()
    expected = {("main", world.server.head(), True)} if mode == "regular" else {
        ("main", world.server.head(), True), ("dev", world.server.head("dev"), False)}
    assert {(b.name, b.commit_hash, b.is_default) for b in row.branches} == expected
    assert world.store.commit_count(repo.id) == 4
    task = world.store.task(task_id)
    assert (task.status, task.commits_synced, task.attempts, task.worker, task.error_message) == (
        "succeeded", 4, 1, "w1", "")
    assert task.started_at is not None and task.finished_at is not None and task.heartbeat_at is not None
    assert siblings(path) == []


def test_commits_are_imported_with_author_subject_and_utc_time(world: World) -> None:
    """Every commit row carries its sha, author, email, subject and an aware UTC time."""
    repo = world.repository("history")
    world.run(repo, "migrate")
    with sqlite3.connect(world.db_file) as con:
        rows = con.execute("select sha, author_name, author_email, subject from git_gitcommit "
                           "where repository_id = ? order by committed_at", (repo.id,)).fetchall()
    assert rows[0] == (git("--git-dir", str(world.server.repo), "rev-parse", "main~2"), "Ann Author",
                       "ann@example.com", "change 0")
    assert [r[3] for r in rows] == ["change 0", "change 1", "change 2", "change 100"]


def test_sync_counts_new_upstream_commits_and_imports_only_those(world: World) -> None:
    """sync: the commits the source gained are counted and imported; the history imported before is not
    read again (a row removed by hand stays removed)."""
    repo = world.repository("synced", mode="mirror")
    world.run(repo, "migrate")
    first = git("--git-dir", str(world.server.repo), "rev-parse", "main~2")
    with sqlite3.connect(world.db_file) as con:
        con.execute("delete from git_gitcommit where sha = ?", (first,))
    new_tip = fast_import(world.server.repo, 3, start=10)
    assert world.run(repo, "sync") == 3
    row = world.fresh(repo)
    assert (row.total_commits, row.last_commit_hash, row.status) == (7, new_tip, "active")
    assert world.store.commit_count(repo.id) == 3 + 3  # the 3 new ones, and not the one removed
    assert world.run(repo, "sync") == 0  # nothing new: nothing counted


def test_commits_an_attempt_fetched_but_did_not_import_are_imported_by_the_next(world: World) -> None:
    """An attempt killed between its fetch and its import: the next one still counts and imports those
    commits (the tips recorded in the database, not those on disk, say what was imported)."""
    repo = world.repository("halfway", mode="mirror")
    world.run(repo, "migrate")
    fast_import(world.server.repo, 2, start=80)
    git("--git-dir", repo.local_path, "fetch", "--quiet", str(world.server.repo), "+refs/*:refs/*")
    assert world.run(repo, "sync") == 2
    assert world.store.commit_count(repo.id) == 6


def test_sync_of_a_regular_repository_fast_forwards_and_refuses_a_diverged_branch(world: World) -> None:
    """A regular repository's checked-out branch is fast-forwarded; one with local commits is refused."""
    repo = world.repository("checkout", mode="regular")
    world.run(repo, "migrate")
    path = Path(repo.local_path)
    fast_import(world.server.repo, 2, start=20)
    assert world.run(repo, "sync") == 2
    assert (path / "notes" / f"{21 % 7}.txt").read_text() == "line 21\n"
    git("-C", str(path), "commit", "--quiet", "--allow-empty", "-m", "local")
    fast_import(world.server.repo, 1, start=30)
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "sync")
    assert failed.value.retry is False
    assert "branch main" in failed.value.message and "diverged" in failed.value.message


def test_sync_without_a_source_reads_what_was_pushed_into_the_repository(world: World) -> None:
    """A repository with no source (initialised, then pushed to by a committer daemon): a sync records its
    branches and imports the commits it received."""
    repo = world.repository("pushed.git", url="", credential="")
    world.run(repo, "initialize")
    tip = fast_import(Path(repo.local_path), 5)
    assert world.run(repo, "sync") == 5
    row = world.fresh(repo)
    assert (row.total_commits, row.last_commit_hash, [b.name for b in row.branches]) == (5, tip, ["main"])
    assert world.store.commit_count(repo.id) == 5


class ArchivingStore(Store):
    """The real store, with an operator archiving the repository just as the task imports its history."""

    def finish(self, repo_id: int, *args: Any) -> None:
        self.archive(repo_id)
        super().finish(repo_id, *args)


def test_archiving_during_a_task_is_not_undone_by_its_end(world: World) -> None:
    """A repository archived while a task works on it stays archived when the task ends."""
    repo = world.repository("archived-late")
    task_id = world.task(repo, "migrate")
    assert Work(world.config, ArchivingStore(world.store.engine, world.config.repos_dir)).run(task_id) == 4
    assert world.fresh(repo).status == "archived"
    assert world.store.task(task_id).status == "succeeded"


def test_force_re_clones_and_swaps_in_the_new_copy(world: World) -> None:
    """migrate with force: cloned afresh and swapped in (the old copy removed); without force an existing
    repository is fetched instead."""
    repo = world.repository("forced")
    world.run(repo, "migrate")
    old = world.server.head()
    fast_import(world.server.repo, 2, ref="refs/heads/main", start=40, parent=False)  # history rewritten
    new = world.server.head()
    assert world.run(repo, "migrate", force=True) == 2  # the new main's; dev and the tag did not change
    path = Path(repo.local_path)
    assert git("--git-dir", str(path), "rev-parse", "main") == new
    with pytest.raises(AssertionError):
        git("--git-dir", str(path), "cat-file", "-e", old)  # a fresh copy: the old main's tip is gone
    assert siblings(path) == []
    fast_import(world.server.repo, 1, start=50)
    assert world.run(repo, "migrate") == 1  # there already: fetched


def test_leftovers_of_a_crashed_clone_are_removed_and_never_under_the_real_name(world: World) -> None:
    """A clone works beside the target: while it runs the real name does not exist; a half clone a crash left
    behind is removed by the next task, which clones afresh."""
    repo = world.repository("crashy")
    path = Path(repo.local_path)
    path.parent.mkdir(parents=True)
    crashed = path.parent / ".crashy.incoming-0123456789ab"
    git("init", "--quiet", "--bare", str(crashed))
    (crashed / "objects" / "pack" / "tmp_pack_half").write_bytes(b"PACK")
    other = path.parent / ".crashy2.incoming-0123456789ab"  # another repository's: not touched
    other.mkdir()
    world.server.set_mode("hang")
    task_id = world.task(repo, "migrate")
    work = Work(world.config, world.store)
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(errors, lambda: work.run(task_id)))
    thread.start()
    try:
        wait_for(lambda: world.server.hanging >= 1, what="the clone to reach the server")
        assert not path.exists() and not crashed.exists()
        incoming = [n for n in siblings(path) if n.startswith(".crashy.incoming-")]
        assert len(incoming) == 1
        task = world.store.task(task_id)
        beat = task.heartbeat_at
        assert task.status == "running" and task.attempts == 1 and beat is not None
        wait_for(lambda: (world.store.task(task_id).heartbeat_at or beat) > beat, what="a heartbeat")
    finally:
        world.server.set_mode("normal")
        thread.join()
    assert errors and isinstance(errors[0], TaskFailed) and errors[0].retry is True
    assert not path.exists() and siblings(path) == [other.name]
    assert world.run(repo, "migrate") == 4
    assert siblings(path) == [other.name]


def _catch(errors: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:
        errors.append(exc)


def test_a_network_call_past_git_timeout_is_killed(world: World) -> None:
    """A source that never answers: the clone is killed at git_timeout, a retry is asked for, nothing stays."""
    repo = world.repository("slow")
    world.server.set_mode("hang")
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "migrate", git_timeout=1.0)
    assert failed.value.retry is True
    assert failed.value.message == f"cloning {world.server.url} timed out after 1s"
    assert not Path(repo.local_path).exists() and siblings(Path(repo.local_path)) == []


def test_a_wrong_token_fails_for_retry_with_a_clear_message_and_no_token(world: World) -> None:
    """A refused credential: retry, its name and the HTTP status said, the token nowhere in the message."""
    (world.creds / "gh").write_text("ghp_WrongToken0123456789abcdefABCDEF0000\n")
    repo = world.repository("denied")
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "migrate")
    assert failed.value.retry is True
    assert failed.value.message == "the source refused the credential 'gh' (HTTP 401)"
    assert not Path(repo.local_path).exists()


def test_a_rotated_token_is_read_at_the_next_task(world: World) -> None:
    """The token rotated on the server fails the next task; once the file holds it too, the next one works."""
    repo = world.repository("rotated")
    world.run(repo, "migrate")
    rotated = "ghp_Rotated0123456789abcdefABCDEF000000"
    world.server.set_token(rotated)
    with pytest.raises(TaskFailed, match="refused the credential 'gh'"):
        world.run(repo, "sync")
    (world.creds / "gh").write_text(f"{USER}:{rotated}\n")
    fast_import(world.server.repo, 1, start=60)
    assert world.run(repo, "sync") == 1


def test_a_missing_credential_file_is_named_with_its_directory(world: World) -> None:
    repo = world.repository("nocred", credential="absent")
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "migrate")
    assert failed.value.retry is True
    assert failed.value.message == f"credential 'absent' not found in {world.creds}"


def test_a_local_source_linked_to_the_fleets_state_after_it_was_accepted_fails_for_good(world: World) -> None:
    """A link the API accepted as a source, pointed at the fleet's state folder since: the task checks again
    and clones nothing."""
    link = world.tmp / "upstream-link"
    link.symlink_to(world.server.repo, target_is_directory=True)
    repo = world.repository("linked", url=str(link), credential="")
    (world.config.repos_dir / ".fleet").mkdir(parents=True)
    link.unlink()
    link.symlink_to(world.config.repos_dir / ".fleet", target_is_directory=True)
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "migrate")
    assert failed.value.retry is False and "the fleet's own state" in failed.value.message
    assert not Path(repo.local_path).exists()


def test_a_credential_that_is_not_a_regular_file_fails_at_once(world: World) -> None:
    """A FIFO in the credentials directory would block the read for ever: refused, for good, instead."""
    os.mkfifo(world.creds / "pipe")
    repo = world.repository("piped", credential="pipe")
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "migrate")
    assert failed.value.retry is False
    assert failed.value.message == f"credential 'pipe' in {world.creds} is not a regular file"


def test_a_source_that_is_down_fails_for_retry(world: World) -> None:
    """The source's server stopped: 'cannot reach', and a later attempt may succeed."""
    repo = world.repository("down")
    world.server.stop()
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "migrate")
    assert failed.value.retry is True
    assert failed.value.message == f"cannot reach the source {world.server.url}: connection refused"


def test_archived_repository_is_not_worked_on_and_stays_archived(world: World) -> None:
    """A task on an archived repository fails for good; giving it up leaves the repository archived."""
    repo = world.repository("old")
    task_id = world.task(repo, "migrate")
    world.store.archive(repo.id)
    work = Work(world.config, world.store)
    with pytest.raises(TaskFailed) as failed:
        work.run(task_id)
    assert failed.value.retry is False and failed.value.message == "repository acme/old is archived"
    work.give_up(task_id, failed.value.message)
    assert world.fresh(repo).status == "archived"
    assert world.store.task(task_id).status == "failed"
    assert not Path(repo.local_path).exists()


def test_retrying_then_giving_up_marks_the_task_and_the_repository(world: World) -> None:
    repo = world.repository("flaky")
    task_id = world.task(repo, "migrate")
    work = Work(world.config, world.store)
    at = db.now() + timedelta(seconds=60)
    work.retrying(task_id, "cannot reach the source x: connection refused", at)
    task = world.store.task(task_id)
    assert (task.status, task.error_message, task.retry_at) == (
        "retrying", "cannot reach the source x: connection refused", at)
    work.give_up(task_id, "cannot reach the source x: connection refused")
    task, row = world.store.task(task_id), world.fresh(repo)
    assert task.status == "failed" and task.finished_at is not None
    assert (row.status, row.error_message) == ("failed", "cannot reach the source x: connection refused")


def test_a_failed_repository_recovers_at_the_next_sync(world: World) -> None:
    repo = world.repository("recovers")
    world.server.set_token("ghp_SomethingElse0123456789abcdefABCDEF00")
    work = Work(world.config, world.store)
    task_id = world.task(repo, "migrate")
    with pytest.raises(TaskFailed) as failed:
        work.run(task_id)
    work.give_up(task_id, failed.value.message)
    assert world.fresh(repo).status == "failed"
    world.server.set_token(TOKEN)
    assert world.run(repo, "sync") == 4
    row = world.fresh(repo)
    assert (row.status, row.error_message) == ("active", "")


def test_a_task_delivered_again_after_it_succeeded_does_nothing(world: World) -> None:
    """A redelivered message of a succeeded task returns its count at once: no git, no new attempt."""
    repo = world.repository("twice")
    task_id = world.task(repo, "migrate")
    work = Work(world.config, world.store)
    assert work.run(task_id) == 4
    seen = len(world.server.requests)
    assert work.run(task_id) == 4
    assert len(world.server.requests) == seen
    assert world.store.task(task_id).attempts == 1


def test_the_token_is_nowhere_in_the_database_the_repositories_or_the_logs(world: World) -> None:
    """After migrations, syncs and a refused token, neither the token nor its Basic form is in the database
    file, any file of the repositories, or any log event."""
    encoded = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    with capture_logs() as events:
        for mode in ("mirror", "bare", "regular"):
            repo = world.repository(f"secret-{mode}", mode=mode)
            world.run(repo, "migrate")
            fast_import(world.server.repo, 1, start=70 + len(mode))
            world.run(repo, "sync")
        world.server.set_token("ghp_Other0123456789abcdefABCDEF00000000")
        with pytest.raises(TaskFailed):
            world.run(repo, "sync")
    assert events and any(e["event"] == "fleet_task_failed" for e in events)
    assert TOKEN not in repr(events) and encoded not in repr(events)
    with sqlite3.connect(world.db_file) as con:
        con.execute("pragma wal_checkpoint(full)")
    stored = [p for p in world.tmp.iterdir() if p.name.startswith("fleet.db")]
    stored += [p for p in world.config.repos_dir.rglob("*") if p.is_file()]
    assert len(stored) > 20
    for path in stored:
        data = path.read_bytes()
        assert TOKEN.encode() not in data and encoded.encode() not in data, path


def test_a_long_history_imports_completely(world: World) -> None:
    """5,000 commits, read from git log as it prints them and stored in batches: every one is there."""
    upstream = world.tmp / "big.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(upstream))
    fast_import(upstream, 5000, files=False)
    repo = world.repository("big", url=str(upstream), credential="")
    assert world.run(repo, "migrate") == 5000
    assert world.store.commit_count(repo.id) == 5000
    assert world.fresh(repo).total_commits == 5000


class CountingRunner(GitRunner):
    """The real runner, noting the subcommand of every git process it starts."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)
        self.started: list[str] = []

    def start(self, argv: list[str], env: dict[str, str], stdin: Any, network: bool = False) -> Any:
        self.started.append(next(arg for arg in argv[1:] if not arg.startswith("-") and "=" not in arg
                                 and "/" not in arg))
        return super().start(argv, env, stdin, network)


@pytest.mark.parametrize("mode", ["mirror", "regular"])
def test_a_no_op_sync_runs_three_git_processes_and_keeps_the_rows(world: World, mode: str) -> None:
    """Nothing moved upstream: the refs before and after the fetch are the same, so no history is read, nothing
    counted or snapshotted; only the time of the last sync moves. Then a ref that moves takes the full path."""
    repo = world.repository(f"quiet-{mode}", mode=mode)
    world.run(repo, "migrate")
    before = world.fresh(repo)
    runner = CountingRunner(60)
    work = Work(world.config, world.store, runner=runner, worker="test-worker")
    assert work.run(world.task(repo, "sync")) == 0
    if mode == "mirror":
        assert runner.started == ["for-each-ref", "fetch", "for-each-ref"]
    else:  # a regular one also checks its checked-out branch against origin's
        assert runner.started[:2] == ["for-each-ref", "fetch"] and runner.started[-1] == "for-each-ref"
        assert "log" not in runner.started and "rev-list" not in runner.started
    after = world.fresh(repo)
    assert after.last_synced_at is not None and before.last_synced_at is not None
    assert after.last_synced_at > before.last_synced_at
    assert ((after.total_commits, after.last_commit_hash, after.default_branch, after.status)
            == (before.total_commits, before.last_commit_hash, before.default_branch, "active"))
    assert [(b.name, b.commit_hash) for b in after.branches] == [(b.name, b.commit_hash) for b in before.branches]
    tip = fast_import(world.server.repo, 2, start=50)
    runner.started.clear()
    assert work.run(world.task(repo, "sync")) == 2
    assert "log" in runner.started and world.fresh(repo).last_commit_hash == tip


def test_a_message_that_comes_twice_runs_its_task_once(world: World) -> None:
    """The row's claim decides: a task running on a live worker elsewhere, or waiting for its retry's time,
    is not run by a second message; one whose worker is lost (its lease run out, or a dead process of this
    host) is; of deliveries racing for a pending task, exactly one claims it."""
    repo = world.repository("once", mode="mirror")
    config = dataclasses.replace(world.config, lease=60)
    work = Work(config, world.store, worker="here:1")
    task_id = world.task(repo, "migrate")
    world.store.update_task(task_id, status="running", attempts=1, worker="elsewhere:42", heartbeat_at=db.now())
    assert work.run(task_id) is None
    world.store.update_task(task_id, status="retrying", retry_at=db.now() + timedelta(seconds=60))
    assert work.run(task_id) is None
    assert world.store.task(task_id).attempts == 1 and not Path(repo.local_path).exists()

    world.store.update_task(task_id, status="running", heartbeat_at=db.now() - timedelta(seconds=61))
    assert work.run(task_id) == 4  # the lease ran out: its worker is lost
    assert world.store.task(task_id).attempts == 2

    proc = subprocess.Popen(["true"])
    proc.wait()
    again = world.task(repo, "sync")
    world.store.update_task(again, status="running", attempts=1, heartbeat_at=db.now(),
                            worker=f"{socket.gethostname()}:{proc.pid}")
    assert work.run(again) == 0  # its worker is a process of this host that is gone: no lease to wait

    racing = world.task(repo, "sync")
    barrier = threading.Barrier(4)
    claims: list[object] = []

    def claim(n: int) -> None:
        barrier.wait()
        claims.append(world.store.claim_task(racing, f"racer:{n}", config.lease))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([c for c in claims if c is not None]) == 1
    assert world.store.task(racing).attempts == 1


def test_a_credential_tied_to_hosts_never_leaves_for_another(world: World) -> None:
    """A token file with a `host:` line: a source on that host gets it; one on another host (here the same
    server by another name) is refused before git runs, and the server never sees a request."""
    port = world.server.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    (world.creds / "tied").write_text(f"{TOKEN}\nhost: 127.0.0.1:{port}\n")
    assert world.run(world.repository("tied-ok", credential="tied"), "migrate") == 4
    seen = len(world.server.requests)
    elsewhere = world.server.url.replace("127.0.0.1", "localhost")
    repo = world.repository("tied-elsewhere", url=elsewhere, credential="tied")
    with pytest.raises(TaskFailed) as failed:
        world.run(repo, "migrate")
    assert failed.value.retry is False
    assert failed.value.message == (f"credential 'tied' is for 127.0.0.1:{port}, not the source's host "
                                    f"localhost:{port}: add that host to the credential's `host:` line if it is "
                                    "meant for it")
    assert len(world.server.requests) == seen
    assert TOKEN not in failed.value.message


@pytest.mark.parametrize("mode", ["mirror", "bare"])
def test_a_renamed_default_branch_is_followed_by_the_next_sync(world: World, mode: str) -> None:
    """The source renames main to trunk (its HEAD follows, as GitHub's rename does): the next sync points the
    repository's HEAD at trunk, and its row says trunk is the default, with trunk's head."""
    repo = world.repository(f"renamed-{mode}", mode=mode)
    world.run(repo, "migrate")
    upstream = world.server.repo
    git("--git-dir", str(upstream), "branch", "-m", "main", "trunk")
    assert git("--git-dir", str(upstream), "symbolic-ref", "HEAD") == "refs/heads/trunk"
    world.run(repo, "sync")
    assert git("--git-dir", repo.local_path, "symbolic-ref", "HEAD") == "refs/heads/trunk"
    row = world.fresh(repo)
    assert (row.default_branch, row.last_commit_hash) == ("trunk", world.server.head("trunk"))
    assert {b.name for b in row.branches if b.is_default} == {"trunk"}


def test_a_source_that_stops_answering_is_cut_off_by_the_stall_limit(world: World) -> None:
    """A server that accepts and never answers: the clone is stopped once nothing moved for git_stall (far
    below the task's time limit), the task is to be retried, and nothing is left beside the target."""
    repo = world.repository("hung")
    world.server.set_mode("hang")
    with pytest.raises(TaskFailed) as failed:  # an hour's time limit: the message says which limit cut it
        world.run(repo, "migrate", git_stall=1.0, git_timeout=3600.0)
    assert failed.value.retry is True
    assert "the source stopped answering (nothing moved for 1s)" in failed.value.message
    world.server.set_mode("normal")
    assert siblings(Path(repo.local_path)) == []
