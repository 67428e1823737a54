"""Revisions people type: dates as git reads them (never silently outside the history), and one file's
history across its moves."""

from __future__ import annotations

import datetime
import os
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from committer.core import clock
from committer.core.errors import ConfigError
from committer.core.paths import display_path

if TYPE_CHECKING:
    from committer.git.repo import GitRepo

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 31 * 86400,
          "year": 366 * 86400}
_AGO = re.compile(r"^\s*(\d{1,15})\s+(second|minute|hour|day|week|month|year)s?\s+ago\s*$", re.IGNORECASE)
_DAY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(\s?(Z|[+-]\d{2}:?\d{2}))?\s*$")
_ZONE = re.compile(r"\s(?=(Z|[+-]\d{2}:?\d{2})\s*$)")  # `2026-12-07 18:00 +0100`, as git prints dates
# The words git's approxidate knows (a month or a weekday also by its first three letters or more): a text
# with any other word is not a date, though approxidate would read something from it (`x 5` is "the 5th").
_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WORDS = frozenset((
    "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month", "months",
    "year", "years", "ago", "last", "yesterday", "today", "now", "noon", "midnight", "tea", "am", "pm", "utc",
    "gmt", "z", "at", "on", "of", "the", "and", "one", "two", "three", "four", "five", "six", "seven", "eight",
    "nine", "ten"))
_WORD = re.compile(r"[a-z]+")
_PLAIN = re.compile(r"^[A-Za-z0-9 .,:/+\-@]+$")  # `main~2`, `@{...}`, `a^` are revisions, not dates
# `main@{2 hours ago}`, `@{2026-01-01}`: a date on a branch (a number in the braces is a reflog entry).
_AT = re.compile(r"^(?P<ref>[^@{}]*)@\{(?P<when>[^{}]*)\}$")
_SHA = re.compile(rb"[0-9a-f]{40}")
# A date after now by less than this is "now": clocks of two machines differ a little.
_SLACK = 120.0
# What every "not a date" answer says can be typed.
FORMS = "a commit, a tag, or a date (2026-12-01, 2026-12-01 18:00, yesterday, last tuesday, 2 hours ago)"


class OutOfHistory(ConfigError):
    """A date after now or before the first commit: nothing was there; names the newest or oldest version.

    `edge` is "newest" or "oldest", `sha` and `at` (ISO 8601, UTC) that version, `asked` the text typed.
    """

    def __init__(self, asked: str, edge: str, sha: str, at: str, setting: str = "--to", path: str = "") -> None:
        self.asked, self.edge, self.sha, self.at = asked, edge, sha, at
        if edge == "newest":
            message = f"{asked} is in the future; the newest version is {sha[:12]} of {at}"
        else:
            shown = display_path(path)
            quoted = f" {shlex.quote(shown)}" if shown else ""
            message = (f"{asked} is before the history starts; the oldest version is {sha[:12]} of {at}: "
                       f"`committer log{quoted}` lists every version")
        super().__init__(setting, message)


@dataclass(frozen=True)
class Span:
    """What a date names: the instant `first`, or a whole day from `first` to `last` (epoch seconds)."""

    first: float
    last: float


_FAR_PAST, _FAR_FUTURE = Span(-1.0, -1.0), Span(float("inf"), float("inf"))


def parse_date(repo: GitRepo, text: str, now: float | None = None) -> Span | None:
    """What a person's date names, or None when the text is not a date.

    A bare day (`2026-12-01`), `today` and `yesterday` are whole days (the version at their end); an ISO 8601
    time is local time unless it says its zone; everything else is read by git's own approxidate (`last
    tuesday`, `yesterday 18:00`, `2 hours ago`, `noon`, `dec 1`). approxidate never fails: it reads "now" from
    text it does not understand, so a text with a word it does not know, or that it reads as now without
    saying now, is not a date.
    """
    now = time.time() if now is None else now
    word = " ".join(text.lower().split())
    if word in ("today", "yesterday"):
        return _day(datetime.date.fromtimestamp(now) - datetime.timedelta(days=1 if word == "yesterday" else 0))
    if _ISO.match(text):
        return _iso(text)
    if re.match(r"^\s*(\d{4}-\d{2}-\d{2}|\d{5,}-)", text):
        return None  # 2026-13-45, 10000-01-01: git would read some other day from it
    match = _AGO.match(text)
    if match and int(match[1]) * _UNITS[match[2].lower()] >= now:
        return _FAR_PAST  # before 1970: git would read it as now
    if not word or not _PLAIN.match(text) or not all(map(_known, _WORD.findall(word))) or len(text) > 100:
        return None
    out = repo.git("rev-parse", f"--since={text}", "--since=now", check=False).stdout.decode().split()
    if len(out) != 2 or not all(item.startswith("--max-age=") for item in out):
        return None
    at, then = (int(item.removeprefix("--max-age=")) for item in out)
    if abs(at - then) <= 1 and not match and not any(w in ("now", "today") for w in word.split()):
        return None  # `next tuesday`, `tuesday`: read as now, which they do not say (`1 second ago` does)
    return Span(float(at), float(at))


