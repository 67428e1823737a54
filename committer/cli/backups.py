"""The commands that prove the backup: sync (commit what is pending now and push it, waiting for the remote
if asked) and verify (fetch the remote into a temporary repository and check it can be restored)."""

from __future__ import annotations

import json
from typing import Annotated

from committer.cli.app import Option, Options, command, echo
from committer.cli.commands import require_repo
from committer.core import values
from committer.core.errors import ConfigError

DEFAULT_TIMEOUT = "2m"


@command("sync", remote=True, commits=True)
def sync_command(
    opts: Options,
    wait: Annotated[bool, Option("--wait", help="Return only once the remote has the commit (exit 0), or say "
                                                "what is in the way at the timeout (exit 1).")] = False,
    timeout: Annotated[str, Option("--timeout", metavar="DURATION",
                                   help="How long --wait waits for the remote [2m].")] = DEFAULT_TIMEOUT,
    as_json: Annotated[bool, Option("--json", help="Print the answer as one JSON object.")] = False,
) -> int:
    """Commit what is pending now (no debounce) and push it; with --wait, return once the remote has it.
    A running daemon does the work (callers that ask together share one commit); without one, this command
    commits and pushes itself."""
    from committer.ops.syncnow import sync_now

    settings = opts.settings()
    require_repo(settings)
    seconds = values.parse_duration("--timeout", timeout)
    if seconds <= 0:
        raise ConfigError("--timeout", f"expected a duration above zero such as 30s or 2m, got {timeout!r}")
    answer = sync_now(settings, wait=wait, timeout=seconds)
    if as_json:
        echo(json.dumps(answer.as_dict()))
    else:
        commit = (answer.commit or "")[:12]
        if answer.commit is None:
            echo("nothing committed yet: the data directory holds nothing to commit")
        elif answer.remote is None:
            echo(f"committed: {commit} (no remote: local history only)")
        elif answer.pushed:
            echo(f"committed and pushed: {commit} is on {answer.remote}")
        else:
            echo(f"committed: {commit}; the push to {answer.remote} was asked for")
        if answer.reason is not None:
            echo(f"committer: {'error: ' if wait else ''}{answer.reason}", err=True)
    return 1 if wait and not answer.ok else 0


@command("verify", remote=True, events=True)
def verify_command(
    opts: Options,
    as_json: Annotated[bool, Option("--json", help="Print the result as one JSON object.")] = False,
) -> int:
    """Prove the remote copy can be restored: fetch it into a temporary repository, git fsck it, compare the
    tree last pushed, download and check every LFS object. Exit 1 when it cannot be."""
    from committer.git.repo import GitRepo
    from committer.ops.notify import Notify
    from committer.sync import backupcheck

    settings = opts.settings()
    require_repo(settings)
    if not settings.remote:
        raise ConfigError("remote", "no remote is configured: nothing to verify; set --remote or COMMITTER_REMOTE")
    notify = Notify.for_command(settings)  # the verify event waits in the outbox for the daemon
    try:
        result = backupcheck.verify(settings, GitRepo.of(settings))
        backupcheck.told(result, settings.git_dir, notify.emit)
    finally:
        notify.stop(0.0)
    if as_json:
        echo(json.dumps(result.as_dict()))
    elif result.ok:
        echo(f"verified in {result.seconds:.1f}s: {result.message}")
    else:
        echo(f"committer: error: verify failed ({result.reason}): {result.message}", err=True)
    return 0 if result.ok else 1
