"""The one place that configures structlog: console on a terminal, JSON lines otherwise.

JSON lines carry every field of every event. Console lines are for people: a save is one short line
naming its files and what became of it (`saved notes/plan.md (+1 more) → pushed`), a push failing again
and again is told once in full and then counted, and ids, full commit ids and empty values are left out
(all of them are shown with `--log-level debug`)."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from committer.core.errors import redact
from committer.core.paths import display_path, display_text

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_secrets: list[str] = []
# Short-lived credentials (App installation tokens, one an hour) are registered as they come; the oldest
# go once this many are kept, so redaction does not slow down over months. They expired long before.
SECRETS_KEPT = 256
# A byte of a file name that is not UTF-8, as os.fsdecode gives it.
_SURROGATE = re.compile("[\udc80-\udcff]")


def register_secret(secret: str) -> None:
    """Never print this value in any log event from now on."""
    if secret and secret not in _secrets:
        _secrets.append(secret)
        del _secrets[:-SECRETS_KEPT]


def _redact_event(_logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    secrets = tuple(_secrets)
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value, secrets)
    return event


def _shown(value: Any, path: bool) -> Any:
    if isinstance(value, str):
        return display_path(value) if path or _SURROGATE.search(value) else value
    if isinstance(value, (list, tuple)):
        return [_shown(item, path) for item in value]
    return value


def _escape_paths(_logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """File names as `display_path` shows them (a name that is not UTF-8 as `\\xNN`), in every renderer."""
    for key, value in event.items():
        shown = _shown(value, "path" in key)
        if shown is not value:
            event[key] = shown
    return event


_QUOTED = frozenset(" \t=\r\n\"'")  # a value holding one of these is shown as its repr by the console renderer


def _escape_controls(_logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Console lines: no text acts on the operator's terminal (a name holding `\\x1b[2J` in a git error
    message, a branch, a URL). The event's text and a value the renderer prints as it is (one without a space
    or a quote; the others it prints as their repr, escaped) get control characters and bidirectional
    overrides as `\\xNN`; a line break in the event's text is kept (git's messages have several lines) but
    the next line is marked, so it cannot pass for an event of its own."""
    for key, value in event.items():
        if not isinstance(value, str) or key == "exception":
            continue
        if key == "event":
            shown = display_text(value)
            event[key] = shown.replace("\n", "\n    | ") if "\n" in shown else shown
        elif not _QUOTED.intersection(value):
            event[key] = display_text(value)
    return event


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog once for the process; fmt is auto, console or json."""
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
        if level != "debug":
            renderer = Console(renderer)
    else:
        renderer = structlog.processors.JSONRenderer()
    shown = [_escape_controls] if fmt == "console" else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _escape_paths,
            _redact_event,
            *shown,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def bound(**fields: Any) -> contextlib.AbstractContextManager[Any]:
    """Within it, every line this thread logs carries `fields` (a worker started within it: all its lines)."""
    return structlog.contextvars.bound_contextvars(**fields)


def get(name: str) -> Any:
    """A bound logger for one module."""
    return structlog.get_logger(name)


class Every:
    """While long work runs, log `event` every `seconds` (from a thread of its own) with how long it has run
    and what it reported so far: `advance(size)` per file read, `update(...)` for anything else."""

    def __init__(self, event: str, seconds: float, **fields: Any) -> None:
        self.event = event
        self.seconds = seconds
        self.fields = fields
        self.counts: dict[str, Any] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def advance(self, size: int) -> None:
        """One more file read, of `size` bytes."""
        self.counts["files"] = self.counts.get("files", 0) + 1
        self.counts["bytes"] = self.counts.get("bytes", 0) + size

    def update(self, **counts: Any) -> None:
        self.counts.update(counts)

    def __enter__(self) -> Every:
        self._started = time.monotonic()
        if self.seconds > 0:
            self._thread = threading.Thread(target=self._run, name=f"{self.event}-progress", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        log = get("committer.progress")
        while not self._done.wait(self.seconds):
            log.info(self.event, **self.fields, seconds=round(time.monotonic() - self._started, 1), **self.counts)

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


_expect_pushes = False


def expect_pushes() -> None:
    """Pushes follow the commits of this process: a console save line waits for its push's outcome."""
    global _expect_pushes
    _expect_pushes = True


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_PAST = {"save": "saved", "delete": "deleted", "rename": "renamed", "restore": "restored",
         "confirm": "confirmed", "stop": "stopped", "merge": "merged"}
_MORE = re.compile(r" and (\d+) more$")
_REASONS = {"transient": "remote unreachable", "auth": "the remote refused the credentials",
            "not_found": "the remote repository was not found", "non_fast_forward": "the remote has other commits"}
_STOPPING = ("daemon_stopping", "daemon_stop")
BATCHES_LISTED = 50  # batch ids a git_push event lists at most (sync.push.BATCHES_SHOWN)


def _said(summary: str) -> str:
    """'save a.md and 2 more' as a console line says it: 'saved a.md (+2 more)'."""
    verb, _, rest = summary.partition(" ")
    rest = _MORE.sub(lambda m: f" (+{m.group(1)} more)", rest).replace(" → ", " to ")  # one arrow: the outcome
    return f"{_PAST.get(verb, verb)} {rest}".strip()


