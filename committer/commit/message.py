"""Commit messages: the chore(sync) summary and the BM-Meta trailer, built and parsed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from committer.commit import trailer
from committer.core.paths import display_path

TRAILER_KEY = "BM-Meta"
SUMMARY_PATHS = 2
MAX_PATH_CHARS = 60
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


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


def _show(path: str) -> str:
    shown = display_path(path)
    if len(shown) <= MAX_PATH_CHARS:
        return shown
    # the end of the name, cut between characters, never inside an escape such as \xff
    start, room = len(path), MAX_PATH_CHARS - 1
    while start > 0 and len(display_path(path[start - 1])) <= room:
        start -= 1
        room -= len(display_path(path[start]))
    return "…" + display_path(path[start:])


def summary(counts: Counts, paths: Sequence[str], prefix: str = "chore(sync)") -> str:
    """One subject line: counts and the first few paths, e.g. '3 files changed: a, b, +1 more'."""
    total = counts.total
    noun = "file" if total == 1 else "files"
    shown = [_show(p) for p in sorted(paths)[:SUMMARY_PATHS]]
    rest = total - len(shown)
    listed = ", ".join(shown) + (f", +{rest} more" if rest > 0 else "")
    return f"{prefix}: {total} {noun} changed: {listed}" if shown else f"{prefix}: {total} {noun} changed"


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
