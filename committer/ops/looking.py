"""Old versions without restoring anything: which version a person's words name, a file's content there, and
the changes to a file between two versions. The CLI's `show` and `diff` and the agents' tools (serve/agents.py)
both use this; it only reads, with git commands through the repository's runner."""

from __future__ import annotations

import os
from dataclasses import dataclass

from committer.core import clock
from committer.core.errors import ConfigError
from committer.core.paths import display_path
from committer.git import lfs, revs
from committer.git.repo import GitRepo
from committer.git.trees import EMPTY_TREE
from committer.ops import search as finder

SUGGESTED = 5  # names offered when a path is not in the history


def version(repo: GitRepo, when: str | None, setting: str, rel: str) -> str:
    """The commit `when` names (the newest saved version when None)."""
    if not when:
        return str(repo.head())
    sha = revs.resolve(repo, when, setting, path=rel)
    if sha is None:
        raise ConfigError(setting, f"{when!r} names no version: give {revs.FORMS}")
    return sha


def suggest(repo: GitRepo, rel: str, shown: str = "") -> str:
    """`; did you mean a/b.md or c/b.md?` from the names holding the last part of `rel`, or "". Names are
    shown relative to the folder `shown` (where a command was typed), else to the data directory."""
    tail = rel.rstrip("/").rsplit("/", 1)[-1]
    found = [p for p in finder.names(repo, tail, most=SUGGESTED) if p != rel] if tail else []
    named = [os.path.relpath(p, shown) if shown else p for p in found]
    return f"; did you mean {' or '.join(display_path(p) for p in named)}?" if found else ""


def name_at(repo: GitRepo, rel: str, sha: str, newest: str) -> str | None:
    """The name the file `rel` (as named in `newest`) had in `sha`, following its moves; None: not there."""
    if repo.ls_tree(sha, [rel]).get(rel):
        return rel
    for entry in revs.follow(repo, rel, 1000, newest):
        if entry.moved and repo.ls_tree(sha, [entry.moved[0]]).get(entry.moved[0]):
            return entry.moved[0]
    return None


CLI_LOG = "`committer log {}`"  # how a person lists a path's changes


def missing(repo: GitRepo, rel: str, sha: str, shown: str = "", log: str = CLI_LOG) -> ConfigError:
    """The line for a path the version does not hold (a folder, or no such file then); `log` names the way to
    list a path's changes."""
    if repo.git("ls-tree", "-d", sha, "--", rel, check=False).stdout:
        return ConfigError("path", f"{display_path(rel)} is a folder; name one file in it "
                                   f"({log.format(display_path(rel))} lists its changes)")
    when = clock.iso(int(repo.git("log", "-1", "--format=%ct", sha, "--").stdout.strip() or 0))
    return ConfigError("path", f"{display_path(rel)} is not in the version {sha[:12]} of {when}"
                               f"{suggest(repo, rel, shown)} ({log.format('PATH')} lists a file's versions)")


def content(repo: GitRepo, sha: str, rel: str, shown: str = "") -> bytes:
    """The file's bytes in a version; an LFS pointer stands for its object in the local LFS store."""
    entry = repo.ls_tree(sha, [rel]).get(rel)
    if entry is None:
        raise missing(repo, rel, sha, shown)
    data = repo.read_blobs([entry.sha])[entry.sha]
    pointer = lfs.parse(data) if len(data) < lfs.POINTER_MAX else None
    if pointer is None:
        return data
    stored = lfs.object_path(repo.git_dir, pointer[0])
    if not stored.is_file():
        raise ConfigError("path", f"{display_path(rel)} is a large file kept in LFS and its content is not in this "
                                  "repository's LFS store (`committer pull` fetches it)")
    return stored.read_bytes()


@dataclass(frozen=True)
class Compared:
    """Two versions of one file: their commits (`older` may be the empty tree), its names in either, and
    whether `older` was given newer than `newer` (the changes then read backwards)."""

    older: str
    newer: str
    names: list[str]
    backwards: bool


def compare(repo: GitRepo, rel: str, from_: str | None, to: str | None, shown: str = "",
            settings: tuple[str, str] = ("--from", "--to"), log: str = CLI_LOG) -> Compared:
    """The versions a diff of `rel` shows: `from_` to `to` (dates as people say them, the newest when `to` is
    None), or without `from_` the last change at or before `to`. Follows the file across its moves."""
    head = str(repo.head())
    newer = version(repo, to, settings[1], rel)
    if from_:
        older = version(repo, from_, settings[0], rel)
    else:  # the last change at or before `newer`: its version against the one before
        changes = list(revs.follow(repo, name_at(repo, rel, newer, head) or rel, 1, newer))
        if not changes:
            raise missing(repo, rel, newer, shown, log)
        newer = changes[0].sha
        older = repo.resolve(f"{newer}~1") or EMPTY_TREE
    new_name = name_at(repo, rel, newer, head)
    old_name = name_at(repo, new_name or rel, older, newer if new_name else head)
    if old_name is None and new_name is None:
        raise missing(repo, rel, newer, shown, log)
    backwards = bool(from_) and older != newer and repo.git(
        "merge-base", "--is-ancestor", newer, older, check=False).returncode == 0
    return Compared(older, newer, sorted({n for n in (old_name, new_name) if n}), backwards)


def unified(repo: GitRepo, compared: Compared) -> bytes:
    """The unified diff between the two versions (empty when they hold the file alike)."""
    return repo.git("diff", "--no-color", "--no-ext-diff", "-M", compared.older, compared.newer, "--",
                    *compared.names).stdout
