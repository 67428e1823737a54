"""The daemon's pull loop: fetches off the main loop (timer, webhook, refused push); the main loop applies.

Fetching talks to the network and may take long; applying touches the repository and the data directory,
so it runs on the daemon's main loop between batches, where commits already run one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from committer.core import clock, logs
from committer.core.errors import CommitterError
from committer.core.retry import RetryCallState, retrying
from committer.core.service import Worker
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.sync import pull

log = logs.get(__name__)

RETRY_FIRST = 2.0


class Puller(Worker):
    """Fetches when asked or every pull_interval; `take()` hands the fetched head to the main loop.

    Its state crosses threads under `_lock` only; `fetch_error` is read as a copy."""

    name = "puller"

    def __init__(self, settings: Settings, repo: GitRepo, wake: Callable[[], None], *,
                 fetch_at_start: bool = False) -> None:
        super().__init__()
        self.settings = settings
        self.repo = repo
        self._wake_main = wake
        # With automatic pulls, the first fetch runs at once, so what was pushed while the daemon was
        # down (a webhook delivery it missed) arrives too.
        self._fetch_at_start = fetch_at_start
        self._trigger = threading.Event()
        self._lock = threading.Lock()
        self._fetched: str | None = None
        self._handed: str | None = None  # the last head handed over: the same one is not handed twice
        self._why: set[str] = set()
        self._fetch_error: dict[str, str] | None = None
        self._failures = 0  # fetches that failed in a row

    def start(self) -> None:
        """Start the loop (once: a second start while it runs does nothing)."""
        if self.alive():
            return
        if self._fetch_at_start:
            self.request("start")
        super().start()

    @property
    def fetch_error(self) -> dict[str, str] | None:
        """The last fetch's failure (kind, message, at) for status; None once one worked."""
        with self._lock:
            return dict(self._fetch_error) if self._fetch_error else None

    @property
    def failures(self) -> int:
        """Fetches that failed in a row (0 after one that worked)."""
        with self._lock:
            return self._failures

    def request(self, why: str) -> None:
        """Fetch soon (never blocks; many requests make one fetch)."""
        with self._lock:
            self._why.add(why)
        self._trigger.set()

    def interrupt(self) -> None:
        """A fetch under way is killed (it changes nothing that matters; redone later)."""
        self._trigger.set()
        if self.ident is not None and self.alive():
            self.repo.runner.terminate(self.ident, network=True)

    def take(self) -> str | None:
        """A newly fetched remote head for the main loop to apply; None when there is none."""
        with self._lock:
            sha, self._fetched = self._fetched, None
        return sha

    def forget(self) -> None:
        """The last head handed over was not applied (the pull failed): hand it over again next time."""
        with self._lock:
            self._handed = None

    def run(self) -> None:
        interval = self.settings.pull_interval or None
        while not self._stop.is_set():
            self._trigger.wait(interval)
            self._trigger.clear()
            if self._stop.is_set():
                break
            with self._lock:
                why, self._why = sorted(self._why) or ["interval"], set()
            try:
                sha = self._retrying(why)(pull.fetch, self.settings, self.repo, cancelled=self._stop.is_set)
            except CommitterError:
                break  # stopped while waiting to try again
            except Exception:  # the loop must outlive any one failure
                log.exception("pull_loop_error")
                continue
            self.failed(None)
            with self._lock:
                self._fetch_error = None
                self._failures = 0
                if sha is None or sha == self._handed:
                    continue  # nothing new there: the main loop is not disturbed
                self._fetched = self._handed = sha
            self._wake_main()

    def _pause(self, seconds: float) -> None:
        self.pause(seconds)

    def _retrying(self, why: list[str]) -> Any:
        """Every failed fetch is tried again with backoff (a webhook's pull must not wait for the next
        interval), until it works or the loop stops."""

        def failed(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            message = exc.message if isinstance(exc, CommitterError) else str(exc)
            with self._lock:
                self._fetch_error = {"kind": "pull", "message": message, "at": clock.iso(clock.now())}
                self._failures += 1
            self.failed(message)
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("pull_fetch_failed", error=message, why=why, retry_in=round(delay, 3))

        return retrying(
            lambda exc: isinstance(exc, CommitterError) and not self._stop.is_set(),
            cap=self.settings.push_backoff_max, sleep=self._pause, stopped=self._stop.is_set,
            on_backoff=failed, first=RETRY_FIRST, jitter=0.0,
        )
