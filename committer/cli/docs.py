"""The table of settings in docs/configuration.md, made from the settings table: `python -m committer.cli.docs`
rewrites the block between the markers (the prose around it is the page's own); `--check` only compares."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from committer.cli import commands, history, holds, looking  # noqa: F401 - the commands register themselves, with their groups
from committer.cli.app import GROUPED
from committer.core.settings import ROWS
from committer.core.table import COMMITS, EVENTS, GROUPS, PLACE, REMOTE, Row

PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BEGIN = "<!-- settings: made by `python -m committer.cli.docs` from committer/core/settings.py; edit them there -->"
END = "<!-- end of settings -->"


def table(rows: Iterable[Row] = ROWS) -> str:
    """The Markdown table of the settings: name (the TOML key), flag, environment, default, meaning."""
    lines = ["| setting (TOML key) | flag | environment | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = (f"`{row.toml}`", _flag(row), f"`{row.env}`", _default(row.shown), _sentence(row.doc))
        lines.append(("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |").replace("|  |", "| |"))
    return "\n".join(lines) + "\n"


def groups(rows: Iterable[Row] = ROWS, grouped: dict[str, tuple[str, ...]] | None = None) -> str:
    """Which commands take the flags of which group, as one paragraph."""
    grouped = GROUPED if grouped is None else grouped
    rows = tuple(rows)
    said = {PLACE: "every command takes", REMOTE: "those that reach the remote", EVENTS: "those that may make events",
            COMMITS: "those that commit"}
    parts = []
    for group, words in said.items():
        flags = ", ".join(["`--config`"] * (group == PLACE) + [f"`{row.flag}`" for row in rows if group in row.flags])
        named = sorted(name for name, taken in grouped.items() if group in taken)
        who = words if group == PLACE else f"{words} ({', '.join(f'`{name}`' for name in named)}) take"
        parts.append(f"{who} {flags}")
    return ("Flags: " + "; ".join(parts) + "; a flag followed by a command's name is that command's own. "
            "`committer COMMAND --help` lists a command's flags with their defaults.\n")


def _flag(row: Row) -> str:
    """Its flag, and the commands that take it when it is not a group's (every command's, the remote's...)."""
    if not row.flags:
        return ""
    only = [name for name in row.flags if name not in GROUPS]
    return f"`{row.flag}`" + (f" ({', '.join(only)})" if only and len(only) == len(row.flags) else "")


def _default(shown: str) -> str:
    """A value as code; a word (none, off) or a value already marked up as it is."""
    return shown if shown in ("none", "off") or "`" in shown or " " in shown else f"`{shown}`"


def _sentence(text: str) -> str:
    """The table's meanings start in lower case, as a clause does (`--help` lines start with a capital)."""
    word = text.split(" ", 1)[0]
    plain = word[:1].isupper() and (len(word) == 1 or word[1:].islower())  # not GitHub, URL, POST
    return text[0].lower() + text[1:] if plain else text


def rewritten(page: str, rows: Iterable[Row] = ROWS) -> str:
    """The page with the block between the markers made anew."""
    head, begin, rest = page.partition(BEGIN)
    _old, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{PAGE.name} lacks the markers {BEGIN!r} and {END!r}")
    rows = tuple(rows)
    return f"{head}{BEGIN}\n{groups(rows)}\n{table(rows)}{END}{tail}"


def main(argv: list[str]) -> int:
    """Write the table into the page, or with --check say whether it is out of date (exit 1)."""
    page = PAGE.read_text(encoding="utf-8")
    fresh = rewritten(page)
    if "--check" in argv:
        if fresh != page:
            print(f"{PAGE} is out of date: run python -m committer.cli.docs", file=sys.stderr)
            return 1
        return 0
    if fresh != page:
        PAGE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
