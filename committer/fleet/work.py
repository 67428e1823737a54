"""What one sync task does, whoever delivers it: initialise, migrate or sync a repository on disk, import the
commits it gained, and keep the task's and the repository's rows telling the truth all along.

A task may be delivered again (a worker killed, a message re-queued): `run` does the work again from what is
on disk, and a task that already succeeded returns at once. Leftovers of a crashed attempt are removed first.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from itertools import chain, islice
from pathlib import Path

from committer.core import logs
from committer.fleet import credentials, rules
from committer.fleet.config import FleetConfig
from committer.fleet.db import GitRepository, SyncTask, now
from committer.fleet.gitops import Git, Layout, Source, Tips
from committer.fleet.gitops import TaskFailed as TaskFailed
from committer.fleet.store import COMMIT_BATCH, Store
from committer.git.runner import GitRunner

log = logs.get("committer.fleet")


def _mode(repo: GitRepository) -> str:
    return "mirror" if repo.is_mirror else "bare" if repo.is_bare else "regular"


def _shown(repo: GitRepository) -> str:
    return f"{repo.organisation.slug}/{repo.name}"


class Work:
    """Runs sync tasks against the store and the repositories' folders; one per worker process."""

    def __init__(self, config: FleetConfig, store: Store, runner: GitRunner | None = None, worker: str = "") -> None:
        self.config = config
        self.store = store
        self.runner = runner or GitRunner(timeout=config.git_timeout)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.git = Git(self.runner, config.git_timeout, config.git_stall)

    def run(self, task_id: str) -> int | None:
        """Do the task's work; its commits_synced, or None when this delivery is not the one to run it (the
        task runs elsewhere, or waits for its retry's time). TaskFailed says why not, and whether to retry."""
        try:
            task, repo = self.store.task_with_repository(task_id)
        except rules.NotFound as exc:
            raise TaskFailed(exc.message, retry=False) from None
        if task.status == "succeeded":
            return task.commits_synced  # delivered again after it was done
        if task.status == "failed":
            raise TaskFailed(task.error_message or f"task {task_id} failed", retry=False)
        if repo is None:
            raise TaskFailed(f"the repository of task {task_id} no longer exists", retry=False)
        if repo.status == "archived":
            raise TaskFailed(f"repository {_shown(repo)} is archived", retry=False)
        claimed = self.store.claim_task(task_id, self.worker, self.config.lease, gone, task=task,
                                        repository_status=_working(task, repo))
        if claimed is None:
            log.info("fleet_task_not_claimed", task=task_id, status=task.status, worker=task.worker)
            return None
        task = claimed
        began = time.monotonic()
        log.info("fleet_task_started", task=task_id, kind=task.kind, repository=_shown(repo), attempt=task.attempts,
                 worker=self.worker)
        try:
            with self._heartbeat(task_id):
                synced = self._do(task, repo)
        except TaskFailed as exc:
            log.warning("fleet_task_failed", task=task_id, kind=task.kind, repository=_shown(repo),
                        attempt=task.attempts, error=exc.message, retry=exc.retry)
            raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            failed = TaskFailed(f"{task.kind} of {_shown(repo)}: {exc.strerror or exc}{where}", retry=True)
            log.warning("fleet_task_failed", task=task_id, kind=task.kind, repository=_shown(repo),
                        attempt=task.attempts, error=failed.message, retry=True)
            raise failed from None
        log.info("fleet_task_succeeded", task=task_id, kind=task.kind, repository=_shown(repo),
                 commits_synced=synced, seconds=round(time.monotonic() - began, 3))
        return synced

    def retrying(self, task_id: str, message: str, retry_at: datetime) -> int:
        """The task failed and will run again at `retry_at`: how many of its retries it has used now."""
        return self.store.retried(task_id, message, retry_at)

    def hold(self, task_id: str) -> AbstractContextManager[None]:
        """While this worker waits to run a pending task (its repository busy), the row says it holds it."""
        return self._heartbeat(task_id, lambda: self.store.hold_task(task_id, self.worker), at_once=True)

    def give_up(self, task_id: str, message: str) -> None:
        """The task failed for good: so does its repository (unless archived meanwhile), with the same error."""
        task = self.store.task(task_id)
        self.store.update_task(task_id, status="failed", finished_at=now(), error_message=message)
        self.store.settle(task.repository_id, "failed", message)

    # The work itself

    def _do(self, task: SyncTask, repo: GitRepository) -> int:
        layout = Layout(Path(repo.local_path), bare=repo.is_bare or repo.is_mirror)
        self.git.clear_leftovers(layout.path)
        if task.kind == "initialize":  # initializing since the claim
            self.git.initialize(layout)
            return self._finish(task, repo, layout, [])
        if task.kind not in ("migrate", "sync"):
            raise TaskFailed(f"task {task.task_id} has an unknown kind {task.kind!r}", retry=False)
        if task.kind == "migrate" and not repo.source_url:
            raise TaskFailed(f"repository {_shown(repo)} has no source_url to migrate from", retry=False)
        there = self.git.exists(layout)
        before = self.git.refs(layout) if there and repo.last_synced_at is not None else {}
        exclude = self._imported(repo, before) if there else []  # after a forced clone, those still there
        if repo.source_url:
            try:  # again here: a link made since the API checked the source
                rules.local_source(repo.source_url, self.config.repos_dir, repo.organisation.slug, repo.name)
            except rules.Invalid as exc:
                raise TaskFailed(exc.message, retry=False) from None
            access = credentials.load(self.config.credentials_dir, repo.credential, repo.source_url,
                                      repo.source_type)
            source = Source(repo.source_url, access, _mode(repo))
            if there and not task.force:
                self.git.fetch(layout, source)
                if task.kind == "sync" and self._unmoved(repo, before, layout):
                    return self._unchanged(task, repo)
                moved = self.git.follow_head(layout, source)  # refs moved: the default branch may have too
                if moved:
                    log.info("fleet_default_branch_followed", repository=_shown(repo), branch=moved)
            else:
                self.git.clone(layout, source, replace=task.force)
        elif not there:
            raise TaskFailed(f"repository {_shown(repo)} has no folder at {layout.path} and no source to clone",
                             retry=False)
        return self._finish(task, repo, layout, exclude)

    def _imported(self, repo: GitRepository, refs: dict[str, str]) -> list[str]:
        """The tips whose history is in the database already: every ref on disk (`refs`) when the branches
        there are those the last successful task recorded, else (an attempt crashed between its fetch and its
        import) only the recorded branches, else none (import everything)."""
        if repo.last_synced_at is None:
            return []
        return list(refs.values()) if _recorded(repo, refs) else [branch.commit_hash for branch in repo.branches]

    def _unmoved(self, repo: GitRepository, before: dict[str, str], layout: Layout) -> bool:
        """Whether the fetch moved no ref, on a repository whose rows already tell what is on disk."""
        return bool(before) and _recorded(repo, before) and self.git.refs(layout) == before

    def _unchanged(self, task: SyncTask, repo: GitRepository) -> int:
        """A sync that brought nothing: no history to read, no count, no snapshot (the rows hold them)."""
        self.store.unchanged(repo.id, task.task_id)
        return 0

    def _finish(self, task: SyncTask, repo: GitRepository, layout: Layout, exclude: list[str]) -> int:
        """Count and import the commits the repository gained, then record its state: the task succeeded.

        A whole history (nothing excluded) tells its branches in the same `git log`; a history that fits in
        one batch is written in the transaction that records the outcome (one transaction, not two)."""
        exclude = self.git.present(layout, exclude)
        tips = Tips() if not exclude else None
        with self.git.history(layout, exclude, tips) as commits:  # what it streams is what the repository gained
            last = list(islice(commits, COMMIT_BATCH))
            if len(last) == COMMIT_BATCH:
                synced, last = self.store.add_commits(repo.id, chain(last, commits)), []
            else:
                synced = len(last)
        snap = tips.snapshot() if tips is not None and tips.branches else self.git.snapshot(layout)
        total = synced if not exclude else self.git.count(layout, [])  # nothing excluded: every commit was streamed
        self.store.finish(repo.id, task.task_id, (snap.branches, total, snap.last_commit_hash, snap.default_branch),
                          synced, last)
        return synced

    @contextmanager
    def _heartbeat(self, task_id: str, beat: Callable[[], None] | None = None,
                   at_once: bool = False) -> Iterator[None]:
        """Keep the task's heartbeat fresh while it works, so that it is not taken for a dead worker's."""
        stop = threading.Event()
        every = self.config.lease / 3
        once = beat or (lambda: self.store.update_task(task_id, heartbeat_at=now()))

        def safely() -> None:
            try:
                once()
            except Exception as exc:  # the database busy or away a moment: the next beat tries again
                log.warning("fleet_heartbeat_failed", task=task_id, error=(str(exc).splitlines() or [""])[0])

        def beating() -> None:
            while not stop.wait(every):
                safely()

        if at_once:
            safely()
        thread = threading.Thread(target=beating, name=f"committer-heartbeat-{task_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _working(task: SyncTask, repo: GitRepository) -> str:
    """The status a repository takes while the task works on it ('' keeps the one it has): a sync of an
    active repository leaves it active."""
    if task.kind == "initialize":
        return "initializing"
    if task.kind == "migrate" or repo.status != "active":
        return "mirroring"
    return ""


def _recorded(repo: GitRepository, refs: dict[str, str]) -> bool:
    """Whether the branches among `refs` are those the repository's rows recorded."""
    local = {ref.removeprefix("refs/heads/"): sha for ref, sha in refs.items() if ref.startswith("refs/heads/")}
    return local == {branch.name: branch.commit_hash for branch in repo.branches}


def gone(worker: str) -> bool:
    """Whether the worker (`host:pid`) that holds a task is seen dead from here: a process of this host that
    no longer exists. A worker on another host is never seen dead: its lease tells."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
