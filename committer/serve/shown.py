"""How what the pages show is put into words and links: file names as bytes-exact links and readable
text, the banner, the trailer's rows. Pure: no HTTP, no templates."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from committer.core.paths import display_text
from committer.serve import wording

HELD_LISTED = wording.HELD_LISTED


def readable(value: str) -> str:
    """Text with each byte of a name that was not UTF-8 shown as \\xNN (`bad\\xff.md`), and control
    characters and bidirectional overrides as \\xNN / \\uNNNN, so any name can be shown and encoded and
    no text reads otherwise than it is; other text (line breaks and tabs included) is unchanged."""
    return display_text(value, lines=True)


def name_bytes(value: str) -> bytes:
    """A name back as the bytes it has on disk and in git (the inverse of os.fsdecode)."""
    try:
        return os.fsencode(value)
    except UnicodeError:  # a lone surrogate that did not come from a byte: no such name on disk
        return value.encode("utf-8", "backslashreplace")


def url_path(value: object) -> str:
    """A name in a URL path: its bytes percent-encoded, slashes kept, so every name round-trips."""
    return quote(name_bytes(str(value)), safe="/")


def url_part(value: object) -> str:
    """A name as one URL component (a query value, an anchor)."""
    return quote(name_bytes(str(value)), safe="")


def from_url(value: str) -> str:
    """A percent-encoded name from a URL back to the name (undecodable bytes kept as os.fsdecode keeps them)."""
    return os.fsdecode(unquote_to_bytes(value))


def banner(state: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The banner's state in words (serve/wording.py)."""
    return wording.banner(state, now)


LABELS = {
    "op": "Operation", "host": "Host", "first_event": "First change seen", "batch": "Batch",
    "added": "Added", "modified": "Modified", "deleted": "Deleted", "renamed": "Renamed",
    "source": "Restored from commit", "rev": "Restored from", "path": "Restored path", "remote": "Remote commit",
    "head": "Head", "v": "Trailer version", "allowed_secret": "Said not to be a secret",
}


def meta_rows(meta: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The BM-Meta trailer (already cleaned: commit.trailer) as (label, value) rows a person can read."""
    if not meta:
        return []
    rows = []
    for key, value in meta.items():
        if key == "bmmeta":
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            rows.append(("Written by (.bmmeta)", value))
        else:
            rows.append((LABELS.get(key, str(key)), str(value)))
    return rows


# The pictures a browser shows inline, known by their first bytes (never by their name alone): an SVG or
# an HTML file is not among them, whatever it is called, and stays text.
PICTURES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
            ".webp": "image/webp"}
PICTURE_HEAD = 12  # bytes picture_type looks at


def picture_type(head: bytes) -> str | None:
    """The picture's media type from its first bytes (PNG, JPEG, GIF, WebP), else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def picture_name(path: str) -> bool:
    """Whether a name says picture (used only where the content is too large to look at first)."""
    return os.path.splitext(path.lower())[1] in PICTURES
