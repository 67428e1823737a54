"""Where page work runs: a small pool of its own, a deadline, and an end when the client goes away.

The health endpoints and the webhook never wait behind a page: pages take their threads from their own
CapacityLimiter, and the endpoints from another. A page whose client disconnects, or that is still
running at its deadline, is stopped: the git processes its thread started are killed (GitRunner kills
their whole group) and the Python work checks `Job.stopped` between steps, so the thread is free again
within moments rather than when the work would have ended.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from committer.core import logs
from committer.core.errors import CommitterError
from committer.git.runner import GitRunner

log = logs.get("committer.pages")

T = TypeVar("T")
Receive = Callable[[], Awaitable[Mapping[str, Any]]]

PAGE_WORKERS = 4  # pages computed at once; more wait (within their deadline) for a free worker
PAGE_SECONDS = 10.0  # the longest a page may take, waiting for a worker included
ENDPOINT_WORKERS = 8  # threads for /healthz, /readyz, /metrics and the webhook, never shared with pages


GONE = "the client went away"


class Stopped(CommitterError):
    """The page's work was stopped: its client went away, its deadline passed, or committer is stopping."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"page stopped: {reason}")
        self.client_gone = reason == GONE


class Job:
    """One page's work: the thread it runs on, and whether it has been told to stop."""

    def __init__(self, runner: GitRunner | None) -> None:
        self.runner = runner
        self.reason: str | None = None
        self._thread: int | None = None
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        """Whether the work should end now (checked between steps of long Python work)."""
        return self.reason is not None

    def check(self) -> None:
        """Raise Stopped when the work has been told to stop."""
        if self.reason is not None:
            raise Stopped(self.reason)

    def run(self, work: Callable[[Job], T]) -> T:
        """On the worker thread: do the work, known to `stop` by its thread."""
        with self._lock:
            self.check()
            self._thread = threading.get_ident()
        try:
            return work(self)
        finally:
            with self._lock:
                self._thread = None

    def stop(self, reason: str) -> None:
        """From the event loop: tell the work to end and kill the git processes it is waiting for."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            thread = self._thread
        if thread is not None and self.runner is not None:
            self.runner.terminate(thread=thread)


class PagePool:
    """Runs page work on its own bounded pool, with a deadline, stopped when the client goes away."""

    def __init__(self, runner: GitRunner | None, workers: int = PAGE_WORKERS, seconds: float = PAGE_SECONDS) -> None:
        self.runner = runner
        self.workers = workers
        self.seconds = seconds
        self._limiter: anyio.CapacityLimiter | None = None
        self._jobs: set[Job] = set()
        self._jobs_lock = threading.Lock()
        self._closed: str | None = None  # once stopping: the reason new pages are not started

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        # Made on first use: a limiter belongs to the event loop that serves the pages.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.workers)
        return self._limiter

    async def run(self, receive: Receive | None, work: Callable[[Job], T], what: str = "page") -> T:
        """The work's result; Stopped when the client went away or the deadline passed first."""
        job = Job(self.runner)
        with self._jobs_lock:
            if self._closed is not None:
                job.stop(self._closed)
            self._jobs.add(job)
        try:
            return await self._run(job, receive, work, what)
        finally:
            with self._jobs_lock:
                self._jobs.discard(job)

    def stop_all(self, reason: str) -> None:
        """From any thread: stop every page being computed (the server is stopping)."""
        with self._jobs_lock:
            self._closed = reason
            jobs = tuple(self._jobs)
        for job in jobs:
            job.stop(reason)

    async def _run(self, job: Job, receive: Receive | None, work: Callable[[Job], T], what: str) -> T:
        result: list[T] = []
        failed: list[BaseException] = []

        async def watch_client() -> None:
            if receive is None:
                return
            while True:  # a GET's body is already read: the next message is the disconnect
                message = await receive()
                if message["type"] == "http.disconnect":
                    job.stop(GONE)
                    group.cancel_scope.cancel()
                    return

        async def deadline() -> None:
            await anyio.sleep(self.seconds)
            job.stop(f"it took longer than {self.seconds:g}s")
            log.warning("page_too_slow", what=what, seconds=self.seconds)
            group.cancel_scope.cancel()

        async def work_it() -> None:
            # Not abandoned on cancel: a cancel first stops the job, so the thread ends within moments and
            # its worker is free for the next page only then (the pool stays bounded).
            try:
                result.append(await anyio.to_thread.run_sync(job.run, work, limiter=self.limiter))
            except Exception as exc:  # raised below, outside the task group (never as an ExceptionGroup)
                failed.append(exc)
            group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(watch_client)
            group.start_soon(deadline)
            group.start_soon(work_it)
        if result:
            return result[0]
        if failed and not job.stopped:
            raise failed[0]
        raise Stopped(job.reason or "cancelled")


class Threads:
    """A bounded set of threads for quick blocking calls (health, metrics, the webhook's handler)."""

    def __init__(self, workers: int = ENDPOINT_WORKERS) -> None:
        self.workers = workers
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` on one of these threads."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.workers)
        return await anyio.to_thread.run_sync(call, *args, limiter=self._limiter)
