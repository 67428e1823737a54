"""The commands that show old versions without restoring anything: show, diff, search."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

from committer.cli.app import Argument, Option, Options, command, echo
from committer.cli.commands import as_typed, relative, typed_in
from committer.core import clock
from committer.core.errors import ConfigError
from committer.core.paths import display_path, display_text
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.ops import looking as seen
from committer.ops import search as finder

SNIFF = 8000  # bytes looked at to tell text from binary, as git does
WHEN = "A commit, a tag or a date: 2026-12-01 (its end), 2026-12-01 18:00, yesterday, last tuesday, 2 hours ago."


def open_repo(settings: Settings) -> GitRepo:
    """The repository, or the one line saying there is none."""
    repo = GitRepo.of(settings)
    if not repo.exists():
        raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
    if repo.head() is None:
        raise ConfigError("git-dir", f"nothing has been saved yet in {settings.git_dir}")
    return repo


def suggest(repo: GitRepo, rel: str) -> str:
    """`; did you mean a/b.md or c/b.md?`, the names as they are typed where the command was typed."""
    return seen.suggest(repo, rel, typed_in(repo.data_dir))


@command()
def show(
    opts: Options,
    path: Annotated[str, Argument(help="A file in the data directory (as it is named in that version).")],
    at: Annotated[str | None, Option("--at", help=f"Which version. {WHEN} Default: the newest saved.",
                                     metavar="WHEN")] = None,
    output: Annotated[str | None, Option("-o", "--output", metavar="FILE",
                                         help="Write the content to this file (- for the standard output).")] = None,
    force: Annotated[bool, Option("--force", help="Replace the file -o names when it exists.")] = False,
) -> None:
    """Print a file as it was (text to the terminal; a binary file only with -o FILE or into a pipe)."""
    settings = opts.settings()
    repo = open_repo(settings)
    rel = repo.named(relative(settings, path), at)
    sha = seen.version(repo, at, "--at", rel)
    data = seen.content(repo, sha, rel, typed_in(repo.data_dir))
    if output and output != "-":  # `-o -`: the standard output, as for git and most tools
        target = Path(output)
        if target.is_dir():
            raise ConfigError("-o", f"{display_path(output)} is a folder; name a file")
        if _inside(target, settings.git_dir):
            raise ConfigError("-o", f"{display_path(output)} is inside the repository {settings.git_dir}: "
                                    "writing there would damage it; name a file elsewhere")
        if target.is_symlink() and not force:
            raise ConfigError("-o", f"{display_path(output)} is a symbolic link; add --force to write to the file "
                                    "it names")
        if target.exists() and not force:
            raise ConfigError("-o", f"{display_path(output)} exists; add --force to replace it")
        try:
            with target.open("wb" if force else "xb") as out:
                out.write(data)
        except OSError as exc:
            raise ConfigError("-o", f"cannot write {display_path(output)}: {exc.strerror or exc}") from None
        echo(f"wrote {display_path(rel)} of {sha[:12]} to {display_path(output)} ({len(data)} bytes)", err=True)
        if _inside(target, settings.data_dir):
            echo(f"{display_path(output)} is in the data directory: it is saved with the next commit like any "
                 "file written there (`committer restore` puts a file back in place instead)", err=True)
        return
    if b"\0" in data[:SNIFF] and sys.stdout.isatty():
        raise ConfigError("-o", f"{display_path(rel)} is binary ({len(data)} bytes): write it to a file with "
                                "`-o FILE`")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def _inside(target: Path, top: Path) -> bool:
    """Whether a file written at `target` lands in the data directory (links followed, as the write does)."""
    try:
        where = target.parent.resolve() / target.name
        return where.resolve().is_relative_to(top.resolve())
    except (OSError, RuntimeError):
        return False


@command()
def diff(
    opts: Options,
    path: Annotated[str, Argument(help="A file in the data directory (its newest name).")],
    from_: Annotated[str | None, Option("--from", help=f"The older version. {WHEN} Default: the version "
                                        "before the last change.", metavar="WHEN")] = None,
    to: Annotated[str | None, Option("--to", help=f"The newer version. {WHEN} Default: the newest saved.",
                                     metavar="WHEN")] = None,
) -> int:
    """The changes to a file between two versions as a unified diff; by default its last change. Follows the
    file across its moves."""
    settings = opts.settings()
    repo = open_repo(settings)
    rel = repo.named(relative(settings, path), to or from_)
    compared = seen.compare(repo, rel, from_, to, typed_in(repo.data_dir))
    older, newer = compared.older, compared.newer
    if compared.backwards:
        echo(f"--from {display_text(str(from_))} is newer than --to {display_text(to or 'the newest')}: the changes "
             "are shown backwards (swap them to see them as they were made)", err=True)
    out = seen.unified(repo, compared)
    if not out:
        echo(f"{display_path(rel)} is the same in {older[:12]} and {newer[:12]}", err=True)
        return 0
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0


@command()
def search(
    opts: Options,
    text: Annotated[str, Argument(help="Part of a file name, or text in a file (any case). Start it with `-`? "
                                       "Put `--` before it.")],
    in_history: Annotated[bool, Option("--in-history", help="Also the past versions where the text came or "
                                       "went.")] = False,
    as_json: Annotated[bool, Option("--json", help="One JSON object.")] = False,
) -> int:
    """Find files by name (a part of the path, any case) and by content (the newest version; past versions
    with --in-history). Exit 1 when nothing is found."""
    repo = open_repo(opts.settings())
    found = finder.search(repo, text, history=in_history)
    if as_json:
        echo(json.dumps(finder.as_dict(found)))
        return 0 if found.names or found.lines or found.past else 1
    for line in render(found, in_history, typed_in(repo.data_dir)):
        echo(line)
    return 0 if found.names or found.lines or found.past else 1


def render(found: finder.Found, in_history: bool, folder: str = "") -> list[str]:
    """The lines `committer search` prints, the names as they are typed in `folder` (`../plan.md` from
    `notes`: what `show` and `log` take there)."""

    def shown(path: str) -> str:
        return display_path(as_typed(path, folder))

    out: list[str] = []
    if found.names:
        out += [f"Names ({len(found.names)}):", *(f"  {shown(p)}" for p in found.names)]
    if found.lines:
        out += [f"Content ({len(found.lines)} line{'' if len(found.lines) == 1 else 's'}):",
                *(f"  {shown(h.path)}:{h.number}: {display_text(h.text)}" for h in found.lines)]
    if found.past:
        out.append(f"Past versions ({len(found.past)}):")
        for hit in found.past:
            how = "came" if hit.came else "went"
            out.append(f"  {hit.sha[:12]}  {clock.iso(hit.epoch)}  {shown(hit.path)}  ({how}) "
                       f"{display_text(hit.text)}".rstrip())
    if not out:
        where = "in past versions either" if in_history else "(add --in-history to search past versions)"
        out.append(f"nothing found for {display_text(found.text)!r} in names or content {where}")
    out += [f"stopped early: {why}" for why in found.stopped]
    out += [f"not searched: {why}" for why in found.unsearched]
    return out

