"""Where events go once made: counted, handed to the listeners (the live stream), and, with `notify_url` or
`exec_hook` set, written to the durable outbox, from which one courier per receiver delivers them.

`emit` is what the commit side, the pull and the push loop are given; it never raises and never waits for a
receiver: a receiver that is down or hangs costs the commit one fsynced append, nothing more.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from typing import Any, Protocol

from committer.core import events, logs
from committer.core.errors import CommitterError
from committer.core.settings import Settings
from committer.ops import outbox as box
from committer.ops.courier import Courier
from committer.ops.receivers import HookReceiver, HttpReceiver, Receiver

log = logs.get(__name__)


class NotifyMetrics(Protocol):
    """What the events side reports (the daemon passes its metrics registry)."""

    def event(self, name: str) -> None: ...
    def delivery(self, result: str, count: int = 1) -> None: ...
    def set_outbox(self, waiting: int) -> None: ...


def receiver_names(settings: Settings) -> tuple[str, ...]:
    """The names of the receivers the settings configure (their cursor files are named after them)."""
    configured = ((HttpReceiver.name, settings.notify_url), (HookReceiver.name, settings.exec_hook))
    return tuple(name for name, on in configured if on)


def receivers(settings: Settings) -> list[Receiver]:
    """The receivers the settings name: the HTTP endpoint, the exec hook, both or neither."""
    found: list[Receiver] = []
    if settings.notify_url:
        found.append(HttpReceiver(settings))
    if settings.exec_hook:
        found.append(HookReceiver(settings))
    return found


class Notify:
    """The events of one daemon (or of one command, which only fills the outbox for the next daemon). A
    Service to the daemon: its couriers start, stop, live and fail together."""

    name = "notify"

    def __init__(self, settings: Settings, metrics: NotifyMetrics | None = None,
                 on_change: Callable[[], None] | None = None, names: tuple[str, ...] | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._on_change = on_change
        self._receivers = receivers(settings) if names is None else []
        self.names = tuple(r.name for r in self._receivers) if names is None else names
        self.outbox = box.Outbox(settings.git_dir, self.names, settings.notify_outbox_max, self._dropped) \
            if self.names else None
        self._listeners: list[events.Emit] = []
        self._couriers: list[Courier] = []
        self._lock = threading.Lock()
        self._last_error: dict[str, Any] | None = None

    @classmethod
    def for_command(cls, settings: Settings) -> Notify:
        """For a command run without a daemon: its events wait in the outbox for the receivers the last
        daemon delivered to (their cursors are there), or those the command's own settings name."""
        named = receiver_names(settings)
        kept = tuple(sorted(p.name.removesuffix(".acked") for p in box.outbox_dir(settings.git_dir).glob("*.acked")))
        notify = cls(settings, names=tuple(dict.fromkeys(named + kept)))
        notify.open()
        return notify

    def listen(self, listener: events.Emit) -> None:
        """Hand every event to `listener` too (before start)."""
        self._listeners.append(listener)

    def open(self) -> None:
        """Open the outbox (delivering nothing yet); without receivers, an outbox left over is removed."""
        if self.outbox is None:
            retire(self.settings)
            return
        try:
            self.outbox.open()
        except OSError as exc:  # one line and an exit code, not a traceback
            raise CommitterError(f"cannot open the events outbox in {self.outbox.dir}: {exc.strerror or exc}") from None
        self._gauge()

    def start(self) -> None:
        """One courier per receiver, each on its own thread."""
        if self.outbox is None:
            return
        for receiver in self._receivers:
            courier = Courier(self.outbox, receiver, self._result)
            courier.start()
            self._couriers.append(courier)

    def emit(self, event: events.Event) -> None:
        """Count the event, keep it for the receivers, hand it to the listeners; never raises."""
        try:
            if self.metrics is not None:
                self.metrics.event(str(event["event"]))
            if self.outbox is not None:
                self.outbox.append(event)
                self._gauge()
            for listener in self._listeners:
                listener(event)
        except Exception:  # telling others must never fail the commit, push or pull that happened
            log.exception("event_emit_failed", what=event.get("event"), id=event.get("id"))

    def stop(self, timeout: float | None = None) -> None:
        """Deliver what waits for up to `timeout` seconds (the grace; None: none), then stop every courier
        (joined) and close."""
        couriers, self._couriers = self._couriers, []
        # the couriers share one grace: each stops on a thread of its own, joined here
        threads = [threading.Thread(target=c.stop, args=(timeout,), name=f"stop-{c.name}") for c in couriers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.outbox is not None:
            self.outbox.close()

    def alive(self) -> bool:
        """Every courier started runs (True before start and after stop: nothing is down)."""
        return all(c.alive() for c in self._couriers)

    @property
    def last_error(self) -> str | None:
        """What ended a courier, else the last delivery failure's message."""
        ended = [c.last_error for c in self._couriers if c.last_error]
        if ended:
            return ended[0]
        with self._lock:
            return str(self._last_error["message"]) if self._last_error else None

    def snapshot(self) -> dict[str, Any] | None:
        """For the state file: the receivers, the last delivery error, the events dropped; None without any."""
        if self.outbox is None:
            return None
        with self._lock:
            error = dict(self._last_error) if self._last_error else None
        return {"receivers": list(self.names), "last_error": error, "dropped": self.outbox.dropped}

    def _result(self, receiver: str, result: str, error: dict[str, Any] | None) -> None:
        if self.metrics is not None:
            self.metrics.delivery(result)
        with self._lock:
            before = self._last_error
            if error is not None:
                self._last_error = error
            elif before is not None and before.get("receiver") == receiver:
                self._last_error = None
            changed = self._last_error is not before
        self._gauge()
        if changed and self._on_change is not None:
            self._on_change()

    def _dropped(self, _receiver: str, count: int) -> None:
        if self.metrics is not None:
            self.metrics.delivery("dropped", count)

    def _gauge(self) -> None:
        if self.metrics is not None and self.outbox is not None:
            self.metrics.set_outbox(self.outbox.waiting())


def retire(settings: Settings) -> None:
    """No receiver is configured: an outbox left by an earlier configuration goes (logged when it held events)."""
    directory = box.outbox_dir(settings.git_dir)
    if not directory.exists():
        return
    names = tuple(p.name.removesuffix(".acked") for p in directory.glob("*.acked"))
    waiting = box.peek(settings.git_dir, names)["outbox"]
    shutil.rmtree(directory, ignore_errors=True)
    if waiting:
        log.warning("outbox_removed", waiting=waiting, why="neither notify_url nor exec_hook is set any more")


def status(settings: Settings, state: dict[str, Any]) -> dict[str, Any]:
    """What `status` shows of events: waiting in the outbox, the oldest's time, the last delivery error."""
    found_state = state.get("events")
    kept: dict[str, Any] = found_state if isinstance(found_state, dict) else {}
    names = tuple(kept.get("receivers") or receiver_names(settings))
    found = box.peek(settings.git_dir, names) if names else {"outbox": None, "oldest_at": None}
    return {**found, "last_error": kept.get("last_error"), "dropped": kept.get("dropped")}
