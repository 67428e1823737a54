"""The commands that show old versions without restoring anything: show, diff, search."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

from committer.cli.app import Argument, Option, Options, command, echo
from committer.cli.commands import as_typed, relative, typed_in
from committer.core import clock
from committer.core.errors import ConfigError
from committer.core.paths import display_path, display_text
from committer.core.settings import Settings
from committer.git import lfs, revs
from committer.git.repo import GitRepo
from committer.ops import search as finder

SNIFF = 8000  # bytes looked at to tell text from binary, as git does
WHEN = "A commit, a tag or a date: 2026-12-01 (its end), 2026-12-01 18:00, yesterday, last tuesday, 2 hours ago."
SUGGESTED = 5  # names offered when a path is not in the history
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's tree with nothing in it


def open_repo(settings: Settings) -> GitRepo:
    """The repository, or the one line saying there is none."""
    repo = GitRepo.of(settings)
    if not repo.exists():
        raise ConfigError("git-dir", f"no repository at {settings.git_dir}; run `committer init`")
    if repo.head() is None:
        raise ConfigError("git-dir", f"nothing has been saved yet in {settings.git_dir}")
    return repo


def version(repo: GitRepo, when: str | None, setting: str, rel: str) -> str:
    """The commit `when` names (the newest saved version when None)."""
    if not when:
        return str(repo.head())
    sha = revs.resolve(repo, when, setting, path=rel)
    if sha is None:
        raise ConfigError(setting, f"{when!r} names no version: give {revs.FORMS}")
    return sha


def suggest(repo: GitRepo, rel: str) -> str:
    """`; did you mean a/b.md or c/b.md?` from the names holding the last part of `rel`, or ""."""
    tail = rel.rstrip("/").rsplit("/", 1)[-1]
    found = [p for p in finder.names(repo, tail, most=SUGGESTED) if p != rel] if tail else []
    folder = typed_in(repo.data_dir)  # named as they are typed where the command was typed
    return f"; did you mean {' or '.join(display_path(as_typed(p, folder)) for p in found)}?" if found else ""


def name_at(repo: GitRepo, rel: str, sha: str, newest: str) -> str | None:
    """The name the file `rel` (as named in `newest`) had in `sha`, following its moves; None: not there."""
    if repo.ls_tree(sha, [rel]).get(rel):
        return rel
    for entry in revs.follow(repo, rel, 1000, newest):
        if entry.moved and repo.ls_tree(sha, [entry.moved[0]]).get(entry.moved[0]):
            return entry.moved[0]
    return None


def missing(repo: GitRepo, rel: str, sha: str) -> ConfigError:
    """The line for a path the version does not hold (a folder, or no such file then)."""
    if repo.git("ls-tree", "-d", sha, "--", rel, check=False).stdout:
        return ConfigError("path", f"{display_path(rel)} is a folder; name one file in it "
                                   f"(`committer log {display_path(rel)}` lists its changes)")
    when = clock.iso(int(repo.git("log", "-1", "--format=%ct", sha, "--").stdout.strip() or 0))
    return ConfigError("path", f"{display_path(rel)} is not in the version {sha[:12]} of {when}"
                               f"{suggest(repo, rel)} (`committer log PATH` lists a file's versions)")


def content(repo: GitRepo, sha: str, rel: str) -> bytes:
    """The file's bytes in a version; an LFS pointer stands for its object in the local LFS store."""
    entry = repo.ls_tree(sha, [rel]).get(rel)
    if entry is None:
        raise missing(repo, rel, sha)
    data = repo.read_blobs([entry.sha])[entry.sha]
    pointer = lfs.parse(data) if len(data) < lfs.POINTER_MAX else None
    if pointer is None:
        return data
    stored = lfs.object_path(repo.git_dir, pointer[0])
    if not stored.is_file():
        raise ConfigError("path", f"{display_path(rel)} is a large file kept in LFS and its content is not in this "
                                  "repository's LFS store (`committer pull` fetches it)")
    return stored.read_bytes()


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
    sha = version(repo, at, "--at", rel)
    data = content(repo, sha, rel)
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
    head = str(repo.head())
    newer = version(repo, to, "--to", rel)
    if from_:
        older = version(repo, from_, "--from", rel)
    else:  # the last change at or before `newer`: its version against the one before
        changes = list(revs.follow(repo, name_at(repo, rel, newer, head) or rel, 1, newer))
        if not changes:
            raise missing(repo, rel, newer)
        newer = changes[0].sha
        older = repo.resolve(f"{newer}~1") or EMPTY_TREE
    new_name = name_at(repo, rel, newer, head)
    old_name = name_at(repo, new_name or rel, older, newer if new_name else head)
    if old_name is None and new_name is None:
        raise missing(repo, rel, newer)
    if from_ and older != newer and repo.git("merge-base", "--is-ancestor", newer, older, check=False).returncode == 0:
        echo(f"--from {display_text(from_)} is newer than --to {display_text(to or 'the newest')}: the changes "
             "are shown backwards (swap them to see them as they were made)", err=True)
    names = sorted({n for n in (old_name, new_name) if n})
    out = repo.git("diff", "--no-color", "--no-ext-diff", "-M", older, newer, "--", *names).stdout
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
        echo(json.dumps(_as_dict(found)))
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
    return out


def _as_dict(found: finder.Found) -> dict[str, Any]:
    def line(hit: finder.Line) -> dict[str, Any]:
        item: dict[str, Any] = {"path": display_path(hit.path), "line": hit.number, "text": hit.text}
        if hit.sha:
            item.update(sha=hit.sha, date=clock.iso(hit.epoch), came=hit.came)
        return item

    return {"text": found.text, "names": [display_path(p) for p in found.names],
            "lines": [line(h) for h in found.lines], "past": [line(h) for h in found.past],
            "stopped": found.stopped}

