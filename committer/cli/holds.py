"""The commands that deal with what the safety rules hold, beside confirm-deletes: put-back (the held
deletions written back from the last commit) and allow-secret (a file held for a secret committed once,
as it is). The history pages' buttons run the same operations (ops/holds.py)."""

from __future__ import annotations

from typing import Annotated, Any

from committer.cli.app import Argument, Option, Options, command, echo
from committer.cli.commands import relative, require_repo
from committer.ops import requests as ops
from committer.ops.kinds import AllowSecret, PutBack


@command("put-back", events=True, commits=True)
def put_back(opts: Options) -> int:
    """Write the held deletions back into the data directory from the last commit (the opposite of
    confirm-deletes); a file that is there again is never overwritten. Exit 1 when some could not be written."""
    settings = opts.settings()
    require_repo(settings)
    answer = ops.run(settings, PutBack())
    echo(f"put back {answer['written']} file(s) from the last commit; nothing was committed")
    for item in answer.get("kept") or []:
        echo(f"kept {item['path']}: {item['why']}")
    for item in answer.get("failed") or []:
        echo(f"could not write {item['path']}: {item['reason']}", err=True)
    held = answer.get("held")
    if held:
        echo(f"{held['count']} deletion(s) are still on hold: see `committer status`")
    return 1 if answer.get("failed") else 0


@command("allow-secret", events=True, commits=True)
def allow_secret(
    opts: Options,
    path: Annotated[str, Argument(help="The held file (relative to the current directory inside the data "
                                       "directory, else to it).", metavar="PATH")],
    dry_run: Annotated[bool, Option("--dry-run", help="Say what was found and where; commit nothing.")] = False,
) -> int:
    """Say a file held for a secret holds none: commit it once as it is now (recorded in the commit's
    BM-Meta trailer as allowed_secret and in the log). Its next change is scanned again."""
    settings = opts.settings()
    require_repo(settings)
    rel = relative(settings, path)
    answer = ops.run(settings, AllowSecret(rel, dry_run=dry_run))
    echo(_found(answer))
    if dry_run:
        if answer.get("kind"):
            echo(f"to commit it as it is: committer allow-secret {answer['path']}")
        return 0
    echo(f"committed {answer['path']} as it is, in {str(answer['sha'])[:12]}; its next change is scanned again")
    return 0


def _found(answer: dict[str, Any]) -> str:
    if not answer.get("kind"):
        return f"{answer['path']}: nothing in it looks like a secret"
    where = f"line {answer['line']}" if answer.get("line") else "the whole file"
    return f"{answer['path']}: {answer['what']} ({answer['kind']}) at {where}"
