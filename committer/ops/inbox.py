"""The daemon's in-process queue of requests: the pages (a restore) and the webhook (a forced update) hand
the main loop typed requests here and, when they wait, get the answer back through a future. The main loop
never waits on them, so a page cannot deadlock it; other processes use the file mailbox instead."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from committer.core.errors import CommitterError
from committer.ops.asking import ANSWER_TIMEOUT, Answer, Request

NOT_NOW = "committer is starting or stopping; try again in a moment"
TOO_LATE = "committer did not answer in time; see its logs"
WAIT_STEP = 1.0  # how often a waiting thread looks whether the daemon began to stop


@dataclass(eq=False)
class Ticket:
    """One queued request; `future` is None when nobody waits for its answer (a notice)."""

    request: Request
    future: Future[Answer] | None = None
    ident: str = field(default_factory=lambda: uuid.uuid4().hex)

    def begin(self) -> bool:
        """Main loop: True when it is to be served (False: its asker gave up)."""
        return self.future is None or self.future.set_running_or_notify_cancel()

    def answer(self, answer: Answer) -> None:
        """Main loop: hand the answer to whoever waits."""
        if self.future is not None:
            self.future.set_result(answer)


class Inbox:
    """Requests from the daemon's own threads, served in order by the main loop (`take`)."""

    def __init__(self, wake: Callable[[], None], accepting: Callable[[], bool],
                 timeout: float = ANSWER_TIMEOUT) -> None:
        self._queue: queue.SimpleQueue[Ticket] = queue.SimpleQueue()
        self._wake = wake
        self._accepting = accepting
        self.timeout = timeout

    def ask(self, request: Request) -> Answer:
        """From another thread: the main loop's answer. CommitterError when the daemon is starting or
        stopping (also while the request waits in the queue) or does not answer within the timeout."""
        if not self._accepting():
            raise CommitterError(NOT_NOW)
        future: Future[Answer] = Future()
        self._queue.put(Ticket(request, future))
        self._wake()
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                return future.result(min(left, WAIT_STEP))
            except FutureTimeout:
                pass
            # Stopping: the loop will not take it any more. One being served is still answered.
            if not self._accepting() and future.cancel():
                raise CommitterError(NOT_NOW)
        future.cancel()
        raise CommitterError(TOO_LATE)

    def tell(self, request: Request) -> None:
        """From another thread: a request nobody waits for (served in order with the others)."""
        self._queue.put(Ticket(request))
        self._wake()

    def take(self) -> Ticket | None:
        """Main loop: the next request to serve, or None; those whose asker gave up are skipped."""
        while True:
            try:
                ticket = self._queue.get_nowait()
            except queue.Empty:
                return None
            if ticket.begin():
                return ticket
