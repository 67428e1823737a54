"""Put a file or folder back as it was at a revision, as a new audited commit."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from committer.commit.committer import Committer
from committer.core import fsio, logs
from committer.core.errors import CommitterError, ConfigError
from committer.git.checkout import write_entry
from committer.git.objects import MODE_EXEC, MODE_FILE, MODE_LINK, TreeEntry, blob_id
from committer.policy.filters import PathFilter

log = logs.get("committer.restore")


@dataclass(frozen=True)
class Action:
    """One change to the data directory: write an entry of the revision, or delete a file."""

    kind: str
    path: str
    entry: TreeEntry | None = None


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
    source = repo.resolve(rev)
    if source is None:
        raise ConfigError("--to", f"unknown revision {rev!r}: give a commit, a tag, or a date git reads")
    target = repo.ls_tree(source, [rel] if rel else None)
    with fsio.Tree(repo.data_dir) as tree:
        current = _on_disk(tree, committer.pfilter, rel)
        if not target and not current and not repo.ls_tree(committer.head, [rel] if rel else None):
            raise ConfigError("path", f"{rel or '.'} is neither in {rev} nor in the data directory")
        actions = [Action("delete", path) for path in sorted(set(current) - set(target))]
        actions += [
            Action("write", path, entry)
            for path, entry in sorted(target.items())
            if current.get(path) != (entry.mode, entry.sha) and not committer.pfilter.ignored(path)
        ]
        for action in actions:
            parent = fsio.split(action.path)[0]
            link = tree.first_link(parent) if parent else None
            if link is not None:
                raise _through_link(link)
    return source, actions


def _through_link(link: str) -> CommitterError:
    return CommitterError(
        f"restore: {link} is a symbolic link in the data directory; nothing is written through it and nothing "
        f"was restored. To get the folder back, remove the link (rm {link}), then restore again"
    )


def _on_disk(tree: fsio.Tree, pfilter: PathFilter, rel: str) -> dict[str, tuple[str, str]]:
    """Files under rel on disk, with the mode and blob id they would be committed with; never through a
    symlink (a symlink on the way refuses the restore)."""
    try:
        st = tree.lstat(rel)
    except fsio.LinkInPath as exc:
        raise _through_link(exc.link) from None
    except (FileNotFoundError, NotADirectoryError):
        return {}
    if stat.S_ISDIR(st.st_mode):
        candidates = list(tree.walk_files(rel, skip_dir=lambda d: pfilter.ignored(d, is_dir=True)))
    else:
        candidates = [rel]
    found: dict[str, tuple[str, str]] = {}
    for path in candidates:
        if pfilter.ignored(path):
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
    return found


def apply(committer: Committer, actions: list[Action]) -> list[str]:
    """Write the actions into the data directory, each file atomically, deletions first; the paths changed."""
    repo = committer.repo
    blobs = repo.read_blobs(sorted({a.entry.sha for a in actions if a.entry is not None}))
    changed = []
    with fsio.Tree(repo.data_dir) as tree:
        for action in actions:
            try:
                if action.kind == "delete":
                    tree.remove(action.path)
                else:
                    assert action.entry is not None
                    write_entry(tree, repo.git_dir, action.path, action.entry, blobs[action.entry.sha])
            except fsio.LinkInPath as exc:
                raise _through_link(exc.link) from None
            changed.append(action.path)
    return changed


def restore(committer: Committer, path: str, rev: str, dry_run: bool = False) -> dict[str, Any]:
    """Plan, and unless dry_run, apply and commit with op restore and the source revision."""
    rel = normalize(path)
    source, actions = plan(committer, rel, rev)
    answer: dict[str, Any] = {
        "path": rel or ".",
        "rev": rev,
        "source": source,
        "dry_run": dry_run,
        "actions": [{"action": a.kind, "path": a.path} for a in actions],
        "sha": None,
    }
    if dry_run or not actions:
        return answer
    changed = apply(committer, actions)
    result = committer.commit(
        changed, op="restore", extra={"source": source, "rev": rev, "path": rel or "."}, guarded=False
    )
    log.info("restored", path=rel or ".", rev=rev, source=source, files=len(changed), sha=result.sha)
    answer["sha"] = result.sha
    return answer
