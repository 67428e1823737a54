"""LFS objects on the way back: downloaded for a pull or a restore from the remote, and the real files
written where a checkout left pointers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from committer.commit.lfspaths import LfsPaths
from committer.core import fsio, logs
from committer.core.errors import CommitterError
from committer.core.settings import Settings
from committer.git import lfs, trees
from committer.git.checkout import write_entry
from committer.git.objects import TreeEntry
from committer.git.repo import GitRepo
from committer.sync.apply import disk_entry, matches
from committer.sync.bootstrap import fetch_lfs_objects

log = logs.get(__name__)


def pointers(entries: Mapping[str, TreeEntry], blobs: Mapping[str, bytes]) -> dict[str, str]:
    """Path -> LFS oid of the entries whose blob is an LFS pointer."""
    found = {}
    for path, entry in entries.items():
        parsed = lfs.parse(blobs.get(entry.sha, b""))
        if parsed is not None:
            found[path] = parsed[0]
    return found


def fetch_lfs(settings: Settings, repo: GitRepo, rev: str, oids: Iterable[str]) -> None:
    """Download the LFS objects of `rev` when any of `oids` is missing. A failure is logged: a pull then
    leaves those files as they were (never a pointer in their place) and tries again at the next pull."""
    missing = [oid for oid in oids if not lfs.object_path(repo.git_dir, oid).is_file()]
    if not missing or not settings.remote:
        return
    if not lfs.available():
        log.warning("lfs_fetch_skipped", missing=len(missing), reason="git-lfs is not installed",
                    action="those files keep what they had; a restore from the remote writes pointers")
        return
    try:
        fetch_lfs_objects(settings, repo, rev)
    except CommitterError as exc:
        log.warning("lfs_fetch_failed", missing=len(missing), error=exc.message,
                    action="a pull leaves those files as they were and tries again at the next pull")


def checkout_lfs(settings: Settings, repo: GitRepo, rev: str) -> int:
    """After a checkout of `rev` (a restore from the remote): put the real content where it holds pointers.

    Returns the number of files replaced; those without an object (download failed) stay pointers.
    """
    entries = trees.small_blobs(repo, rev, lfs.POINTER_MAX)
    blobs = repo.read_blobs(sorted({e.sha for e in entries.values()}))
    found = pointers(entries, blobs)
    if not found:
        return 0
    fetch_lfs(settings, repo, rev, found.values())
    replaced = 0
    with fsio.Tree(repo.data_dir) as tree:
        for path, oid in sorted(found.items()):
            entry = entries[path]
            if lfs.object_path(repo.git_dir, oid).is_file() and matches(disk_entry(tree, path), entry, {}):
                try:
                    replaced += write_entry(tree, repo.git_dir, path, entry, blobs[entry.sha],
                                            expect=lambda p=path, e=entry: matches(disk_entry(tree, p), e, {}))  # type: ignore[misc]
                except fsio.LinkInPath as exc:
                    log.warning("lfs_checkout_skipped", path=path, reason=f"{exc.link} is a symbolic link here")
    LfsPaths(repo).replace(set(found))
    log.info("lfs_checked_out", files=replaced, pointers=len(found))
    return replaced
