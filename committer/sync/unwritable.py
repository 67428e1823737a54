"""The remote's paths a pull could not write here (a name too long, a symlink on the way, an LFS object not
downloaded): listed in the pull record and pinned on the commit side (HEAD's version stands), tried again
at each pull and reconcile, written once they can be, and never written over something else."""

from __future__ import annotations

from committer.commit.committer import Committer
from committer.core import fsio, logs
from committer.core.errors import CommitterError
from committer.git.checkout import write_entry
from committer.git.objects import TreeEntry, blob_id
from committer.sync.apply import disk_entry, lfs_missing, matches, safe
from committer.sync.lfsfetch import fetch_lfs, pointers
from committer.sync.pullstate import PullRecord

log = logs.get("committer.pull")


def retry_unwritable(committer: Committer, record: PullRecord) -> None:
    """Write what earlier pulls could not, where it can be written now (no download: LFS objects are fetched
    by pulls); the main loop's reconcile asks, so a removed link or a freed name is not left waiting."""
    if record.unwritable() and committer.head is not None:
        keep_unwritable(committer, record, committer.head, {}, set(), fetch=False)


def keep_unwritable(
    committer: Committer, record: PullRecord, head: str, fresh: dict[str, str], touched: set[str],
    waiting: dict[str, str] | None = None, fetch: bool = True,
) -> None:
    """The paths this pull could not write, and those of earlier pulls it did not touch, tried again: each
    stays listed (and pinned: the commit side keeps HEAD's version of it) while HEAD has it and the data
    directory does not hold it; one that became writable is written now (an LFS file whose object arrived
    only where the disk still holds what it held when it was listed)."""
    earlier = {p: r for p, r in record.unwritable().items() if p not in touched and p not in fresh}
    was = {**{p: w for p, w in record.waiting().items() if p in earlier}, **(waiting or {})}
    found = dict(fresh)
    if earlier:
        repo = committer.repo
        entries = repo.ls_tree(head, sorted(earlier))
        blobs = repo.read_blobs(sorted({e.sha for e in entries.values()}))
        missing = [p for p, e in entries.items() if lfs_missing(repo.git_dir, blobs.get(e.sha, b""))]
        if missing and fetch:
            fetch_lfs(committer.settings, repo, head, pointers({p: entries[p] for p in missing}, blobs).values())
        with fsio.Tree(repo.data_dir) as tree:
            for path, reason in sorted(earlier.items()):
                entry = entries.get(path)
                if entry is None and was.get(path):
                    if _delete(tree, path, was[path]):
                        continue
                    found[path] = reason  # a deletion of the remote's that still cannot be done here
                    continue
                if entry is None or matches(disk_entry(tree, path), entry, blobs):
                    continue  # gone from the branch, or there now
                if _retry(committer, tree, path, entry, blobs, was.get(path)):
                    log.info("pull_path_written", path=path, why="an earlier pull could not write it")
                    continue
                found[path] = reason
    if found or record.unwritable():
        record.set_unwritable(found, {p: w for p, w in was.items() if p in found})
    committer.step.pinned.clear()
    committer.step.pinned.update(found)


def _delete(tree: fsio.Tree, path: str, was: str) -> bool:
    """Remove a file the remote deleted, if it still holds what it held then; True when it is gone (or
    changed since: then it is a local file again, committed as such)."""
    disk = disk_entry(tree, path)
    if disk is None or blob_id(disk[1]) != was:
        return True
    try:
        tree.remove(path)
    except OSError:
        return False
    log.info("pull_path_deleted", path=path, why="an earlier pull could not delete it")
    return True


def _retry(committer: Committer, tree: fsio.Tree, path: str, entry: TreeEntry, blobs: dict[str, bytes],
           was: str | None) -> bool:
    """Write one listed path from HEAD if it can be now, over nothing or over what it was listed with."""
    repo = committer.repo
    if not safe(tree, path) or lfs_missing(repo.git_dir, blobs.get(entry.sha, b"")):
        return False
    disk = disk_entry(tree, path)
    if disk is not None and (not was or blob_id(disk[1]) != was):
        return False  # something else is there now: never overwritten

    def same() -> bool:
        now = disk_entry(tree, path)
        return now is None if disk is None else now is not None and blob_id(now[1]) == was

    try:
        return write_entry(tree, repo.git_dir, path, entry, blobs[entry.sha], expect=same)
    except (OSError, CommitterError):
        return False
