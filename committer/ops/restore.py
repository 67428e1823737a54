"""Put a file or folder back as it was at a revision, as a new audited commit.

A file whose current content is in no commit (held by a safety rule, ignored, not committed yet, or changed
since the last commit) is never deleted or overwritten: where the restore would delete it, it stays; where
the restore writes over it, it is first kept beside as a conflict copy. The dry run names both.
"""

from __future__ import annotations

import hashlib
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from committer.commit.committer import Committer
from committer.core import fsio, logs, progress
from committer.core.errors import CommitterError, ConfigError
from committer.git import lfs, revs, trees
from committer.git.checkout import write_entry
from committer.git.objects import MODE_EXEC, MODE_FILE, MODE_LINK, TreeEntry, blob_id
from committer.policy.filters import PathFilter
from committer.sync import frontmatter

log = logs.get("committer.restore")

ASIDE_LABEL = "before restore"  # in the conflict copy's name: `a (conflict from before restore, <time>).md`


@dataclass(frozen=True)
class Action:
    """One change to the data directory: write an entry of the revision, delete a file, or keep one.

    `aside`: the file written over holds content that is in no commit; it is kept beside as a conflict copy
    first. `why`: for a kept file, why it stays. `was`: for a deletion, the blob id it was planned on."""

    kind: str
    path: str
    entry: TreeEntry | None = None
    aside: bool = False
    why: str = ""
    was: str = ""