def _progress(event: MutableMapping[str, Any]) -> str:
    """'scanning the data directory: 1,200 files read (3.4 MB) in 10 s', 'pushing to …: writing objects …'."""
    took = f"{event.get('seconds', 0):.0f} s"
    if event.get("event") == "reconcile_progress":
        read = event.get("files", 0)
        size = event.get("bytes", 0) / 1e6
        return f"scanning the data directory ({event.get('why')}): {read:,} files read ({size:,.1f} MB) in {took}"
    phase = str(event.get("phase") or "starting").lower()
    total = event.get("total")
    done = f" {event.get('done', 0):,}" + (f"/{total:,}" if total else "") if event.get("phase") else ""
    size = f", {event['size']}" if event.get("size") else ""
    return f"pushing to {event.get('remote')}: {phase}{done}{size} in {took}"


class Console:
    """Console lines for people, in front of structlog's console renderer."""

    def __init__(self, render: Any) -> None:
        self.render = render
        self.waiting: list[tuple[str, str]] = []  # (batch, line) of saves whose push has not ended yet
        self.failing: dict[str, Any] | None = None  # the push failure being counted: kind, count, since
        self.repeats: dict[str, dict[str, Any]] = {}  # another failure's event -> its last text, count, since

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        lines = self._lines(event)
        if not lines:
            raise structlog.DropEvent
        return "\n".join(self.render(logger, name, line) for line in lines)

    def _line(self, event: MutableMapping[str, Any], text: str, level: str | None = None) -> dict[str, Any]:
        return {"timestamp": event.get("timestamp"), "level": level or event.get("level", "info"), "event": text}

    def _lines(self, event: MutableMapping[str, Any]) -> list[MutableMapping[str, Any]]:
        name = event.get("event")
        if name == "git_commit":
            text = _said(str(event.get("summary") or f"save {event.get('files')} files"))
            if _expect_pushes and self.failing is None:
                self.waiting.append((str(event.get("batch")), text))
                return []
            return [self._line(event, text + (" → not pushed yet" if _expect_pushes else ""))]
        if name == "git_push":
            return self._push(event)
        if name == "push_backoff":
            return []  # the failure's line says it will be retried
        if name in ("reconcile_progress", "push_progress"):
            return [self._line(event, _progress(event))]
        if str(name).endswith("_failed") and ("error" in event or "message" in event):
            return [self._cleaned(self._repeated(event))]
        if name in _STOPPING:
            held = [self._line(event, f"{text} → not pushed yet") for _, text in self.waiting]
            self.waiting = []
            return [*held, self._cleaned(event)]
        return [self._cleaned(event)]

    def _push(self, event: MutableMapping[str, Any]) -> list[MutableMapping[str, Any]]:
        batches = event.get("batches") or []
        cut = len(batches) >= BATCHES_LISTED  # the event lists no more: every save so far was in the push
        done = [text for batch, text in self.waiting if cut or batch in batches]
        self.waiting = [] if cut else [(batch, text) for batch, text in self.waiting if batch not in batches]
        if event.get("result") == "ok":
            lines: list[MutableMapping[str, Any]] = []
            if self.failing is not None:
                failing, self.failing = self.failing, None
                lines.append(self._line(event, f"push works again (it failed {failing['count']} times since "
                                               f"{failing['since']})"))
            lines += [self._line(event, f"{text} → pushed") for text in done]
            if not done:
                commits = event.get("commits")
                lines.append(self._line(event, f"pushed {commits} commit{'' if commits == 1 else 's'} to "
                                               f"{event.get('remote')}"))
            return lines
        if not event.get("will_retry", True):
            return [self._line(event, f"{text} → not pushed") for text in done]  # the command's error says why
        lines = [self._line(event, f"{text} → push failed, will retry") for text in done]
        kind = str(event.get("kind"))
        if self.failing is None or self.failing["kind"] != kind:
            self.failing = {"kind": kind, "count": 1, "since": time.strftime("%H:%M")}
            return [self._line(event, f"push failed, will retry: {event.get('message')}"), *lines]
        self.failing["count"] = max(self.failing["count"] + 1, int(event.get("consecutive_failures") or 0))
        reason = _REASONS.get(kind, kind.replace("_", " "))
        failing = self.failing
        return [self._line(event, f"push still failing ({failing['count']} times since {failing['since']}): {reason}"),
                *lines]

    def _repeated(self, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """A failure told with the same text as the last time (a fetch retried while offline): counted, its
        text not repeated."""
        name, text = str(event.get("event")), str(event.get("error", event.get("message")))
        seen = self.repeats.get(name)
        if seen is None or seen["text"] != text:
            self.repeats[name] = {"text": text, "count": 1, "since": time.strftime("%H:%M")}
            return event
        seen["count"] += 1
        event.pop("error", None)
        event.pop("message", None)
        event["event"] = f"{name} again ({seen['count']} times since {seen['since']}, the same error)"
        return event

    def _cleaned(self, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Without empty values and ids; a commit id shortened to 12 characters."""
        for key in list(event):
            value = event[key]
            if value is None or (isinstance(value, str) and _UUID.match(value)) or (
                    isinstance(value, list) and value and all(isinstance(v, str) and _UUID.match(v) for v in value)):
                del event[key]
            elif isinstance(value, str) and _SHA.match(value):
                event[key] = value[:12]
        return event
