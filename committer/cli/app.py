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
from typer import echo as echo

from committer.core import logs
from committer.core.errors import CommitterError, redact
from committer.core.settings import ROWS, Settings, config_path, load_settings, read_config_file
from committer.core.table import EVENTS, PLACE, REMOTE, Row
from committer.git.runner import kill_all

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Keep a versioned, backed-up git history of a directory.",
)


def group(name: str, help: str, parent: typer.Typer | None = None) -> typer.Typer:
    """A group of sub-commands, `committer NAME ...` (or under `parent`), with the app's own manners."""
    sub = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None, help=help)
    (parent or app).add_typer(sub, name=name)
    return sub


# The option every command takes that is not a setting: which file the settings are read from.
CONFIG = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
    str | None, Option("--config", help="TOML config file.", show_default=False, metavar="PATH")])


def flags_of(command: str, groups: tuple[str, ...], table: tuple[Row, ...] = ROWS) -> tuple[Row, ...]:
    """The settings a command takes as flags: its own (rows naming the command), then every command's (PLACE),
    then those of its groups (REMOTE, EVENTS), each in the table's order."""
    return tuple(row for group in (command, PLACE, *groups) for row in table if group in row.flags)


def flag_parameter(row: Row) -> inspect.Parameter:
    """A setting's row as the keyword parameter typer reads an option from: text, parsed by the row later."""
    option = Option(row.flag, help=row.label, show_default=False, metavar=row.metavar)
    return inspect.Parameter(row.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[str | None, option])


@dataclass
class Options:
    """The setting flags one command was given and its --config; `settings()` loads every layer."""

    config: str | None
    flags: dict[str, object] = field(default_factory=dict)

    def settings(self) -> Settings:
        """Defaults < TOML file < COMMITTER_* environment < flags, validated; logging configured."""
        path = config_path(self.config, os.environ)
        file_values = read_config_file(path) if path else {}
        settings = load_settings(file_values, os.environ, self.flags)
        logs.configure(settings.log_format, settings.log_level)
        return settings


# Each command's name -> the groups of setting flags it takes besides PLACE (for the manual's table).
GROUPED: dict[str, tuple[str, ...]] = {}


def command(name: str | None = None, *, remote: bool = False, events: bool = False
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose function takes `opts: Options` and its own options: the settings it takes as
    flags are added from the table here, and whatever it raises becomes one line and an exit code here."""
    groups = (REMOTE,) * remote + (EVENTS,) * events

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        called = name or func.__name__.replace("_", "-")  # the name typer gives it
        GROUPED[called] = groups
        rows = flags_of(called, groups)
        flags = [flag_parameter(row) for row in rows]
        own = sum(1 for row in rows if called in row.flags)  # flags_of lists the command's own first

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> None:
            given = {param.name: kwargs.pop(param.name) for param in flags}
            opts = Options(kwargs.pop("config"), given)
            raise Exit(_exit_code(lambda: func(opts=opts, **kwargs)))

        _declare(wrapper, func, [*flags[:own], CONFIG, *flags[own:]])  # --help: the command's own first
        app.command(name)(wrapper)
        return func

    return register


def _declare(wrapper: Callable[..., Any], func: Callable[..., Any], added: list[inspect.Parameter]) -> None:
    """Show typer the parameters the wrapper takes: the function's own (but `opts`), then the added ones.
    typer reads options from a signature and Python has no typed **kwargs, so the signature is written here,
    the one place that does it."""
    hints = typing.get_type_hints(func, include_extras=True)  # the module uses postponed annotations
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(func).parameters.values() if p.name != "opts"]
    wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *added]}


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
