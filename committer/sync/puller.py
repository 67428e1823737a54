"""The daemon's pull loop: fetches off the main loop (timer, webhook, refused push); the main loop applies.

Fetching talks to the network and may take long; applying touches the repository and the data directory,
so it runs on the daemon's main loop between batches, where commits already run one at a time.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

from committer.core import logs
from committer.core.errors import CommitterError
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.sync import pull
from committer.sync.transport import kill_group

log = logs.get("committer.puller")

RETRY_FIRST = 2.0


class Puller:
    """Fetches when asked or every pull_interval; `take()` hands the fetched head to the main loop."""

    def __init__(self, settings: Settings, repo: GitRepo, wake: Callable[[], None]) -> None:
        self.settings = settings
        self.repo = repo
        self._wake_main = wake
        self._trigger = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._fetched: str | None = None
        self._handed: str | None = None  # the last head handed over: the same one is not handed twice
        self._why: set[str] = set()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.last_error: dict[str, str] | None = None

    def start(self, fetch_now: bool) -> None:
        """Start the loop; with `fetch_now` (pulls are automatic) the first fetch runs at once, so what
        was pushed while the daemon was down (a webhook delivery it missed) arrives too."""
        if self._thread is not None:
            return
        if fetch_now:
            self.request("start")
        self._thread = threading.Thread(target=self._run, name="committer-puller", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        thread = self._thread
        return thread is None or thread.is_alive()

    def request(self, why: str) -> None:
        """Fetch soon (never blocks; many requests make one fetch)."""
        with self._lock:
            self._why.add(why)
        self._trigger.set()

    def stop(self) -> None:
        """End the loop now: a fetch under way is killed (it changes nothing that matters; redone later)."""
        self._stop.set()
        self._trigger.set()
        thread, self._thread = self._thread, None
        with self._lock:
            proc = self._proc
        if proc is not None:
            kill_group(proc)
        if thread is not None:
            thread.join(5)

    def _track(self, proc: subprocess.Popen[bytes] | None) -> None:
        with self._lock:
            self._proc = proc
        if proc is not None and self._stop.is_set():
            kill_group(proc)

    def take(self) -> str | None:
        """A newly fetched remote head for the main loop to apply; None when there is none."""
        with self._lock:
            sha, self._fetched = self._fetched, None
        return sha

    def forget(self) -> None:
        """The last head handed over was not applied (the pull failed): hand it over again next time."""
        with self._lock:
            self._handed = None

    def _run(self) -> None:
        interval = self.settings.pull_interval or None
        delay = RETRY_FIRST
        while not self._stop.is_set():
            self._trigger.wait(interval)
            self._trigger.clear()
            if self._stop.is_set():
                break
            with self._lock:
                why, self._why = sorted(self._why) or ["interval"], set()
            try:
                sha = pull.fetch(self.settings, self.repo, track=self._track)
            except CommitterError as exc:
                if self._stop.is_set():
                    break
                self.last_error = {"kind": "pull", "message": exc.message, "at": _now()}
                log.warning("pull_fetch_failed", error=exc.message, why=why, retry_in=delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.push_backoff_max)
                self._trigger.set()  # retry; a webhook's pull must not wait for the next interval
                continue
            except Exception:  # the loop must outlive any one failure
                log.exception("pull_loop_error")
                continue
            delay, self.last_error = RETRY_FIRST, None
            with self._lock:
                if sha is None or sha == self._handed:
                    continue  # nothing new there: the main loop is not disturbed
                self._fetched = self._handed = sha
            self._wake_main()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
