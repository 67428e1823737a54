"""The start-up steps before the first reconcile: repair the repository (never touching the data
directory), open it, and join a remote that already has history instead of starting a second one."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from committer.core import logs, runtime
from committer.core.errors import CommitterError, redact
from committer.core.settings import Settings
from committer.git import cleanstop, lfs
from committer.git.repair import check_and_repair
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.git.setup import open_repository
from committer.ops.lock import InstanceLock
from committer.policy.filters import PathFilter
from committer.sync.bootstrap import adopt_remote, init_from_remote, refetch_remote_head, remote_has_history
from committer.sync.lfsfetch import checkout_lfs

log = logs.get(__name__)


def prepare(settings: Settings, pfilter: PathFilter, runner: GitRunner, lock: InstanceLock,
            new_branch: bool) -> GitRepo:
    """Stale git locks removed, the repository checked and repaired, opened (created when missing), and
    joined to the remote's history when it is new; the instance lock is held throughout."""
    repo = GitRepo.of(settings, runner)
    if repo.exists():
        taken = cleanstop.take(repo.git_dir)  # the clean-stop stamp goes before anything here writes
        for path in repo.clear_stale_locks():
            log.warning("stale_lock_removed", path=str(path))
        fetch = (lambda: refetch_remote_head(settings, repo)) if settings.remote else None
        if check_and_repair(repo, fetch, taken) == "replaced":
            lock.release()  # the lock file went aside with the old repository
            lock.acquire()
            cleanstop.checked(repo.git_dir)  # made anew below
    else:
        cleanstop.checked(repo.git_dir)  # made anew below
    repo = open_repository(settings, pfilter, new_branch, runner)
    if repo.head() is None and settings.remote:
        join_remote_history(settings, repo)
    return repo


def left_clean(repo: GitRepo, lock_lost: bool, failed: bool, maintenance_busy: bool) -> None:
    """At the end of a run that went through prepare() (so its repository was found intact, repaired, or
    made anew) and stopped in order: the stamp by which the next start skips the whole-repository check.
    Not after a lost lock (another daemon may be writing), a commit or pull that failed at any time in the
    run (a damaged repository fails so), or while a repack still runs: the next start then checks."""
    if not (lock_lost or failed or maintenance_busy):
        cleanstop.leave(repo)


def join_remote_history(settings: Settings, repo: GitRepo) -> None:
    """A new repository whose remote has history: never start a second, unrelated history.

    An empty data directory takes the remote's files (a fresh volume restored from its backup);
    otherwise the local content is committed on top of the remote history. Nothing is lost.
    """
    try:
        if not remote_has_history(settings, repo):
            return
        if any(os.scandir(settings.data_dir)):
            adopt_remote(settings, repo)
            log.warning("remote_history_adopted", remote=redact(settings.remote))
        else:
            checkout_lfs(settings, repo, init_from_remote(settings, repo))
            log.warning("remote_history_restored", remote=redact(settings.remote))
    except CommitterError as exc:
        log.error("remote_check_failed", error=exc.message, action="continuing with local history")


def announce(settings: Settings) -> Path | None:
    """Leave the runtime record by which commands typed without --data-dir find this daemon (no secret in
    it); None when no runtime directory of this user's can take it (said once, never fatal)."""
    path = runtime.write(settings.data_dir, settings.git_dir, settings.branch, settings.config_file, settings.http)
    if path is None:
        log.info("runtime_record_unwritable", folder=str(runtime.runtime_dir()),
                    action="commands must be given --data-dir and --git-dir to find this daemon")
    return path


def withdraw(path: Path | None) -> None:
    """Remove the runtime record at a clean stop."""
    runtime.remove(path)


def warn_lfs(settings: Settings) -> None:
    """Files at or above lfs_threshold wait when git-lfs is missing: say so once, at start."""
    if settings.lfs_threshold and not lfs.available():
        log.warning("lfs_unavailable", threshold=settings.lfs_threshold,
                    action="files at or above lfs_threshold are held back; install git-lfs")


class Arming:
    """The watches armed on a thread of their own while the main thread checks and opens the repository (a
    `git fsck` that runs on the other core): the start-up reconcile waits for them (`join`), so whatever
    changes after the reconcile looked is seen by the watches, as when they were armed first."""

    def __init__(self, start: Callable[[], None]) -> None:
        self.seconds = 0.0  # how long arming took, for `daemon_ready` (`watch_s`)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._arm, args=(start,), name="watch-arming", daemon=True)
        self._thread.start()

    def _arm(self, start: Callable[[], None]) -> None:
        began = time.monotonic()
        try:
            start()
        except BaseException as exc:  # raised on the main thread by join()
            self._error = exc
        self.seconds = time.monotonic() - began

    def join(self) -> None:
        """Wait until every watch is armed; what stopped the arming is raised here."""
        self._thread.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def abandon(self) -> None:
        """Start-up failed elsewhere: wait for the thread, its own error (if any) giving way to that one."""
        self._thread.join()
        self._error = None


class Phases:
    """Where start-up went: each phase's seconds, for `daemon_ready` (`<phase>_s`)."""

    def __init__(self, started: float, first: str) -> None:
        self._last = started
        self._seconds: dict[str, float] = {}
        self.mark(first)

    def mark(self, phase: str) -> None:
        """The phase that ends now."""
        now = time.monotonic()
        self._seconds[phase], self._last = now - self._last, now

    def add(self, phase: str, seconds: float) -> None:
        """A phase that ran beside the others (the watches' arming)."""
        self._seconds[phase] = seconds

    def fields(self) -> dict[str, float]:
        """Each phase's seconds; and the CPU seconds so far, the interpreter's start and the imports included:
        this process's, all threads, and the git processes' it waited for (what load changes least)."""
        times = os.times()
        return {**{f"{phase}_s": round(seconds, 3) for phase, seconds in self._seconds.items()},
                "cpu_seconds": round(times.user + times.system, 3),
                "git_cpu_seconds": round(times.children_user + times.children_system, 3)}