def _known(word: str) -> bool:
    return word in _WORDS or (len(word) >= 3 and any(name.startswith(word) for name in _NAMES))


def _iso(text: str) -> Span | None:
    try:
        if _DAY.match(text):
            return _day(datetime.date.fromisoformat(text.strip()))
        parsed = datetime.datetime.fromisoformat(_ZONE.sub("", text.strip()))
    except ValueError:
        return None
    try:
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # local time, as a person means it
        return Span(parsed.timestamp(), parsed.timestamp())
    except (OverflowError, ValueError):  # year 1 or 9999 in a time zone: far outside any history
        return _FAR_PAST if parsed.year < 1970 else _FAR_FUTURE


def _day(day: datetime.date) -> Span:
    try:
        start = datetime.datetime.combine(day, datetime.time()).astimezone()
        return Span(start.timestamp(), (start + datetime.timedelta(days=1)).timestamp() - 1)
    except (OverflowError, ValueError):
        return _FAR_PAST if day.year < 1970 else _FAR_FUTURE


def resolve(repo: GitRepo, rev: str, setting: str = "--to", path: str = "") -> str | None:
    """The commit `rev` names (see GitRepo.resolve); OutOfHistory for a date outside the history (naming
    `path` in its hint to `committer log`)."""
    at = _AT.match(rev)
    if at is not None and not at["when"].strip().lstrip("-").isdigit():
        span = parse_date(repo, at["when"])
        if span is not None:
            ref = _branch(repo, at["ref"])
            return None if ref is None else on_date(repo, ref, span, rev, setting, path)
    proc = repo.git("rev-parse", "-q", "--verify", "--end-of-options", f"{rev}^{{commit}}", check=False)
    sha = proc.stdout.decode().strip()
    if proc.returncode == 0 and sha:
        return sha
    span = parse_date(repo, rev)
    if span is None or repo.head() is None:
        return None
    return on_date(repo, repo.ref, span, rev, setting, path)


def _branch(repo: GitRepo, name: str) -> str | None:
    if name in ("", "HEAD"):
        return repo.ref
    proc = repo.git("rev-parse", "-q", "--verify", "--end-of-options", f"{name}^{{commit}}", check=False)
    return name if proc.returncode == 0 else None


def on_date(repo: GitRepo, ref: str, span: Span, asked: str, setting: str = "--to", path: str = "") -> str:
    """The last commit of `ref` at the end of `span`; OutOfHistory when the span starts after now or
    ends before the first commit."""
    if span.first > time.time() + _SLACK:
        newest = _commits(repo, "-1", ref)
        if not newest:
            raise ConfigError(setting, f"{asked}: the branch has no commits")
        raise OutOfHistory(asked, "newest", *newest[0], setting=setting)
    # Given as a UTC date: git reads a bare number of fewer than nine digits (before 1973) as something
    # else, and a date before 1970 as "now"; no commit of this history is that old anyway.
    found = _commits(repo, "-1", f"--before={_git_date(span.last)}", ref) if span.last > 0 else []
    if found:
        return found[0][0]
    roots = _commits(repo, "--max-parents=0", ref)
    if not roots:
        raise ConfigError(setting, f"{asked}: the branch has no commits")
    sha, at = min(roots, key=lambda item: item[1])
    raise OutOfHistory(asked, "oldest", sha, at, setting=setting, path=path)


def _git_date(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


def _commits(repo: GitRepo, *args: str) -> list[tuple[str, str]]:
    """(sha, ISO 8601 commit time) of `git rev-list` (ends with the `--` that keeps a ref a ref)."""
    out = repo.git("log", "--format=%H %ct", *args, "--", check=False).stdout.decode()
    return [(sha, clock.iso(int(epoch))) for sha, epoch in (line.split() for line in out.splitlines())]


@dataclass(frozen=True)
class Entry:
    """One commit of a file's history: its id, time, message, and (old, new) when it moved the file."""

    sha: str
    epoch: int
    message: str
    moved: tuple[str, str] | None


def follow(repo: GitRepo, path: str, max_count: int, start: str | None = None) -> Iterator[Entry]:
    """A file's commits, newest first, from `start` (the branch by default) across its moves (git's rename
    detection, 50 % similar)."""
    out = repo.git("log", "--follow", "-M", "-z", "--name-status", f"--max-count={max_count}",
                   "--format=%x1e%H%x1f%ct%x1f%B%x1f", start or repo.ref, "--", path, check=False).stdout
    for record in out.split(b"\x1e")[1:]:
        fields = record.split(b"\x1f", 2)
        if len(fields) != 3 or not _SHA.fullmatch(fields[0]) or not fields[1].isdigit():
            continue  # the tail of a message that held a separator byte: its commit was read already
        head, epoch, rest = fields
        text, _, status = rest.rpartition(b"\x1f")
        fields = status.strip(b"\0\n").split(b"\0")
        moved = None
        if fields[0][:1] in (b"R", b"C") and len(fields) >= 3:
            moved = (os.fsdecode(fields[1]), os.fsdecode(fields[2]))
        yield Entry(head.decode(), int(epoch), text.decode("utf-8", "replace"), moved)
