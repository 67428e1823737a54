"""Sizes, times and states in words for the pages: 1.2 MB, 3 minutes ago, Today, what the banner says."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

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


# -- the banner: what is held and what is sent, in words ---------------------------------------------------

HELD_LISTED = 200  # held files the banner lists by name
SECRET_MARK = "looks like it contains a secret ("
# What happened, per reason of a deletion hold ({n}: how many files); the setting is only a detail.
HOLD_WORDS = {
    "max_delete": ("{n} files were deleted at once; nothing was committed. Confirm if you meant it, or put them "
                   "back.", "Held because more files were deleted at once than the max_delete setting allows."),
    "data_dir_empty": ("The data folder is empty although the history has {n} files in it (is it unmounted?); "
                       "nothing was deleted from the history.",
                       "Held because the data folder is empty. Mount it again and this ends by itself."),
    "data_dir_missing": ("The data folder is missing; the {n} files in the history were not deleted from it.",
                         "Held because the data folder is missing. Put it back and this ends by itself."),
    "ignore_rules": ("New ignore rules would take {n} files out of the history (they stay on disk); nothing was "
                     "committed.", "Held because the rules would remove more files than the max_delete setting "
                     "allows. Change .bmignore or ignore back to keep them."),
    "pull_max_delete": ("A pull from the remote would delete {n} files here; it was not applied.",
                        "Held because the pull would delete more files than the max_delete setting allows."),
}


def hold_words(held: Mapping[str, Any]) -> tuple[str, str]:
    """(what happened, the detail) of a deletion hold, in words."""
    count = int(held.get("count") or 0)
    said, detail = HOLD_WORDS.get(str(held.get("reason")), (
        "{n} deletions are on hold; nothing was committed.", f"Held for {held.get('reason')}."))
    said = said.format(n=count)
    if count == 1:
        said = said.replace("1 files were", "1 file was").replace("1 files", "1 file")
    return said, detail


def sending(push: Mapping[str, Any]) -> str:
    """Where the backup stands: local (no remote), failing, never (nothing sent from here yet), unsent
    (commits waiting) or sent."""
    if not push.get("remote"):
        return "local"
    if int(push.get("consecutive_failures") or 0) > 0 or push.get("last_error"):
        return "failing"
    if not push.get("last_push_at"):
        return "never"
    if int(push.get("pending_commits") or 0) > 0:
        return "unsent"
    return "sent"


def banner(state: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The banner at the top of every page: what is held (deletions, files), and whether what was saved is
    sent. It says everything is backed up only when all is sent and nothing is held."""
    push = state.get("push") or {}
    error = state.get("last_error") or push.get("last_error")
    held: Mapping[str, Any] | None = state.get("held") or (state.get("pull") or {}).get("held")
    listed = [f for f in state.get("held_files") or [] if isinstance(f, Mapping) and not f.get("more")]
    more = sum(int(f.get("more") or 0) for f in state.get("held_files") or [] if isinstance(f, Mapping))
    secrets = [dict(f, kind=str(f.get("reason"))[len(SECRET_MARK):].rstrip(")")) for f in listed
               if str(f.get("reason", "")).startswith(SECRET_MARK)]
    others = [f for f in listed if not str(f.get("reason", "")).startswith(SECRET_MARK)]
    send = sending(push)
    missing = bool(state.get("data_dir_missing"))
    held_count = len(listed) + more
    level = "ok"
    if error or held or missing or secrets:
        level = "bad"
    elif held_count or send in ("unsent", "never"):
        level = "warn"
    said, detail = hold_words(held) if held else ("", "")
    checked = verified(state.get("verified"), now)
    if checked["failed"]:
        level = "bad"
    return {
        "verified": checked,
        "level": level,
        "remote": push.get("remote"),
        "send": send,
        "pending": int(push.get("pending_commits") or 0),
        "failures": int(push.get("consecutive_failures") or 0),
        "last_push_at": push.get("last_push_at"),
        "last_push_ago": relative(at, now) if (at := parse_iso(push.get("last_push_at"))) else None,
        "error": error,
        "held": held,
        "held_said": said,
        "held_detail": detail,
        "held_since": relative(since, now) if held and (since := parse_iso(held.get("since"))) else None,
        "held_more": max(0, int(held.get("count") or 0) - len(held.get("paths") or [])) if held else 0,
        "put_back": held is not None and held.get("reason") == "max_delete",
        "secrets": secrets[:HELD_LISTED],
        "held_files": others[:HELD_LISTED],
        "held_count": held_count,
        "others_more": max(0, held_count - len(secrets) - len(others[:HELD_LISTED])),
        "all_backed_up": send == "sent" and not held and not held_count and not missing,
        "data_dir_missing": missing,
        "diverged": (state.get("pull") or {}).get("diverged"),
        "proposals": [p for p in (state.get("pull") or {}).get("pull_requests") or []
                      if isinstance(p, Mapping) and p.get("state") in ("open", "no_pull_requests")][-3:],
    }


def verified(record: object, now: float) -> dict[str, Any]:
    """The last verify of the remote copy in words: when it last proved restorable, and a failure since."""
    record = record if isinstance(record, Mapping) else {}
    ok_at = parse_iso(record.get("last_ok_at") or (record.get("at") if record.get("ok") else None))
    failed = bool(record) and not record.get("ok")
    return {
        "known": bool(record),
        "ok_ago": relative(ok_at, now) if ok_at else None,
        "ok_at": record.get("last_ok_at") or (record.get("at") if record.get("ok") else None),
        "failed": failed,
        "reason": record.get("reason") if failed else None,
        "message": record.get("message") if failed else None,
    }
