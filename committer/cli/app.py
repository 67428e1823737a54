"""The `committer` command's frame: the typer app (the one module that imports typer: the other commands take
Argument, Option, Exit and echo from here), the setting flags made from the settings table, and the one
place that maps errors to exit codes."""

from __future__ import annotations

import functools
import inspect
import os
import signal
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from typer import Argument as Argument  # commands take typer's names from here, its one home
from typer import Exit as Exit
from typer import Option as Option

from committer.core import discover, logs, projects
from committer.core.configfile import read_config_file
from committer.core.errors import CommitterError, ConfigError, redact
from committer.core.paths import display_text
from committer.core.settings import ROWS, Settings, load_settings
from committer.core.table import COMMITS, EVENTS, PLACE, REMOTE, Row
from committer.git.runner import kill_all


def echo(message: object = None, err: bool = False, nl: bool = True) -> None:
    """typer's echo, with nothing in the text that acts on the terminal: what a command says may hold what a
    user or a remote typed (`--to 'main@{today\\x1b[2J}'`, a git message naming a file), so control
    characters and bidirectional overrides are shown as `\\xNN` (line breaks and tabs are kept). A file's
    content is written by `show`/`diff` themselves, byte for byte."""
    typer.echo(display_text(message) if isinstance(message, str) else message, err=err, nl=nl)


# typer shows an argument as `PATH <str>` in --help: its metavar (PATH, OWNER/REPO) names the value already.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]


def _plain_text_values() -> None:
    """A text option's value is taken as given (the settings table parses it), and a flag's is a bool already:
    typer (0.2x) would build a pydantic validator for each of a command's options, importing pydantic
    first, about a tenth of a second of every start of `committer run` (whose options are all text and
    flags) for a check that passes the value through. Other kinds of values keep typer's own way; a typer
    without this seam is left as it is."""
    try:
        from typer._coercion import PassThroughRuntimeParam
        from typer.core import _TyperParameter
    except ImportError:
        return
    typers_own = getattr(_TyperParameter, "get_runtime_param", None)
    if typers_own is None:
        return

    def runtime_param(self: Any) -> Any:
        described = self.type_descriptor
        kind = described.annotation
        plain = kind is str or (kind is bool and getattr(self, "is_flag", False))  # a flag's value is a bool
        if (self._runtime_param is None and plain and described.file_annotation is None
                and described.parameter_info.parser is None):
            self._runtime_param = PassThroughRuntimeParam(parameter_info=described.parameter_info, annotation=kind)
        return typers_own(self)

    setattr(_TyperParameter, "get_runtime_param", runtime_param)  # noqa: B010 - typer's method, replaced


_plain_text_values()
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}  # every command's contexts inherit it from the app's
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=HELP_OPTIONS,
    help="Keep a versioned, backed-up git history of a directory. Run inside the data directory (or below a "
         "committer.toml) and no --data-dir is needed: see docs/running.md.",
)


def _version(given: bool) -> None:
    if given:
        from committer import __version__

        echo(f"committer {__version__}")
        raise Exit(0)


@app.callback()
def _app(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version, help="Print the version and exit.")] = False) -> None:
    """The options of `committer` itself."""


def summary(text: str) -> str:
    """A command's line in the list of commands: its help's first sentence, whole (click would cut it)."""
    first = " ".join(inspect.cleandoc(text).split("\n\n", 1)[0].split())
    for stop in ("; ", ". "):
        first = first.split(stop, 1)[0]
    return first.rstrip(".:;") + "."


class _Group(typer.Typer):
    """A group's commands get the app's manners: whole summaries, every value named in --help."""

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[Any], Any]:
        register = super().command

        def decorate(func: Callable[..., Any]) -> Any:
            hints = typing.get_type_hints(func, include_extras=True)
            own = [p.replace(annotation=hints.get(p.name, p.annotation))
                   for p in inspect.signature(func).parameters.values()]
            for param in own:
                _name_the_value(param)
            func.__signature__ = inspect.Signature(own)  # type: ignore[attr-defined]  # typer reads these infos
            kwargs.setdefault("short_help", summary(func.__doc__ or ""))
            return register(name, **kwargs)(func)

        return decorate


def group(name: str, help: str, parent: typer.Typer | None = None) -> typer.Typer:
    """A group of sub-commands, `committer NAME ...` (or under `parent`), with the app's own manners."""
    sub = _Group(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None, help=help,
                 context_settings=HELP_OPTIONS)
    (parent or app).add_typer(sub, name=name, short_help=summary(help))
    return sub


# The option every command takes that is not a setting: which file the settings are read from.
CONFIG = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
    str | None, Option("--config", help="TOML config file.", show_default=False, metavar="PATH")])


def flags_of(command: str, groups: tuple[str, ...], table: tuple[Row, ...] = ROWS) -> tuple[Row, ...]:
    """The settings a command takes as flags: its own (rows naming the command), then every command's (PLACE),
    then those of its groups (REMOTE, EVENTS, COMMITS), each in the table's order."""
    return tuple(row for group in (command, PLACE, *groups) for row in table if group in row.flags)


def flag_parameter(row: Row) -> inspect.Parameter:
    """A setting's row as the keyword parameter typer reads an option from: text, parsed by the row later."""
    option = Option(row.flag, help=row.label, show_default=False, metavar=row.metavar)
    return inspect.Parameter(row.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[str | None, option])


