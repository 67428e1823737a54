"""The `committer` command (typer): parse, load settings, call one service function, map errors to exit codes."""

from committer.cli import agents, backups, commands, fleet, history, holds, looking  # noqa: F401 - the commands register themselves on the app
from committer.cli.app import app, main

__all__ = ["app", "main"]
