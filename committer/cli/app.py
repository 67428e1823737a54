"""The `committer` command's frame: the typer app, the options every command shares (declared once, here),
and the one place that maps errors to exit codes."""

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

from committer.core import logs
from committer.core.errors import CommitterError, redact
from committer.core.settings import Settings, config_path, load_settings, read_config_file
from committer.git.runner import kill_all

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Keep a versioned, backed-up git history of a directory.",
)


def _option(*names: str, help: str) -> Any:
    return typer.Option(*names, help=help, show_default=False)


# (name, annotation) of the options of every command, and of those that talk to the remote.
PLACE: tuple[tuple[str, Any], ...] = (
    ("config", Annotated[str | None, _option("--config", help="TOML config file.")]),
    ("data_dir", Annotated[str | None, _option("--data-dir", help="Directory to version [/app/data].")]),
    ("git_dir", Annotated[str | None, _option(
        "--git-dir", help="Bare repository, outside the data dir [/app/git/knowledge.git].")]),
    ("branch", Annotated[str | None, _option("--branch", help="Branch to commit to [main].")]),
    ("log_format", Annotated[str | None, _option("--log-format", help="auto, console or json [auto].")]),
    ("log_level", Annotated[str | None, _option("--log-level", help="debug, info, warning, error [info].")]),
)
REMOTE: tuple[tuple[str, Any], ...] = (
    ("remote", Annotated[str | None, _option("--remote", help="URL to push to; empty for local history.")]),
    ("github_app_id", Annotated[str | None, _option(
        "--github-app-id", help="GitHub App id (or client id) to push as.")]),
    ("github_app_installation_id", Annotated[str | None, _option(
        "--github-app-installation-id", help="The App's installation id.")]),
    ("github_app_private_key_file", Annotated[str | None, _option(
        "--github-app-private-key-file", help="The App's private key (PEM).")]),
    ("github_api_url", Annotated[str | None, _option(
        "--github-api-url", help="GitHub's REST API [https://api.github.com].")]),
)


def _text_flag(name: str, help: str) -> tuple[str, Any]:
    """(name, annotation) of an optional text option spelled --name-with-dashes."""
    return name, Annotated[str | None, _option("--" + name.replace("_", "-"), help=help)]


# The commands that may make events: where they are delivered (the daemon delivers; a command leaves them
# in the outbox for it).
EVENTS: tuple[tuple[str, Any], ...] = tuple(_text_flag(name, help) for name, help in (
    ("notify_url", "POST every event, signed, to this http(s) URL [off]."),
    ("notify_secret_file", "File holding the secret that signs the events."),
    ("notify_timeout", "Longest one delivery may take [10s]."),
    ("notify_outbox_max", "Events kept for a receiver; past it the oldest are dropped [10000]."),
    ("exec_hook", "Command line run once per event, the JSON on its stdin [off]."),
    ("exec_hook_timeout", "Longest one run of the hook may take [30s]."),
))


@dataclass
class Options:
    """The shared options one command was given; `settings()` adds its own flags and loads every layer."""

    config: str | None
    flags: dict[str, object] = field(default_factory=dict)

    def settings(self, **more: object) -> Settings:
        """Defaults < TOML file < COMMITTER_* environment < flags, validated; logging configured."""
        path = config_path(self.config, os.environ)
        file_values = read_config_file(path) if path else {}
        settings = load_settings(file_values, os.environ, {**self.flags, **more})
        logs.configure(settings.log_format, settings.log_level)
        return settings


def command(name: str | None = None, *, remote: bool = False, events: bool = False
            ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose function takes `opts: Options` and its own options: the shared ones are
    added to its signature here, and whatever it raises becomes one line and an exit code here."""
    shared = PLACE + (REMOTE if remote else ()) + (EVENTS if events else ())

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(func, include_extras=True)  # the module uses postponed annotations
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(func).parameters.values() if p.name != "opts"]
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a) for n, a in shared]

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> None:
            given = {n: kwargs.pop(n) for n, _ in shared}
            opts = Options(given.pop("config"), given)
            raise typer.Exit(_exit_code(lambda: func(opts=opts, **kwargs)))

        wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**{p.name: p.annotation for p in own}, **dict(shared)}
        app.command(name)(wrapper)
        return func

    return register


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
        typer.echo(f"committer: error: {redact(exc.message)}", err=True)
        return exc.exit_code
    except Stopped as exc:
        kill_all()
        name = signal.Signals(exc.signum).name
        typer.echo(f"committer: stopped by {name}; the git processes it started were ended", err=True)
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
