"""Relative paths of the data directory: their parents, and folding many into their directories."""

from __future__ import annotations

import re

# Above this many pending paths, paths are folded into their parent directories: the commit step
# walks a directory candidate, so nothing is lost, and memory stays bounded in a huge burst.
COALESCE_ABOVE = 50_000


def parent(path: str) -> str:
    """The directory holding path ('' for the top)."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def coalesce(paths: set[str], limit: int = COALESCE_ABOVE) -> set[str]:
    """Fold the deepest paths into their directories until at most `limit` remain."""
    while len(paths) > limit:
        deepest = max(p.count("/") for p in paths)
        if deepest == 0:
            return {""}
        paths = {parent(p) if p.count("/") == deepest else p for p in paths}
        paths = {p for p in paths if not covered(p, paths)}
    return paths


def covered(path: str, paths: set[str]) -> bool:
    """True when a directory above path is in paths (it is walked anyway)."""
    if "" in paths and path != "":
        return True
    while "/" in path:
        path = parent(path)
        if path in paths:
            return True
    return False


# Bytes that are not UTF-8 (os.fsdecode turns byte XX into U+DCXX), control characters, a backslash, and
# characters that change how a line reads (C1 controls, line separators, bidirectional overrides).
_SHOWN_ESCAPED = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # a byte that is not UTF-8, as it is on disk
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def display_path(path: str) -> str:
    """A path as one line of readable text that maps back to its bytes (see `parse_display`).

    A byte that is not UTF-8 is `\\xNN` (`bad\\xff.md`), a control character `\\x0a`, a C1 control, line
    separator or bidirectional override `\\u202e`, a backslash `\\\\`; every other name is shown unchanged.
    """
    return path if _SHOWN_ESCAPED.search(path) is None else _SHOWN_ESCAPED.sub(_escape, path)


# Lone surrogates of any kind too: a byte that was not UTF-8 (U+DC80-U+DCFF) or one that came from JSON text.
_TEXT_ESCAPED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINES_ESCAPED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def display_text(text: str, lines: bool = False) -> str:
    """Text from another writer (a commit subject, a trailer value, a file's content on a page) safe to
    show: control characters, bidirectional overrides and bytes that are not UTF-8 as `\\xNN`/`\\uNNNN`; a
    backslash stays as it is (an escaped name in a subject is shown once, not twice). Tab and line feed
    are kept, and with `lines` (a file's content) carriage return too."""
    pattern = _LINES_ESCAPED if lines else _TEXT_ESCAPED
    return text if pattern.search(text) is None else pattern.sub(_escape, text)


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == "\\":
        return "\\"
    value = int(code[1:], 16)
    return chr(0xDC00 + value) if code[0] == "x" and value >= 0x80 else chr(value)


def parse_display(text: str) -> str:
    """The path (os.fsdecode form) that `display_path` showed as `text`."""
    return _ESCAPE.sub(_unescape, text) if "\\" in text else text
