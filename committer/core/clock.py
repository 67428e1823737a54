"""The one clock formatter: ISO 8601 in UTC, as status, the state file, logs and trailers show time."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    """Seconds since the epoch (wall clock)."""
    return time.time()


def iso(epoch: float, ms: bool = False) -> str:
    """`2026-11-23T03:15:00Z`, or with milliseconds `2026-11-23T03:15:00.123Z`."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{text}.{int(epoch % 1 * 1000):03d}Z" if ms else text + "Z"


def parse(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (a `Z` or an offset; naive means UTC), or None."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def ago(text: str | None, at: float | None = None) -> str:
    """`4 s ago`, `3 m ago`, `2 h ago`, `5 d ago` for an ISO time; `never` for none."""
    if not text:
        return "never"
    then = parse(text)
    if then is None:
        return text
    seconds = max(0, int((time.time() if at is None else at) - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
