"""The one place that configures structlog: console on a terminal, JSON lines otherwise."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from committer.core.errors import redact
from committer.core.paths import display_path

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


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog once for the process; fmt is auto, console or json."""
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _escape_paths,
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    """A bound logger for one module."""
    return structlog.get_logger(name)
