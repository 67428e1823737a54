"""The commands that only look: status, log, doctor."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Annotated, Any

from committer.cli.app import Argument, Option, Options, command, echo
from committer.cli.commands import relative
from committer.cli.looking import suggest
from committer.commit import trailer
from committer.core import clock
from committer.core.errors import CommitterError, ConfigError
from committer.core.paths import display_path, display_text
from committer.git import revs
from committer.git.repo import GitRepo, history

RENAMES_SHOWN = 5  # moved files listed under a commit by `log` (all of them up to RENAMES_LISTED with --json)
RENAMES_LISTED = 1000


@command(remote=True)
def status(
    opts: Options, as_json: Annotated[bool, Option("--json", help="One JSON object with every key.")] = False
) -> int:
    """Show the repository, the last commit and push, holds and errors, and whether a daemon runs; exit 1
    when there is no repository there."""
    from committer.core.projects import per_project
    from committer.ops.status import collect_projects, collect_status, render_projects, render_status

    settings = opts.settings()
    if per_project(settings):  # no --project: every project, one row each
        overview = collect_projects(settings, opts.find().shown())
        echo(json.dumps(overview, indent=None if not sys.stdout.isatty() else 2) if as_json
             else render_projects(overview))
        return 0
    result = collect_status(settings, opts.find().shown())
    echo(json.dumps(result, indent=None if not sys.stdout.isatty() else 2) if as_json else render_status(result))
    if not result["repository"]:
        echo(f"committer: error: no repository at {settings.git_dir}; run `committer init` there, or give "
             "--git-dir PATH (and --data-dir PATH)", err=True)
        return 1
    return 0


@command(remote=True)
def doctor(opts: Options, as_json: Annotated[bool, Option("--json", help="One JSON object.")] = False) -> int:
    """Check the set-up (git, git-lfs, directories, inotify, remote and token) and say how to fix it."""
    from committer.ops import doctor as checks

    report = checks.diagnose(opts.settings())
    echo(json.dumps(report) if as_json else checks.render(report))
    return 0 if report["ok"] else 1


@command("log")
def log_command(
    opts: Options,
    path: Annotated[str | None, Argument(help="A file or folder in the data directory.")] = None,
    max_count: Annotated[int, Option("-n", "--max-count", help="How many commits.")] = 20,
    as_json: Annotated[bool, Option("--json", help="One JSON object per line.")] = False,
    patch: Annotated[bool, Option("-p", "--patch", help="The changes (a unified diff) under each commit.")] = False,
) -> None:
    """History of the directory or of one path (a file across its moves), with the BM-Meta trailer decoded
    and moves as old → new; with -p the changes too. Names that are not UTF-8 are shown escaped (`bad\\xff.md`)
    and can be given so."""
    settings = opts.settings()
    repo = GitRepo.of(settings)
    if not repo.exists():
        raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
    rel = repo.named(relative(settings, path)) if path else None
    folder = not rel or is_folder(repo, rel)
    if rel and not folder:
        entries = [(e.sha, e.epoch, e.message, [e.moved] if e.moved else []) for e in revs.follow(repo, rel, max_count)]
    else:
        commits = list(history(repo, rel, max_count))
        moves = repo.renames([sha for sha, _epoch, _text in commits])
        entries = [(sha, epoch, text, moves.get(sha, [])) for sha, epoch, text in commits]
    if not entries:
        _nothing_logged(repo, path, rel)
    current = rel
    for sha, epoch, text, renamed in entries:
        meta = trailer.read(text) or {}
        subject = text.splitlines()[0] if text else ""
        if as_json:
            item: dict[str, Any] = {
                "sha": sha, "date": clock.iso(epoch), "subject": subject, "meta": meta,
                "renamed": [[display_path(old), display_path(new)] for old, new in renamed[:RENAMES_LISTED]],
            }
            if len(renamed) > RENAMES_LISTED:
                item["renamed_truncated"] = True
            echo(json.dumps(item))
            continue
        echo(f"{sha[:12]}  {clock.iso(epoch)}  {display_text(subject)}")
        if meta:
            counts = " ".join(f"{k}={meta[k]}" for k in ("added", "modified", "deleted", "renamed") if meta.get(k))
            extra = " ".join(f"{k}={display_text(str(meta[k]))}" for k in ("op", "host", "batch") if meta.get(k))
            echo(f"{'':14}{counts}  {extra}".rstrip())
        for old, new in renamed[:RENAMES_SHOWN]:
            echo(f"{'':14}{display_path(old)} → {display_path(new)}")
        if len(renamed) > RENAMES_SHOWN:
            echo(f"{'':14}+{len(renamed) - RENAMES_SHOWN} more moved")
        if patch:
            names = [current] if current else []
            if rel and not folder and renamed:
                names, current = list(renamed[0]), renamed[0][0]  # older commits have the old name
            shown_patch(repo, sha, names)


def shown_patch(repo: GitRepo, sha: str, names: list[str]) -> None:
    """One commit's changes (to `names`, or all of them) as a unified diff, indented under its entry."""
    out = repo.git("show", "--format=", "--no-color", "--no-ext-diff", "-M", sha, "--", *names).stdout
    sys.stdout.flush()
    sys.stdout.buffer.write(out.rstrip(b"\n") + b"\n\n" if out.strip() else b"")
    sys.stdout.flush()


def _nothing_logged(repo: GitRepo, path: str | None, rel: str | None) -> None:
    """An empty log says so: no commit yet, or a path that was never saved (an error naming it)."""
    if not rel:
        echo("no commits yet")
        return
    name = display_path(rel).rstrip("/").rsplit("/", 1)[-1]
    raise CommitterError(f"{display_path(str(path))}: nothing was ever saved at this path{suggest(repo, rel)}; "
                         f"`committer search "
                         f"{shlex.quote(name)}` finds files by name, `committer log` lists every commit")


def is_folder(repo: GitRepo, rel: str) -> bool:
    """Whether HEAD holds `rel` as a folder (its log is every file under it, without following moves)."""
    head = repo.head()
    if head is None:
        return False
    proc = repo.git("ls-tree", "-z", head, "--", rel, check=False)
    return proc.returncode == 0 and b" tree " in proc.stdout.split(b"\t", 1)[0]