def normalize(path: str) -> str:
    """A path relative to the data directory; '' is the whole directory."""
    parts = [p for p in Path(path).as_posix().split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError("path", f"{path} points outside the data directory")
    return "/".join(parts)


def plan(committer: Committer, rel: str, rev: str) -> tuple[str, list[Action]]:
    """(the commit `rev` names, what must change on disk to make `rel` as it was there).

    Refused (nothing changes) when a path to write or delete lies behind a symlink in the data directory.
    """
    repo = committer.repo
    source = revs.resolve(repo, rev, path=rel)
    if source is None:
        raise ConfigError("--to", f"unknown revision {rev!r}: give {revs.FORMS}")
    target = repo.ls_tree(source, [rel] if rel else None)
    with fsio.Tree(repo.data_dir) as tree:
        current, ignored = _on_disk(tree, committer.pfilter, rel)
        head = repo.ls_tree(committer.head, [rel] if rel else None)
        if not target and not current and not ignored and not head:
            raise ConfigError("path", f"{rel or '.'} is neither in {rev} nor in the data directory")
        loose = _uncommitted(committer, tree, current, head)
        actions = [
            Action("keep", path, why=loose[path]) if path in loose else Action("delete", path, was=current[path][1])
            for path in sorted(set(current) - set(target))
        ]
        actions += [
            Action("write", path, entry, aside=path in loose)
            for path, entry in sorted(target.items())
            if current.get(path) != (entry.mode, entry.sha) and not committer.pfilter.ignored(path)
        ]
        actions += [Action("keep", path, why="ignored by the rules here") for path in ignored]
        for action in actions:
            parent = fsio.split(action.path)[0]
            link = tree.first_link(parent) if parent else None
            if link is not None and action.kind != "keep":
                raise _through_link(link)
    return source, actions


def _through_link(link: str) -> CommitterError:
    return CommitterError(
        f"restore: {link} is a symbolic link in the data directory; nothing is written through it and nothing "
        f"was restored. To get the folder back, remove the link (rm {link}), then restore again"
    )


def _on_disk(tree: fsio.Tree, pfilter: PathFilter, rel: str) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Files under rel on disk, with the mode and blob id they would be committed with, and the ignored
    files there (never touched); never through a symlink (a symlink on the way refuses the restore)."""
    try:
        st = tree.lstat(rel)
    except fsio.LinkInPath as exc:
        raise _through_link(exc.link) from None
    except (FileNotFoundError, NotADirectoryError):
        return {}, []
    if stat.S_ISDIR(st.st_mode):
        candidates = list(tree.walk_files(rel, skip_dir=lambda d: pfilter.ignored(d, is_dir=True)))
    else:
        candidates = [rel]
    found: dict[str, tuple[str, str]] = {}
    ignored: list[str] = []
    for path in candidates:
        if pfilter.ignored(path):
            ignored.append(path)
            continue
        try:
            st = tree.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[path] = (MODE_LINK, blob_id(tree.readlink(path)))
            elif stat.S_ISREG(st.st_mode):
                mode = MODE_EXEC if st.st_mode & stat.S_IXUSR else MODE_FILE
                found[path] = (mode, blob_id(tree.read(path)))
        except OSError:
            continue
    return found, sorted(ignored)


def _uncommitted(
    committer: Committer, tree: fsio.Tree, current: dict[str, tuple[str, str]], head: dict[str, TreeEntry]
) -> dict[str, str]:
    """Path -> why, for the files on disk whose content is not HEAD's for that path (an LFS file counts as
    committed when its content is the object HEAD's pointer names)."""
    differ = {p for p, (_mode, sha) in current.items() if p not in head or head[p].sha != sha}
    pointers = committer.repo.read_blobs(sorted({head[p].sha for p in differ if p in head}))
    loose: dict[str, str] = {}
    for path in sorted(differ):
        parsed = lfs.parse(pointers.get(head[path].sha, b"")) if path in head else None
        if parsed is not None and _is_object(tree, path, parsed):
            continue
        reason = committer.held.reasons.get(path)
        if reason:
            loose[path] = f"held ({reason}): its content is in no commit"
        elif path in head:
            loose[path] = "changed since the last commit: its content is in no commit"
        else:
            loose[path] = "not committed yet: its content is in no commit"
    return loose


def _is_object(tree: fsio.Tree, path: str, pointer: tuple[str, int]) -> bool:
    oid, size = pointer
    try:
        if tree.lstat(path).st_size != size:
            return False
        return hashlib.sha256(tree.read(path)).hexdigest() == oid
    except OSError:
        return False


def apply(committer: Committer, actions: list[Action], failed: dict[str, str] | None = None) -> list[str]:
    """Write the actions into the data directory, each file atomically, deletions first; the paths changed
    (conflict copies of content in no commit included). A path that cannot be written here (a name too long
    for this filesystem, a folder in the way) is left as it is and named in `failed`; the others go on."""
    failed = failed if failed is not None else {}
    repo = committer.repo
    blobs = repo.read_blobs(sorted({a.entry.sha for a in actions if a.entry is not None}))
    changed = []
    when = time.time()
    shown = progress.display()  # a command's bar on a terminal
    with fsio.Tree(repo.data_dir) as tree:
        for number, action in enumerate(actions, 1):
            if shown is not None and (number & 63 == 1 or number == len(actions)):
                shown(progress.Step("Writing files", number, len(actions)))
            if action.kind == "keep":
                continue
            try:
                if action.kind == "delete":
                    if _blob_on_disk(tree, action.path) != action.was:
                        log.warning("restore_kept", path=action.path, why="changed while the restore ran")
                        continue
                    tree.remove(action.path)
                else:
                    assert action.entry is not None
                    if action.aside:
                        changed.append(_set_aside(tree, action.path, when, committer.settings.conflict_frontmatter))
                    write_entry(tree, repo.git_dir, action.path, action.entry, blobs[action.entry.sha])
            except fsio.LinkInPath as exc:
                raise _through_link(exc.link) from None
            except (OSError, CommitterError) as exc:
                reason = exc.message if isinstance(exc, CommitterError) else str(exc.strerror or exc)
                failed[action.path] = reason
                log.warning("restore_path_failed", path=action.path, reason=reason, action="left as it is")
                continue
            changed.append(action.path)
    return changed


def _blob_on_disk(tree: fsio.Tree, path: str) -> str | None:
    try:
        st = tree.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return blob_id(tree.readlink(path))
        return blob_id(tree.read(path)) if stat.S_ISREG(st.st_mode) else None
    except OSError:
        return None


def _set_aside(tree: fsio.Tree, path: str, when: float, retitle: bool) -> str:
    """Copy the file at `path` (content in no commit) to a conflict-copy name beside it (a distinct note:
    its frontmatter title and permalink get the suffix too, unless `retitle` is off); that name."""
    copy = trees.conflict_name(path, ASIDE_LABEL, when, tree.exists)
    st = tree.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        tree.write(copy, tree.readlink(path), link=True)
    else:
        content = tree.read(path)
        tree.write(copy, frontmatter.distinct(path, copy, content) if retitle else content, stat.S_IMODE(st.st_mode))
    log.warning("restore_set_aside", path=path, copy=copy, why="its content is in no commit")
    return copy


def restore(committer: Committer, path: str, rev: str, dry_run: bool = False) -> dict[str, Any]:
    """Plan, and unless dry_run, apply and commit with op restore and the source revision."""
    rel = normalize(path)
    source, actions = plan(committer, rel, rev)
    changes = [a for a in actions if a.kind != "keep"]
    answer: dict[str, Any] = {
        "path": rel or ".",
        "rev": rev,
        "source": source,
        "dry_run": dry_run,
        "actions": [{"action": a.kind, "path": a.path, **({"aside": True} if a.aside else {})} for a in changes],
        "kept": [{"path": a.path, "why": a.why} for a in actions if a.kind == "keep"],
        "sha": None,
    }
    if dry_run or not changes:
        return answer
    failed: dict[str, str] = {}
    changed = apply(committer, changes, failed)
    answer["failed"] = [{"path": p, "reason": r} for p, r in sorted(failed.items())]
    result = committer.commit(
        changed, op="restore", extra={"source": source, "rev": rev, "path": rel or "."}, guarded=False
    )
    log.info("restored", path=rel or ".", rev=rev, source=source, files=len(changed), sha=result.sha,
             kept=len(answer["kept"]))
    answer["sha"] = result.sha
    return answer
