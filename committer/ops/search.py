"""Finding files: names (a part of the path, any case) and content (a fixed string, any case) in the newest
version, and with `history` the versions where the text came or went. The CLI's `search` and the pages'
/search use this; it only reads, with bounded git commands.

Every search is bounded twice: a deadline (the git command is killed there) and a cap on what is listed;
`Found.stopped` says when either cut the answer short. The text is data: it reaches git after `-e` or as
`-S<text>`, fixed-string, so nothing in it is read as an option, a pattern or a pathspec.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from committer.commit.lfspaths import LfsPaths
from committer.core import clock
from committer.core.errors import ConfigError, GitError
from committer.core.paths import display_path
from committer.git.repo import GitRepo

NAMES_MAX = 200  # names listed
LINES_MAX = 200  # lines of content listed
PER_FILE = 5  # lines listed from one file
PAST_COMMITS = 200  # commits of the history looked at for the text coming or going
SECONDS = 10.0  # each git command's deadline
TEXT_MAX = 200  # characters of a search text
LINE_SHOWN = 200  # characters of a matching line shown


@dataclass(frozen=True)
class Line:
    """A line holding the text: its file, number and content; `sha`/`epoch` name the version (past ones)."""

    path: str
    number: int
    text: str
    sha: str = ""
    epoch: int = 0
    came: bool = True  # past versions: the text came in this commit (False: it went)


@dataclass
class Found:
    """What a search found, and why it stopped early (None: everything was looked at)."""

    text: str
    names: list[str] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    past: list[Line] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    unsearched: list[str] = field(default_factory=list)  # what was not looked into, and why


def as_dict(found: Found) -> dict[str, Any]:
    """What a search found as JSON (`committer search --json`, the agents' `search`): names shown escaped."""

    def line(hit: Line) -> dict[str, Any]:
        item: dict[str, Any] = {"path": display_path(hit.path), "line": hit.number, "text": hit.text}
        if hit.sha:
            item.update(sha=hit.sha, date=clock.iso(hit.epoch), came=hit.came)
        return item

    return {"text": found.text, "names": [display_path(p) for p in found.names],
            "lines": [line(h) for h in found.lines], "past": [line(h) for h in found.past],
            "stopped": found.stopped, "unsearched": found.unsearched}


def check_text(text: str) -> str:
    """The text to search for, or ConfigError: not empty, not too long, no NUL or line break."""
    text = text.strip()
    if not text:
        raise ConfigError("search", "give a text to search for, e.g. `committer search weekly`")
    if len(text) > TEXT_MAX or any(c in text for c in "\0\n\r"):
        raise ConfigError("search", f"search for one line of at most {TEXT_MAX} characters")
    return text


def search(repo: GitRepo, text: str, history: bool = False, seconds: float = SECONDS) -> Found:
    """Names and content in the newest version; with `history`, the versions where the text came or went."""
    text = check_text(text)
    found = Found(text)
    head = repo.head()
    if head is None:
        return found
    found.names = names(repo, text, found.stopped, seconds=seconds)
    found.lines = [line for _rev, line in _grep(repo, text, [head], [], LINES_MAX, found.stopped, seconds)]
    unread = sorted(LfsPaths(repo).paths)
    if unread:  # git holds their pointers only: their content is not searched, and the answer says so
        some = ", ".join(display_path(p) for p in unread[:3]) + (", ..." if len(unread) > 3 else "")
        found.unsearched.append(f"the content of {len(unread)} file{'s' if len(unread) != 1 else ''} kept in Git "
                                f"LFS (only their names are searched): {some}")
    if history:
        found.past = past(repo, text, found.stopped, seconds=seconds)
    return found


def names(repo: GitRepo, text: str, stopped: list[str] | None = None, most: int = NAMES_MAX,
          seconds: float = SECONDS) -> list[str]:
    """The paths in the newest version holding `text`, any case: names that start with it first, then
    names holding it, then folders holding it, shorter first."""
    head = repo.head()
    if head is None:
        return []
    wanted = text.casefold()
    hits: list[tuple[int, int, str]] = []
    for record in _records(repo, ["ls-tree", "-r", "-z", "--name-only", "--full-tree", head], seconds,
                           stopped if stopped is not None else [], "the list of files"):
        path = os.fsdecode(record)
        folded = path.casefold()
        if wanted not in folded:
            continue
        base = folded.rsplit("/", 1)[-1]
        rank = 0 if base.startswith(wanted) else 1 if wanted in base else 2
        hits.append((rank, len(path), path))
    hits.sort()
    if len(hits) > most and stopped is not None:
        stopped.append(f"only the first {most} of {len(hits)} matching names are listed")
    return [path for _rank, _size, path in hits[:most]]


def past(repo: GitRepo, text: str, stopped: list[str], most: int = LINES_MAX, commits: int = PAST_COMMITS,
         seconds: float = SECONDS) -> list[Line]:
    """The commits (newest first, of the last `commits`) where the number of times `text` is in a file
    changed: it came (the line as it was then) or went (the line as it was before)."""
    head = repo.head()
    if head is None:
        return []
    args = ["log", f"-S{text}", "-i", "-z", "--no-renames", "--name-only", "--format=%x1e%H %P%x1f%ct",
            f"--max-count={commits + 1}", head, "--"]
    hits: list[tuple[str, str, int, str]] = []  # sha, first parent, time, path
    seen = 0
    sha = parent = ""
    epoch = 0
    for record in _records(repo, args, seconds, stopped, "the search of past versions"):
        if record.startswith(b"\x1e"):
            ids, _, when = record[1:].decode("ascii", "replace").partition("\x1f")
            sha, _, parents = ids.partition(" ")
            parent = parents.split(" ")[0] if parents else ""
            epoch = int(when.strip()) if when.strip().isdigit() else 0
            seen += 1
            if seen > commits:
                break
            continue
        path = os.fsdecode(record.lstrip(b"\n"))
        if path and sha:
            hits.append((sha, parent, epoch, path))
            if len(hits) > most:  # one commit of a million files: the first ones only, and a bounded grep
                break
    if seen > commits:
        stopped.append(f"past versions: only the newest {commits} changes that hold the text are looked at")
    more, hits = len(hits) > most, hits[:most]
    if not hits:
        return []
    revs = sorted({sha for sha, *_ in hits} | {parent for _s, parent, *_ in hits if parent})
    paths = sorted({path for *_, path in hits})
    lines: dict[tuple[str, str], Line] = {}
    for rev, line in _grep(repo, text, revs, paths, len(revs) * len(paths) + 1, stopped, seconds, per_file=1):
        lines.setdefault((rev, line.path), line)
    out: list[Line] = []
    for sha, parent, epoch, path in hits:
        now, before = lines.get((sha, path)), lines.get((parent, path))
        shown = now or before
        out.append(Line(path, shown.number if shown else 0, shown.text if shown else "", sha, epoch,
                        came=now is not None))
    if more:
        stopped.append(f"past versions: only the first {most} are listed")
    return out


def _grep(repo: GitRepo, text: str, revs: list[str], paths: list[str], most: int, stopped: list[str],
          seconds: float, per_file: int = PER_FILE) -> Iterator[tuple[str, Line]]:
    """(revision, line) of `git grep` for `text` (fixed string, any case, text files only) in `revs`."""
    args = ["grep", "-z", "-n", "-I", "-i", "-F", f"--max-count={per_file}", "-e", text, *revs, "--", *paths]
    name: bytes | None = None
    number: bytes | None = None
    count = 0
    # -z: "rev:path" NUL number NUL "line\nrev:path" NUL number NUL "line\n"...
    for record in _records(repo, args, seconds, stopped, "the search of content"):
        if name is None:
            name = record
        elif number is None:
            number = record
        else:
            line, _, following = record.partition(b"\n")
            rev, _, path = name.partition(b":")
            count += 1
            if count > most:
                stopped.append(f"only the first {most} matching lines are listed")
                return
            yield rev.decode("ascii", "replace"), Line(os.fsdecode(path), int(number) if number.isdigit() else 0,
                                                       line.decode("utf-8", "replace")[:LINE_SHOWN])
            name, number = following or None, None


def _records(repo: GitRepo, args: list[str], seconds: float, stopped: list[str], what: str) -> Iterator[bytes]:
    """The NUL-separated records of a git command, until its deadline (then `stopped` says so)."""
    began = time.monotonic()
    try:
        with repo.stream(args, seconds=seconds) as records:
            yield from records
    except GitError as exc:
        if time.monotonic() - began >= seconds * 0.9:
            stopped.append(f"{what} stopped after {seconds:g} s: what was found by then is listed")
        elif not (args[0] == "grep" and exc.returncode == 1):  # git grep exits 1 when nothing matches
            raise
