"""Commit messages: the chore(sync) subject and the BM-Meta trailer, built and parsed."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from committer.commit import trailer
from committer.core.paths import display_path

TRAILER_KEY = "BM-Meta"
PREFIX = "chore(sync)"
MAX_SUBJECT = 100  # characters of a subject at most; a longer one is cut at its end
RECENT_LOOKED_AT = 2000  # paths of a commit whose times are read to find the one changed last
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
ADDED, MODIFIED, DELETED = "A", "M", "D"


@dataclass(frozen=True)
class Counts:
    """How many paths a commit adds, modifies, deletes and renames."""

    added: int = 0
    modified: int = 0
    deleted: int = 0
    renamed: int = 0

    @property
    def total(self) -> int:
        return self.added + self.modified + self.deleted + self.renamed


@dataclass(frozen=True)
class About:
    """What one commit did, for its subject: the paths saved (added or changed), the most recent first, the
    paths deleted and the renames (old, new); `op` and, for a restore, the path and when it was restored to."""

    saved: Sequence[str] = ()
    deleted: Sequence[str] = ()
    renamed: Sequence[tuple[str, str]] = ()
    op: str | None = None
    path: str | None = None
    to: str | None = None


def _cut(text: str, room: int) -> str:
    """`text` in at most `room` characters, cut at its end with '…', never inside an escape such as \\xff."""
    shown = display_path(text)
    if len(shown) <= room:
        return shown
    out, used = [], 0
    for char in text:
        piece = display_path(char)
        if used + len(piece) > room - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + "…"


def _fit(head: str, path: str, tail: str = "") -> str:
    """`head` + the path + `tail`, the path cut at its end so the whole stays within MAX_SUBJECT."""
    return head + _cut(path, max(12, MAX_SUBJECT - len(head) - len(tail))) + tail


def _folder(paths: Sequence[str]) -> str:
    """The deepest folder holding every path ('' when they share none), with its trailing slash."""
    common = os.path.commonpath(["/" + p for p in paths]).lstrip("/") if paths else ""
    if common in paths:  # one file, or every path the same: its folder
        common = os.path.dirname(common)
    return common + "/" if common else ""


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def _renames(pairs: Sequence[tuple[str, str]]) -> str:
    if len(pairs) == 1:
        old, new = pairs[0]
        half = max(12, (MAX_SUBJECT - len("rename  → ")) // 2)
        return f"rename {_cut(old, half)} → {_cut(new, half)}"
    olds, news = _folder([o for o, _ in pairs]), _folder([n for _, n in pairs])
    if olds and news and olds != news and all(o[len(olds):] == n[len(news):] for o, n in pairs):
        half = max(12, (MAX_SUBJECT - 30) // 2)
        return f"rename {_cut(olds, half)} → {_cut(news, half)} ({len(pairs)} files)"
    return _fit(f"rename {len(pairs)} files in ", news) if news else f"rename {len(pairs)} files"


def subject_text(about: About) -> str:
    """What the commit did, in words (without the prefix)."""
    saved, deleted, renamed = list(about.saved), list(about.deleted), list(about.renamed)
    total = len(saved) + len(deleted) + len(renamed)
    if about.op == "confirm-deletes":
        return f"confirm {total} deletion" + ("" if total == 1 else "s")
    if about.op == "restore" and about.path is not None:
        what = "everything" if about.path in ("", ".") else about.path
        return _fit("restore ", what, f" to {about.to}" if about.to else "")
    if about.op == "untrack":
        if total == 1:
            return _fit("stop tracking ", (saved + deleted)[0], " (ignored now)")
        return f"stop tracking {total} files ignored now"
    if saved:
        rest = total - 1
        return _fit("save ", saved[0], f" and {rest} more" if rest else "")
    if renamed and not deleted:
        return _renames(renamed)
    if deleted and not renamed:
        if len(deleted) == 1:
            return _fit("delete ", deleted[0])
        folder = _folder(deleted)
        return _fit(f"delete {len(deleted)} files in ", folder) if folder else f"delete {len(deleted)} files"
    if renamed:
        return _renames(renamed)[:MAX_SUBJECT - 20] + f" and delete {_files(len(deleted))}"
    return "no change"


def subject(about: About, prefix: str = PREFIX) -> str:
    """One subject line that says what happened: 'chore(sync): save notes/plan.md and 2 more'."""
    return f"{prefix}: {subject_text(about)}"


def merge_subject(remote_name: str, conflicts: int = 0, prefix: str = PREFIX) -> str:
    """The subject of a merge with the remote's history: 'chore(sync): merge from GitHub'."""
    text = f"{prefix}: merge from {remote_name}"
    if conflicts:
        text += f" ({conflicts} conflict cop{'y' if conflicts == 1 else 'ies'})"
    return text


def most_recent_first(root: Path, paths: Sequence[str]) -> list[str]:
    """The paths, the one whose file changed last first (ties and gone files in path order). Past
    RECENT_LOOKED_AT paths (a first commit of a whole tree) they stay in path order: no time is read."""
    ordered = sorted(paths, key=os.fsencode)
    if len(ordered) > RECENT_LOOKED_AT or len(ordered) < 2:
        return ordered
    times = {}
    for path in ordered:
        try:
            st = os.lstat(root / path)
            times[path] = st.st_mtime_ns
        except OSError:
            times[path] = -1
    return sorted(ordered, key=lambda p: -times[p])


def trailer_value(
    *,
    batch: str,
    host: str,
    counts: Counts,
    first_event: str,
    bmmeta: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The BM-Meta JSON: compact, ASCII, one line."""
    meta: dict[str, Any] = {"v": 1, "batch": batch, "host": host}
    # A path is shown as everywhere else; no lone surrogate of a name that is not UTF-8 reaches the JSON.
    meta.update({k: display_path(v) if isinstance(v, str) and (k == "path" or _NOT_UTF8.search(v)) else v
                 for k, v in (extra or {}).items()})
    meta.update(
        added=counts.added,
        modified=counts.modified,
        deleted=counts.deleted,
        renamed=counts.renamed,
        first_event=first_event,
    )
    if bmmeta is not None:
        meta["bmmeta"] = bmmeta
    return json.dumps(meta, separators=(",", ":"), ensure_ascii=True, sort_keys=False)


def build(subject: str, meta_json: str) -> str:
    """The full message: subject, blank line, trailer."""
    return f"{subject}\n\n{TRAILER_KEY}: {meta_json}\n"


def parse_trailer(message: str) -> dict[str, Any] | None:
    """The decoded BM-Meta object of a message, or None when it has none or it is not a bounded JSON
    object (commit.trailer: trailers from other writers are data)."""
    return trailer.parse(message)
