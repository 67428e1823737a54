"""The command an agent host starts: the history served over MCP on stdin and stdout (docs/agents.md)."""

from __future__ import annotations

from committer.cli.app import Options, command
from committer.cli.commands import require_repo


@command("mcp")
def mcp_command(opts: Options) -> None:
    """Serve the history to an AI agent over MCP on stdin and stdout, for an agent host that starts it (see
    docs/agents.md): history, show, diff, search and status read; restore (a dry run unless dry_run=false) and
    snapshot write, through the running daemon when there is one."""
    settings = opts.settings()
    require_repo(settings)
    from committer.serve.agents import for_command
    from committer.serve.mcp import serve_stdio  # the SDK, once there is something to serve

    serve_stdio(for_command(settings))
