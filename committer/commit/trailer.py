"""The BM-Meta trailer read from any commit, including commits other writers made: data, never trusted.

One parser for every reader (the pages, `committer log`, the pending-push summary): a trailer that is not
JSON, is not an object, is nested too deep, holds a number too large to convert, or is very long is no
trailer at all (None); `clean` turns an object into the few types the readers expect, so a list where a
string belongs or text where a count belongs never reaches code that would fail on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

KEY = "BM-Meta"
LINE_MAX = 64 * 1024  # characters of one trailer line; committer's own are a few hundred
DEPTH_MAX = 20  # nesting of arrays and objects; committer's own trailers nest two deep
KEYS_MAX = 64  # keys of the object that are kept
TEXT_MAX = 500  # characters of one value as it is shown
COUNT_MAX = 10**12  # a count beyond this is not a count
COUNTS = ("added", "modified", "deleted", "renamed")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A JSON string (escapes included), or a run of anything that is neither a bracket nor a quote.
_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+', re.DOTALL)
_BRACKETS_BYTES = re.compile(_BRACKETS.pattern.encode(), re.DOTALL)


def parse(message: str) -> dict[str, Any] | None:
    """The decoded BM-Meta object of a message (the last such line), or None when it has none or the
    line is not a bounded JSON object; never raises."""
    found = None
    for line in message.splitlines():
        if line.startswith(f"{KEY}:"):
            found = line[len(KEY) + 1 :].strip()
    if found is None or len(found) > LINE_MAX or too_deep(found, DEPTH_MAX):
        return None
    try:
        value = json.loads(found)
    except (ValueError, RecursionError):  # not JSON, or a number too long to convert
        return None
    return value if isinstance(value, dict) else None


def too_deep(text: str | bytes, most: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than `most` (strings are skipped), in linear time."""
    if isinstance(text, bytes):
        brackets = _BRACKETS_BYTES.sub(b"", text).decode("ascii", "replace")
    else:
        brackets = _BRACKETS.sub("", text)  # only the brackets outside strings are left
    for _ in range(most):
        if not brackets:
            return False
        shorter = brackets.replace("[]", "").replace("{}", "")
        if shorter == brackets:
            return False  # unbalanced: the JSON parser says what is wrong with it
        brackets = shorter
    return bool(brackets)


def text(value: object, most: int = TEXT_MAX) -> str:
    """Any value as one line of plain text: control characters shown escaped, at most `most` characters."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        except (ValueError, TypeError, RecursionError):
            value = repr(value)
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value.replace("\n", " "))
    return shown if len(shown) <= most else shown[: most - 1] + "…"


def clean(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A trailer with the types its readers rely on: counts are ints, `bmmeta` a dict of text, every other
    value text; values of the wrong type are dropped, long ones cut."""
    if meta is None:
        return None
    kept: dict[str, Any] = {}
    for key, value in list(meta.items())[:KEYS_MAX]:
        name = text(key, 60)
        if name in COUNTS:
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= COUNT_MAX:
                kept[name] = value
        elif name == "bmmeta":
            if isinstance(value, dict):
                kept[name] = {text(k, 60): text(v) for k, v in list(value.items())[:KEYS_MAX]}
            else:
                kept[name] = text(value)
        elif name in ("op", "host", "batch"):  # read as names: only a scalar is one
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                kept[name] = text(value)
        else:
            kept[name] = text(value)
    return kept


def read(message: str) -> dict[str, Any] | None:
    """`clean(parse(message))`: the trailer as the pages and the log show it."""
    return clean(parse(message))
