"""Merging the remote's branch with local commits: git's in-memory merge, conflicts as conflict copies,
and the merge commit with its trailer."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from committer.commit import message
from committer.commit.committer import Committer
from committer.core import clock, fsio
from committer.core.errors import CommitterError
from committer.git import trees
from committer.git.objects import TreeEntry
from committer.git.repo import GitRepo
from committer.sync import frontmatter
from committer.sync.forges import forge_for
from committer.sync.forges.github import GitHub


def merged_tree(
    repo: GitRepo, local: str, remote: str, when: float, retitle: bool = True
) -> tuple[str, list[dict[str, str]]]:
    """The merge of both sides; where they conflict the local version keeps the path, the remote's is a copy
    (a file deleted there and changed here stays, and is a conflict without a copy).

    A file that git moved out of a folder's way (a file on one side, a folder on the other) gets a
    conflict-copy name instead of git's `name~<commit>`. Refused when any new content would be lost.
    """
    tree, conflicted = trees.merge_trees(repo, local, remote)
    if not conflicted:
        return tree, []
    names = set(repo.ls_tree(local, None)) | set(repo.ls_tree(remote, None))

    def taken(name: str) -> bool:
        if name in names:
            return True
        with fsio.Tree(repo.data_dir) as tree:
            return tree.exists(name)

    overrides: dict[str, TreeEntry | None] = {}
    copies: list[dict[str, str]] = []
    for path, stages in sorted(conflicted.items()):
        moved = next(((path[: -len(sha) - 1], side) for sha, side in ((local, 2), (remote, 3))
                      if path.endswith(f"~{sha}")), None)
        if moved is not None:
            original, side = moved
            overrides[path] = None
            copy = trees.conflict_name(original, repo.branch if side == 3 else "local", when, taken)
            names.add(copy)
            overrides[copy] = stages[side]
            copies.append({"path": original, "copy": copy, "why": "a file on one side, a folder on the other"})
            continue
        mine, other = stages.get(2), stages.get(3)
        overrides[path] = mine
        if other is None and mine is not None:
            # Deleted there, changed here: the local version stays, and that is a conflict to tell about.
            copies.append({"path": path, "copy": "", "why": "deleted on the remote, changed here"})
        elif other is not None and other != mine:
            copy = trees.conflict_name(path, repo.branch, when, taken)
            names.add(copy)
            overrides[copy] = other
            copies.append({"path": path, "copy": copy, "why": "changed on both sides"})
    retitled = _retitle(repo, overrides, copies) if retitle else {}
    merged = trees.write_tree(repo, tree, overrides)
    # Each side's version of every conflicted path must be somewhere in the result (a copy whose frontmatter
    # got its suffix counts: the version it came from is in that side's commit, a parent of the merge).
    lost = trees.missing(repo, merged, {e.sha for stages in conflicted.values() for n, e in stages.items() if n > 1}
                         - set(retitled))
    if lost:
        raise CommitterError(f"the merge with the remote would lose {len(lost)} file version(s); nothing was "
                             "changed: merge by hand (see docs/pulling.md)")
    return merged, copies


def _retitle(repo: GitRepo, overrides: dict[str, TreeEntry | None], copies: list[dict[str, str]]) -> dict[str, str]:
    """Give each Markdown conflict copy its suffix in its frontmatter title and permalink; original blob id ->
    the new one."""
    wanted = {c["copy"]: c["path"] for c in copies if c["copy"] and c["copy"].lower().endswith(frontmatter.MARKDOWN)}
    entries = {copy: overrides.get(copy) for copy in wanted}
    blobs = repo.read_blobs(sorted({e.sha for e in entries.values() if e is not None}))
    done: dict[str, str] = {}
    for copy, entry in entries.items():
        if entry is None or entry.sha not in blobs:
            continue
        content = frontmatter.distinct(wanted[copy], copy, blobs[entry.sha])
        if content != blobs[entry.sha]:
            sha = repo.git("hash-object", "-w", "--stdin", input=content).stdout.decode().strip()
            overrides[copy] = TreeEntry(entry.mode, sha)
            done[entry.sha] = sha
    return done


def merge_commit(
    committer: Committer, local: str | None, remote: str, tree: str,
    changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]], copies: list[dict[str, str]], when: float,
) -> str:
    """A merge commit of both heads with the BM-Meta trailer ("op":"merge"); `changes`: local -> tree."""
    extra: dict[str, Any] = {"op": "merge", "remote": remote}
    if copies:
        extra["conflicts"] = len(copies)
    forge = forge_for(committer.settings)
    named = forge.title if isinstance(forge, GitHub) else "origin"  # the forge's name, or git's for a remote
    subject = message.merge_subject(named, sum(1 for c in copies if c["copy"]))
    return commit_tree(committer, tree, [local, remote] if local else [remote], subject, extra, changes, when)


def commit_tree(
    committer: Committer, tree: str, parents: list[str], subject: str, extra: Mapping[str, Any],
    changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]], when: float,
) -> str:
    """A commit of `tree` on `parents` with the BM-Meta trailer (`extra` in it), in the bot's name, on no
    branch (the caller moves one); `changes`: the first parent's tree -> `tree`."""
    added = sum(1 for old, _new in changes.values() if old is None)
    deleted = sum(1 for _old, new in changes.values() if new is None)
    counts = message.Counts(added=added, modified=len(changes) - added - deleted, deleted=deleted, renamed=0)
    meta = message.trailer_value(batch=str(uuid.uuid4()), host=committer.step.host, counts=counts,
                                 first_event=clock.iso(when, ms=True), bmmeta=None, extra=extra)
    text = message.build(subject, meta)
    name, email = committer.step.identity
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
           "GIT_COMMITTER_EMAIL": email}
    flags = [arg for parent in parents for arg in ("-p", parent)]
    return committer.repo.git("commit-tree", tree, *flags, input=text.encode(), env=env).stdout.decode().strip()
