"""Wires watcher -> batcher -> pipeline -> pusher; signals only set a flag and wake the loop."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from committer.commit.step import CommitResult, Pipeline
from committer.core import clock, logs
from committer.core.errors import CommitterError, ConfigError, redact
from committer.core.secret import webhook_secret
from committer.core.settings import Settings, parse_address, require_data_dir, require_git_dir, shown
from committer.git import lfs
from committer.git.repair import check_and_repair
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from committer.git.setup import check_branch, open_repository
from committer.ops.requests import perform
from committer.ops.state import InstanceLock, answer_request, pending_requests, read_state, write_state
from committer.policy.filters import BMIGNORE, PathFilter
from committer.policy.guard import Hold
from committer.serve.http import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.sdnotify import Notifier
from committer.serve.webhook import WebhookReceiver
from committer.sync import pull
from committer.sync.bootstrap import adopt_remote, init_from_remote, refetch_remote_head, remote_has_history
from committer.sync.puller import Puller
from committer.sync.pusher import Pusher
from committer.watch.batcher import Batcher
from committer.watch.watcher import Watcher

log = logs.get("committer.daemon")

RETRY_FIRST, RETRY_MAX = 2.0, 60.0
HEALTH_EVERY = 5.0
# Small fast-import commits leave loose objects and small packs behind: once this many commits
# landed and the directory has been quiet this long, a repack runs on its own thread.
MAINTAIN_AFTER_COMMITS, MAINTAIN_WHEN_QUIET = 50, 60.0
EXIT_LOCK_LOST = 4  # a restart fixes it: the next daemon takes the lock again
EXIT_DATA_GONE = 5  # a person must fix it: the data directory stayed away past missing_data_timeout


class Wakeup:
    """A self-pipe: other threads and signal handlers wake the loop without taking any lock."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.read_fd, selectors.EVENT_READ)

    def set(self) -> None:
        """Wake the waiting loop (safe from any thread)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.write_fd, b"\0")

    def wait(self, timeout: float | None) -> None:
        """Sleep until woken or the timeout passes; every wait of the loop is this one."""
        if self._selector.select(timeout):
            with contextlib.suppress(BlockingIOError):
                while os.read(self.read_fd, 4096):
                    pass

    def close(self) -> None:
        self._selector.close()
        os.close(self.read_fd)
        os.close(self.write_fd)


def _maintain(repo: GitRepo, loose_limit: int = 500, pack_limit: int = 20) -> bool:
    """Roll loose objects and small packs into bigger packs (geometric repack); True when it ran."""
    size = repo.size()
    if size["loose"] <= loose_limit and size["packs"] <= pack_limit:
        return False
    started = time.monotonic()
    try:
        repo.git("repack", "-d", "-l", "--geometric=2", "--quiet")
    except CommitterError as exc:
        log.warning("maintenance_failed", error=exc.message)
        return False
    log.info("maintenance", task="repack --geometric=2", seconds=round(time.monotonic() - started, 2),
             before=size, after=repo.size())
    return True


class Daemon:
    """One daemon per repository: watch, commit, push, until told to stop."""

    def __init__(self, settings: Settings, once: bool = False, new_branch: bool = False) -> None:
        self.settings = settings
        self.runner = GitRunner(settings.git_timeout)  # every git of this daemon starts here
        self.once = once
        self.new_branch = new_branch
        self.stopping = False
        self.signal_received: int | None = None
        self.wakeup = Wakeup()
        self.lock = InstanceLock(settings.git_dir)
        self.pfilter = PathFilter(settings.data_dir, settings.ignore)
        self.batcher = Batcher(settings.debounce, settings.max_delay)
        self.started_at = clock.iso(clock.now(), ms=True)
        self.ready = False
        self.observer_kind: str | None = None
        self.pipeline: Pipeline | None = None
        self.watcher: Watcher | None = None
        self.pusher: Pusher | None = None
        self.puller: Puller | None = None
        self._forced: list[str | None] = []  # forced updates a webhook reported, for the main loop
        self._reconcile_at: float | None = None
        self._reconcile_why = "start"
        self._retry_delay = RETRY_FIRST
        self._last_error: dict[str, str] | None = None
        self._t0 = time.monotonic()
        self.requests_waiting = False
        self._data_missing = False
        self._missing_since = 0.0
        self._root_id: tuple[int, int] | None = None
        self.exit_code = 0
        self.metrics = Metrics()
        self._unlisten: Callable[[], None] | None = None
        if settings.github_app_id:
            from committer.sync import github  # the App's REST client, only for those who use one

            self._unlisten = github.on_refresh(self.metrics.token_refreshed)
        self.notifier = Notifier()
        self.http: HttpServer | None = None
        self._heartbeat = time.monotonic()
        self._commits_since_gc = 0
        self._last_commit_mono = time.monotonic()
        self._maintenance: threading.Thread | None = None
        self._shown_settings = shown(settings)  # for `status` run without the daemon's flags

    # -- signals -------------------------------------------------------------------------------

    def install_signal_handlers(self) -> Callable[[], None]:
        """SIGTERM and SIGINT set a flag and wake the loop; returns a function that undoes it."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
        old_fd = signal.set_wakeup_fd(self.wakeup.write_fd, warn_on_full_buffer=False)
        for sig in previous:
            signal.signal(sig, self.handle_signal)

        def restore() -> None:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def handle_signal(self, signum: int, _frame: FrameType | None = None) -> None:
        """Only sets a flag; the loop notices it through the wakeup pipe."""
        if signum == signal.SIGUSR1:
            self.requests_waiting = True
            return
        self.signal_received = signum
        self.stopping = True
        # A git stuck on a hung disk or lock must not keep the daemon from stopping; the work it
        # was doing is redone by the shutdown pass (fast-import moves no reference unless it finished).
        self.runner.terminate()

    def stop(self) -> None:
        """Ask the loop to finish (from any thread)."""
        self.stopping = True
        self.wakeup.set()

    # -- life cycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Start-up order: lock, stale locks, repository, watcher, reconcile; then the loop."""
        self._t0 = time.monotonic()
        require_data_dir(self.settings)
        require_git_dir(self.settings)
        check_branch(GitRepo.of(self.settings, self.runner), self.new_branch)
        self.lock.acquire()
        try:
            return self._run_locked()
        finally:
            if self._unlisten is not None:
                self._unlisten()
            if self.http is not None:
                self.http.stop()
            self.notifier.close()
            self.lock.release()
            self.wakeup.close()

    def _run_locked(self) -> int:
        settings = self.settings
        repo = GitRepo.of(settings, self.runner)
        if repo.exists():
            for path in repo.clear_stale_locks():
                log.warning("stale_lock_removed", path=str(path))
            fetch = (lambda: refetch_remote_head(settings, repo)) if settings.remote else None
            if check_and_repair(repo, fetch) == "replaced":
                self.lock.release()  # the lock file went aside with the old repository
                self.lock.acquire()
        repo = open_repository(settings, self.pfilter, self.new_branch, self.runner)
        if repo.head() is None and settings.remote:
            self._join_remote_history(repo)
        previous = read_state(settings.git_dir)
        self.pipeline = Pipeline(settings, repo, self.pfilter, Hold.load(previous.get("hold_record")))
        self.pipeline.on_commit = self.metrics.commit
        self.pipeline.pull_state = dict(previous.get("pull") or {})
        self.pipeline.keep_held(previous.get("held_files"))
        self.pusher = self._make_pusher(repo)
        if settings.remote and not self.once:
            self.puller = Puller(settings, repo, self.wakeup.set)
        self._start_http()
        if settings.lfs_threshold and not lfs.available():
            log.warning("lfs_unavailable", threshold=settings.lfs_threshold,
                        action="files at or above lfs_threshold are held back; install git-lfs")
        if not self.once:
            self.watcher = Watcher(
                settings.data_dir, self.pfilter, self.wakeup.set, settings.observer, settings.poll_interval
            )
            try:
                self.observer_kind = self.watcher.start()
                self._root_id = self._data_dir_id()
            except OSError as exc:
                raise ConfigError(
                    "observer", f"inotify cannot watch {settings.data_dir}: {exc.strerror or exc}; "
                    "use observer auto or poll, or raise fs.inotify.max_user_watches"
                ) from None
        log.info(
            "daemon_start",
            data_dir=str(settings.data_dir),
            git_dir=str(settings.git_dir),
            branch=settings.branch,
            observer=self.observer_kind,
            pid=os.getpid(),
        )
        self._reconcile("start")
        self.ready = True
        self._write_state()
        log.info("daemon_ready", seconds=round(time.monotonic() - self._t0, 3))
        self.notifier.ready(self._status_line())
        if self.once:
            code = self._push_once()
            self._write_state(running=False)
            return code
        if self.pusher is not None:
            self.pusher.start()
        if self.puller is not None:
            self.puller.start(fetch_now=self._auto_pull())
        try:
            self._loop()
        finally:
            self._shutdown()
        return self.exit_code

    def _join_remote_history(self, repo: GitRepo) -> None:
        """A new repository whose remote has history: never start a second, unrelated history.

        An empty data directory takes the remote's files (a fresh volume restored from its backup);
        otherwise the local content is committed on top of the remote history. Nothing is lost.
        """
        settings = self.settings
        try:
            if not remote_has_history(settings, repo):
                return
            if any(os.scandir(settings.data_dir)):
                adopt_remote(settings, repo)
                log.warning("remote_history_adopted", remote=redact(settings.remote))
            else:
                pull.checkout_lfs(settings, repo, init_from_remote(settings, repo))
                log.warning("remote_history_restored", remote=redact(settings.remote))
        except CommitterError as exc:
            log.error("remote_check_failed", error=exc.message, action="continuing with local history")

    def _make_pusher(self, repo: GitRepo) -> Pusher | None:
        if not self.settings.remote:
            return None
        return Pusher(self.settings, repo, on_change=self._write_state, metrics=self.metrics,
                      on_rejected=self._push_rejected)

    def _auto_pull(self) -> bool:
        """Pulls happen on their own: on a timer, or a webhook can ask for them."""
        return self.settings.pull_interval > 0 or (
            bool(self.settings.http) and webhook_secret(self.settings.webhook_secret_file) is not None
        )

    def _push_rejected(self) -> None:
        """The remote has commits we lack: with automatic pulls on, fetch and merge them (push thread)."""
        if self.puller is not None and self._auto_pull():
            self.puller.request("push_rejected")

    def _start_http(self) -> None:
        address = parse_address("http", self.settings.http)
        if address is None or self.once:
            return
        webhook = None
        if self.settings.remote:
            receiver = WebhookReceiver(
                self.settings.branch,
                secret=lambda: webhook_secret(self.settings.webhook_secret_file),
                on_push=lambda _head: self.puller.request("webhook") if self.puller else None,
                on_forced=self._forced_update,
            )

            def webhook(headers: Mapping[str, str], body: bytes) -> tuple[int, Mapping[str, Any]]:
                reply = receiver.handle(headers, body)
                return reply.status, reply.body

        self.http = HttpServer(
            address, self.metrics, self.health, lambda: self.ready and not self.stopping, webhook=webhook
        )
        self.http.start()
        log.info("http_listening", address=f"{address[0]}:{self.http.port}")

    def _forced_update(self, head: str | None) -> None:
        """A webhook said the remote branch was force-pushed (http thread): the main loop records it."""
        if head is not None and self.pipeline is not None and head == self.pipeline.head:
            return  # our own force-push (allow_non_ff) coming back
        self._forced.append(head)
        self.wakeup.set()

    def health(self) -> dict[str, Any]:
        """For /healthz: the loop turns over, the watcher and the push loop are alive."""
        stalled = time.monotonic() - self._heartbeat > self.settings.git_timeout + 60
        watcher = self.watcher is not None and self.watcher.alive()
        pusher = (self.pusher is None or self.pusher.alive()) and (self.puller is None or self.puller.alive())
        return {
            "healthy": (watcher or not self.ready) and pusher and not stalled,
            "watcher": "alive" if watcher else "down",
            "observer": self.observer_kind,
            "push_loop": "alive" if pusher else "down",
            "loop": "stalled" if stalled else "ok",
            "data_dir_missing": self._data_missing,
            "last_commit_at": self.pipeline.last_commit_at if self.pipeline else None,
        }

    def _push_once(self) -> int:
        """--once: the commits are safe locally either way; a failed push still fails the run."""
        if self.pusher is None:
            return 0
        try:
            self.pusher.push_now()
        except CommitterError as exc:
            log.error("push_failed", error=exc.message)
            return 1
        return 0

    def _loop(self) -> None:
        assert self.watcher is not None
        every = min(HEALTH_EVERY, self.notifier.watchdog_interval or HEALTH_EVERY)
        next_health = time.monotonic() + every
        next_periodic = self._periodic_deadline()
        while not self.stopping:
            now = self._heartbeat = time.monotonic()
            deadlines = [next_health, self.batcher.next_deadline(), self._reconcile_at, next_periodic]
            timeout = max(0.0, min(d for d in deadlines if d is not None) - now)
            self.wakeup.wait(timeout)
            if self.stopping:
                break
            self._take_events()
            now = time.monotonic()
            if now >= next_health:
                next_health = now + every
                if self.health()["healthy"]:
                    self.notifier.watchdog()  # only while healthy: systemd restarts a daemon gone quiet
                self._check_lock()
                self._maybe_maintain()
                self._check_data_dir()
                if not self._data_missing:
                    self._check_watcher()
            if self.requests_waiting:
                self.requests_waiting = False
                self._serve_requests()
            if self._data_missing:
                continue  # nothing is committed until the data directory is back
            self._pull_fetched()
            if self.batcher.due(now):
                self._commit_batch()
            if next_periodic is not None and now >= next_periodic:
                next_periodic = self._periodic_deadline()
                self._schedule_reconcile("periodic")
            if self._reconcile_at is not None and now >= self._reconcile_at:
                self._reconcile(self._reconcile_why)

    def _schedule_reconcile(self, why: str, delay: float = 0.0) -> None:
        at = time.monotonic() + delay
        if self._reconcile_at is None or at < self._reconcile_at:
            self._reconcile_at, self._reconcile_why = at, why

    def _periodic_deadline(self) -> float | None:
        interval = self.settings.reconcile_interval
        return time.monotonic() + interval if interval > 0 else None

    def _take_events(self) -> None:
        assert self.watcher is not None
        paths, overflow = self.watcher.drain()
        now, wall = time.monotonic(), time.time()
        for path in paths:
            self.batcher.add(path, now, wall)
        if BMIGNORE in paths and self.pfilter.refresh():
            log.info("ignore_rules_changed", path=BMIGNORE)
            self._schedule_reconcile("ignore_rules")
        if overflow:
            log.warning("watcher_overflow", action="full reconcile")
            self._schedule_reconcile("overflow")

    def _maybe_maintain(self) -> None:
        """At a quiet moment, let git pack loose objects and small packs, off the commit path."""
        busy = self._maintenance is not None and self._maintenance.is_alive()
        quiet = time.monotonic() - self._last_commit_mono >= MAINTAIN_WHEN_QUIET
        if busy or not quiet or self._commits_since_gc < MAINTAIN_AFTER_COMMITS or self.pipeline is None:
            return
        self._commits_since_gc = 0
        repo = self.pipeline.repo
        self._maintenance = threading.Thread(target=_maintain, args=(repo,), name="committer-gc", daemon=True)
        self._maintenance.start()

    def _fail(self, code: int, event: str, **fields: object) -> None:
        """Stop with a non-zero exit code, so the service manager's restart policy acts."""
        log.error(event, exit_code=code, **fields)
        self.exit_code = code
        self.stopping = True

    def _check_lock(self) -> None:
        if not self.lock.still_held():
            self._fail(EXIT_LOCK_LOST, "instance_lock_lost", git_dir=str(self.settings.git_dir),
                       action="exiting; a restart takes the lock again")

    def _data_dir_id(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.settings.data_dir)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _check_data_dir(self) -> None:
        """A data directory that vanished is waited for; one replaced (a remount) is watched anew."""
        current = self._data_dir_id()
        if current is None:
            if not self._data_missing:
                self._data_missing = True
                self._missing_since = time.monotonic()
                log.error("data_dir_missing", path=str(self.settings.data_dir),
                          action="nothing is committed until it is back")
                self._write_state()
            limit = self.settings.missing_data_timeout
            if limit and time.monotonic() - self._missing_since > limit:
                self._fail(EXIT_DATA_GONE, "data_dir_gone", path=str(self.settings.data_dir),
                           missing_data_timeout=limit, action="exiting; mount the data directory again")
            return
        if self._data_missing:
            self._data_missing = False
            log.warning("data_dir_back", path=str(self.settings.data_dir))
        if current != self._root_id:
            log.warning("data_dir_replaced", path=str(self.settings.data_dir),
                        action="watch anew and reconcile")
            self._restart_watcher("data_dir_replaced")

    def _restart_watcher(self, why: str) -> None:
        assert self.watcher is not None
        self.metrics.watcher_restarted()
        self.watcher.stop()
        try:
            self.observer_kind = self.watcher.start()
            self._root_id = self._data_dir_id()
        except OSError as exc:
            log.error("watcher_restart_failed", error=str(exc))
        self._schedule_reconcile(why)

    def _serve_requests(self) -> None:
        """SIGUSR1: the CLI left requests (confirm-deletes, restore); pending changes are committed first."""
        assert self.pipeline is not None
        for ident, request in pending_requests(self.settings.git_dir):
            self._take_events()
            self._commit_batch()
            log.info("request", op=request.get("op"), id=ident)
            try:
                answer = perform(self.pipeline, request)
            except Exception as exc:  # a request must never take the daemon down
                log.error("request_failed", op=request.get("op"), error=str(exc), exc_info=True)
                answer = {"error": f"{type(exc).__name__}: {exc}", "exit_code": 1}
                self.pipeline.refresh_head()
            answer_request(self.settings.git_dir, ident, answer)
            if answer.get("sha") and self.pusher is not None:
                self.pusher.retry_now()
        self._write_state()

    def _pull_fetched(self) -> None:
        """Apply what the pull loop fetched, after committing what is pending (so nothing is overwritten)."""
        assert self.pipeline is not None
        while self._forced:
            pull.refuse_forced(self.pipeline, self._forced.pop(0), "the webhook said forced")
            self._write_state()
        fetched = self.puller.take() if self.puller is not None else None
        if fetched is None:
            return
        if fetched == self.pipeline.head:
            if self.pipeline.pull_state.get("refused"):  # the remote is back where we are: nothing is refused
                pull.record(self.pipeline, pull.PullResult(pull.UP_TO_DATE, remote=fetched, old=fetched, new=fetched))
                self._write_state()
            return
        self._take_events()
        self._commit_batch()
        try:
            result = pull.pull(self.pipeline, fetched=fetched)
        except Exception as exc:  # a failed pull must not stop the daemon; the next fetch tries again
            message = exc.message if isinstance(exc, CommitterError) else f"{type(exc).__name__}: {exc}"
            log.error("pull_failed", error=message, exc_info=not isinstance(exc, CommitterError))
            if self.puller is not None:
                self.puller.forget()
            self._last_error = {"kind": "pull", "message": message, "at": clock.iso(clock.now(), ms=True)}
            self.pipeline.refresh_head()
            self._write_state()
            return
        self.metrics.pulled(result.outcome, len(result.conflicts))
        if result.sha is not None and self.pusher is not None:
            self.pusher.retry_now()
        self._write_state()

    def _check_watcher(self) -> None:
        assert self.watcher is not None
        if self.watcher.alive():
            return
        log.error("watcher_died", action="restart and full reconcile")
        self._restart_watcher("watcher_restart")

    def _commit_batch(self) -> None:
        batch = self.batcher.take()
        if batch is None:
            return
        self._guarded(
            lambda p: p.commit(batch.paths, first_event=batch.first_event_wall), what="batch"
        )

    def _reconcile(self, why: str) -> None:
        self._reconcile_at = None
        log.info("reconcile", why=why)
        self._guarded(lambda p: p.reconcile(), what="reconcile")

    def _guarded(self, action: Callable[[Pipeline], CommitResult], what: str) -> None:
        """One failure never stops the daemon: log it and retry through a reconcile with backoff."""
        assert self.pipeline is not None
        try:
            result = action(self.pipeline)
        except Exception as exc:  # any failure of one batch must not stop watching
            message = exc.message if isinstance(exc, CommitterError) else f"{type(exc).__name__}: {exc}"
            log.error("commit_failed", what=what, error=message, retry_in=self._retry_delay,
                      exc_info=not isinstance(exc, CommitterError))
            self._last_error = {"kind": "commit", "message": message, "at": clock.iso(clock.now(), ms=True)}
            self._reconcile_at = None
            self._schedule_reconcile("retry", self._retry_delay)
            self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)
            self.pipeline.refresh_head()
            self._write_state()
            return
        self._retry_delay = RETRY_FIRST
        self._last_error = None
        if result.sha is None:
            log.debug("no_commit", what=what, batch=result.batch, why="nothing differs from HEAD")
        else:
            self._commits_since_gc += 1
            self._last_commit_mono = time.monotonic()
        if result.sha is not None and self.pusher is not None:
            self.pusher.request()
        self._write_state()

    def _shutdown(self) -> None:
        """Stop watching, commit what is pending (even inside the debounce window), last push."""
        log.info("daemon_stopping", signal=self.signal_received)
        self.notifier.stopping("committing what is pending, last push")
        self.runner.timeout = min(self.settings.git_timeout, max(self.settings.shutdown_timeout, 5.0))
        if self.puller is not None:
            self.puller.stop()
        if self.watcher is not None:
            self.watcher.stop()
            self._take_events()
        if self.exit_code == EXIT_LOCK_LOST:
            return  # the repository may belong to another daemon now: write nothing
        self._commit_batch()
        # Events still in the kernel queue when the watcher stopped are caught by this pass.
        self._reconcile("shutdown")
        if self.pusher is not None:
            self.pusher.stop(self.settings.shutdown_timeout)
        self._write_state(running=False)
        log.info("daemon_stop")

    # -- state ---------------------------------------------------------------------------------

    def _status_line(self, state: dict[str, Any] | None = None) -> str:
        """One line for systemd's STATUS=: what is pending, when the last push was, what is held."""
        push = (state or {}).get("push") or (self.pusher.snapshot() if self.pusher else {})
        parts = []
        if self.pusher is not None:
            parts.append(f"{push.get('pending_commits') or 0} commits pending")
            parts.append(f"last push {push.get('last_push_at') or 'never'}")
        else:
            parts.append("local history only")
        if self.pipeline is not None and self.pipeline.hold is not None:
            parts.append(f"HOLD: {len(self.pipeline.hold.paths)} deletions held")
        if self._data_missing:
            parts.append("data directory missing")
        return ", ".join(parts)

    def _write_state(self, running: bool = True) -> None:
        pipeline = self.pipeline
        state: dict[str, Any] = {
            "pid": os.getpid() if running else None,
            "started_at": self.started_at,
            "observer": self.observer_kind,
            "ready": self.ready,
            "last_commit_at": pipeline.last_commit_at if pipeline else None,
            "head": pipeline.head if pipeline else None,
            "held_files": pipeline.held_files() if pipeline else [],
            "held": pipeline.hold.status() if pipeline and pipeline.hold else None,
            "hold_record": pipeline.hold.record() if pipeline and pipeline.hold else None,
            "data_dir_missing": self._data_missing,
            "last_error": self._last_error,
            "pull": pipeline.pull_state if pipeline else {},
            "settings": self._shown_settings,
        }
        if self.pusher is not None:
            push = self.pusher.snapshot()
            state["push"] = push
            if state["last_error"] is None:
                state["last_error"] = push.get("last_error")
        if state["last_error"] is None and self.puller is not None:
            state["last_error"] = self.puller.last_error
        hold = pipeline.hold if pipeline else None
        self.metrics.set_holds(len(hold.paths) if hold else 0, len(pipeline.held) if pipeline else 0)
        if running and self.ready:
            self.notifier.status(self._status_line(state))
        try:
            write_state(self.settings.git_dir, state)
        except OSError as exc:
            log.error("state_write_failed", error=str(exc))
