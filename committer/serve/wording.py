"""Sizes and times in words for the pages: 1.2 MB, 3 minutes ago, Today."""

from __future__ import annotations

import datetime

from committer.git.repo import GitRepo


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


def commit_time(repo: GitRepo, sha: str) -> int:
    """When a commit was made (unix seconds)."""
    out = repo.git("log", "-1", "--format=%ct", sha, "--").stdout.decode().strip()
    return int(out) if out.isdigit() else 0


def parse_iso(text: object) -> int | None:
    """Unix seconds of an ISO 8601 time such as the state file keeps, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def relative(when: int, now: float) -> str:
    """'just now', '5 minutes ago', 'yesterday', '3 days ago', ..."""
    seconds = max(0, int(now - when))
    if seconds < 45:
        return "just now"
    for limit, size, unit in ((3600, 60, "minute"), (86400, 3600, "hour"), (86400 * 30, 86400, "day"),
                              (86400 * 365, 86400 * 30, "month")):
        if seconds < limit:
            count = max(1, round(seconds / size))
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    count = max(1, seconds // (86400 * 365))
    return f"{count} year{'s' if count != 1 else ''} ago"


def day_label(when: int, now: float) -> str:
    """'Today', 'Yesterday', or 'Monday 30 November 2026' (UTC)."""
    day = datetime.datetime.fromtimestamp(when, datetime.UTC).date()
    today = datetime.datetime.fromtimestamp(now, datetime.UTC).date()
    if day == today:
        return "Today"
    if day == today - datetime.timedelta(days=1):
        return "Yesterday"
    return day.strftime("%A %d %B %Y")


def absolute(when: int) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