@dataclass
class Options:
    """The setting flags one command was given and its --config; `settings()` finds the repository and loads
    every layer; `found` says how it was found."""

    config: str | None
    flags: dict[str, object] = field(default_factory=dict)
    found: discover.Found | None = None
    command: str = ""  # the command's name: `run` never takes its project from the current directory

    def find(self) -> discover.Found:
        """How this command finds its repository (core/discover.py)."""
        if self.found is None:
            self.found = discover.find(self.config, os.environ, self.flags, discover.current_directory())
        return self.found

    def settings(self) -> Settings:
        """Defaults < TOML file < COMMITTER_* environment < flags, validated; logging configured. Found by
        the defaults alone, a data directory that does not exist is an error."""
        found = self.find()
        file_values = read_config_file(found.config) if found.config else {}
        settings = projects.narrowed(load_settings(file_values, os.environ, self.flags, found.values, found.config),
                                     discover.current_directory() if self.command != "run" else None)
        logs.configure(settings.log_format, settings.log_level)
        if self.command not in ("run", "status", ""):  # they show or run every project of the layout
            projects.require_project(settings)
        if found.how == discover.DEFAULTS and not settings.data_dir.exists():
            if discover.current_directory() is None:
                raise ConfigError("data-dir", (
                    f"{settings.data_dir} does not exist, and the current directory was removed, so nothing "
                    "near it says where the data is: cd into the data directory again, or give --data-dir PATH "
                    "and --git-dir PATH"))
            raise ConfigError("data-dir", (
                f"{settings.data_dir} does not exist, and nothing says where the data is (no daemon runs here, "
                "no committer.toml in this folder or a parent, no user config); give --data-dir PATH and "
                "--git-dir PATH (or write them into a committer.toml), or run the command inside the data "
                "directory of a running daemon"))
        return settings


# Each command's name -> the groups of setting flags it takes besides PLACE (for the manual's table).
GROUPED: dict[str, tuple[str, ...]] = {}


def command(name: str | None = None, *, remote: bool = False, events: bool = False, commits: bool = False
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose function takes `opts: Options` and its own options: the settings it takes as
    flags are added from the table here, and whatever it raises becomes one line and an exit code here."""
    groups = (REMOTE,) * remote + (EVENTS,) * events + (COMMITS,) * commits

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        called = name or func.__name__.replace("_", "-")  # the name typer gives it
        GROUPED[called] = groups
        rows = flags_of(called, groups)
        flags = [flag_parameter(row) for row in rows]
        own = sum(1 for row in rows if called in row.flags)  # flags_of lists the command's own first

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> None:
            given = {param.name: kwargs.pop(param.name) for param in flags}
            opts = Options(kwargs.pop("config"), given, command=called)
            raise Exit(_exit_code(lambda: func(opts=opts, **kwargs)))

        _declare(wrapper, func, [*flags[:own], CONFIG, *flags[own:]])  # --help: the command's own first
        app.command(name, short_help=summary(func.__doc__ or ""))(wrapper)
        return func

    return register


def _declare(wrapper: Callable[..., Any], func: Callable[..., Any], added: list[inspect.Parameter]) -> None:
    """Show typer the parameters the wrapper takes: the function's own (but `opts`), then the added ones.
    typer reads options from a signature and Python has no typed **kwargs, so the signature is written here,
    the one place that does it."""
    hints = typing.get_type_hints(func, include_extras=True)  # the module uses postponed annotations
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(func).parameters.values() if p.name != "opts"]
    for param in own:
        _name_the_value(param)
    wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *added]}


# What --help shows for a value when its option does not say: by its parameter's name, else by its type.
_BY_NAME = {"path": "PATH", "to": "WHEN", "at": "WHEN", "since": "WHEN", "until": "WHEN", "tag": "NAME",
            "target": "OWNER/REPO", "message_text": "TEXT", "webhook_url": "URL", "output": "FILE"}
_BY_TYPE = {int: "N", float: "NUMBER", str: "TEXT"}


def _name_the_value(param: inspect.Parameter) -> None:
    """Give an option or argument of a command's own a metavar (DURATION, PATH, N, ...) unless it has one:
    typer would show `<str>`."""
    kind, *extras = typing.get_args(param.annotation) or (param.annotation,)
    if typing.get_origin(param.annotation) is not Annotated:
        extras = [param.default]
    for info in extras:
        if not isinstance(info, typer.models.ParameterInfo) or info.metavar is not None or kind is bool:
            continue
        plain = next((arg for arg in typing.get_args(kind) if arg is not type(None)), kind)
        info.metavar = _BY_NAME.get(param.name) or _BY_TYPE.get(plain, "VALUE")


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT stopped a command (a KeyboardInterrupt, so no `except Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    """A command told to stop ends the git processes it started first: they run in sessions of their own,
    so the signal never reaches them, and a hung `git ls-remote` would otherwise outlive the command."""
    kill_all()
    raise Stopped(signum)


def _exit_code(body: Callable[[], int | None]) -> int:
    """Run a command body: expected failures become one line on stderr and their exit code; SIGTERM and
    SIGINT end its git processes and exit with 128 + the signal's number (`run` handles them itself)."""
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return body() or 0
    except CommitterError as exc:
        echo(f"committer: error: {redact(exc.message)}", err=True)
        return exc.exit_code
    except Stopped as exc:
        kill_all()
        name = signal.Signals(exc.signum).name
        echo(f"committer: stopped by {name}; the git processes it started were ended", err=True)
        return 128 + exc.signum
    except KeyboardInterrupt:
        kill_all()
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> None:
    """Entry point of the `committer` executable."""
    # Only a daemon answers SIGUSR1 (it installs its own handler); a stray one must not kill a command.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    app()
