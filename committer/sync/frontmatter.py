"""A conflict copy of a Markdown note is a distinct note: its YAML frontmatter `title:` and `permalink:` get
the copy's conflict suffix, as its file name did (basic-memory indexes notes by title and permalink).

Only top-level, one-line `title:` and `permalink:` values of a frontmatter block that opens the file are
changed, in place; everything else is kept byte for byte. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

MARKDOWN = (".md", ".markdown", ".mdx")
_OPEN = re.compile(rb"\A---[ \t]*\r?\n")
_CLOSE = re.compile(rb"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE)
_KEY = re.compile(rb"^(title|permalink)([ \t]*:[ \t]*)(.*?)([ \t]*)(\r?)$", re.MULTILINE)
_PLAIN_UNSAFE = re.compile(r"[:#'\"\\\[\]{}&*!|>%@`]")


def suffix_of(path: str, copy: str) -> str:
    """What the copy's name adds to the original's stem: ` (conflict from main, 2026-11-23T03-35-00Z)`."""
    stem, copied = PurePosixPath(path), PurePosixPath(copy)
    original = stem.name[: -len(stem.suffix)] if stem.suffix else stem.name
    name = copied.name[: -len(copied.suffix)] if copied.suffix and copied.suffix == stem.suffix else copied.name
    return name[len(original):] if name.startswith(original) else ""


def slug(text: str) -> str:
    """The suffix as a permalink part: lower case, words joined by hyphens."""
    return "-".join(w for w in re.split(r"[^0-9a-z]+", text.lower()) if w)


def distinct(path: str, copy: str, content: bytes) -> bytes:
    """`content` of the conflict copy `copy` of `path`, with its frontmatter title and permalink suffixed;
    unchanged when it is not Markdown, has no frontmatter, or its values are not one-line scalars."""
    if not copy.lower().endswith(MARKDOWN):
        return content
    suffix = suffix_of(path, copy)
    opened = _OPEN.match(content)
    if not suffix or opened is None:
        return content
    closed = _CLOSE.search(content, opened.end())
    if closed is None:
        return content
    head = content[opened.end():closed.start()]

    def change(match: re.Match[bytes]) -> bytes:
        key, sep, value, space, cr = match.groups()
        new = _suffixed(value, suffix if key == b"title" else "-" + slug(suffix))
        return match.group(0) if new is None else key + sep + new + space + cr

    return content[: opened.end()] + _KEY.sub(change, head) + content[closed.start():]


def _suffixed(raw: bytes, suffix: str) -> bytes | None:
    """A YAML scalar with `suffix` appended; None when it is not a one-line scalar this can change safely."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not value or value[0] in "|>&*!%@`#[{":
        return None
    if value[0] == '"':
        if len(value) < 2 or not value.endswith('"') or value.endswith('\\"'):
            return None
        return (value[:-1] + json.dumps(suffix)[1:-1] + '"').encode()
    if value[0] == "'":
        if len(value) < 2 or not value.endswith("'"):
            return None
        return (value[:-1] + suffix.replace("'", "''") + "'").encode()
    if " #" in value:
        return None  # a comment after the value: left alone rather than guessed at
    if _PLAIN_UNSAFE.search(suffix) or ": " in value + suffix:
        return json.dumps(value + suffix, ensure_ascii=False).encode()
    return (value + suffix).encode()
