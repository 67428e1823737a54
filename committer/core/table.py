"""The one row of each setting: `setting()` puts its parser, help, CLI groups and shown default into the
dataclass field's metadata, so the `Settings` dataclass is the table the parser, the CLI options and
docs/configuration.md are all made from."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from committer.core import values

T = TypeVar("T")
Parse = Callable[[str, object], Any]

# Where a setting is a flag: every command (PLACE), the commands that talk to the remote (REMOTE), those
# that may make events (EVENTS), those that commit (COMMITS), or one command by its name ("run", "pull").
PLACE, REMOTE, EVENTS, COMMITS = "place", "remote", "events", "commits"
GROUPS = (PLACE, REMOTE, EVENTS, COMMITS)
_KEY = "committer.setting"


@dataclass(frozen=True)
class Row:
    """One setting as the parser, the CLI and the manual see it."""

    name: str
    default: object
    parse: Parse
    help: str  # one line for --help, without the default (added from `shown`)
    doc: str  # the manual's column; the help when not given
    flags: tuple[str, ...]  # groups and command names that take it as --flag
    shown: str  # the default as people write it: 2s, 50GB, none
    show: Callable[[object], object] | None  # how a value may be shown (credentials out); None: as it is

    @property
    def env(self) -> str:
        """Its environment twin: COMMITTER_<NAME>."""
        return env_name(self.name)

    @property
    def toml(self) -> str:
        """Its key in the TOML file (dashes are accepted too)."""
        return self.name

    @property
    def flag(self) -> str:
        """Its command-line flag, whether or not any command takes it."""
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str:
        """What its flag takes, in --help: the kind of value its parser reads."""
        return _KINDS.get(getattr(self.parse, "__name__", ""), "TEXT")

    @property
    def label(self) -> str:
        """The help line of its flag, default included (--help shows no Markdown)."""
        return f"{self.help} [{self.shown}].".replace("`", "")


# A parser's name -> the word --help shows for the value (a choice's help lists its words).
_KINDS = {
    "parse_duration": "DURATION", "positive_duration": "DURATION", "parse_size": "SIZE", "positive_size": "SIZE",
    "count": "N", "positive_count": "N", "path": "PATH", "optional_path": "PATH", "boolean": "BOOL",
    "address": "[HOST:]PORT", "remote_url": "URL", "http_url": "URL", "api_url": "URL", "branch": "BRANCH",
    "parse": "WORD", "patterns": "PATTERNS", "command_line": "COMMAND", "app_id": "ID",
}


def env_name(name: str) -> str:
    """The environment twin of a setting: COMMITTER_<NAME>."""
    return f"COMMITTER_{name.upper()}"


def setting(
    default: T, parse: Callable[[str, object], T], *, help: str, doc: str = "", flags: tuple[str, ...] = (),
    shown: str = "", show: Callable[[object], object] | None = None,
) -> T:
    """A dataclass field that is also the setting's row (typed as its value, so mypy sees the field's type)."""
    info = {"parse": parse, "help": help, "doc": doc, "flags": flags, "shown": shown, "show": show}
    made: T = dataclasses.field(default=default, metadata={_KEY: info})
    return made


def rows(cls: type) -> tuple[Row, ...]:
    """The rows of a dataclass whose fields were made by `setting()`, in declaration order."""
    out = []
    for item in dataclasses.fields(cls):
        if _KEY not in item.metadata:
            continue
        info = item.metadata[_KEY]
        out.append(Row(
            name=item.name, default=item.default, parse=info["parse"], help=info["help"],
            doc=info["doc"] or info["help"], flags=info["flags"],
            shown=info["shown"] or _text(item.default, info["parse"]), show=info["show"],
        ))
    return tuple(out)


def _text(default: object, parse: Parse) -> str:
    """A default as a person would type it back: 2s, 10m, 50GB, true; none for nothing."""
    if default is None or default in ("", ()):
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return values.duration_text(default)
    if isinstance(default, int) and parse in (values.parse_size, values.positive_size):
        return values.size_text(default)
    return str(default)
