"""Conflicts a pull reported, until they are resolved: what `status` lists under `conflicts`."""

from __future__ import annotations

from typing import Any

from committer.core import clock, logs
from committer.git.repo import GitRepo
from committer.sync.pullstate import CONFLICTS_KEPT, PullRecord

log = logs.get("committer.pull")


def open_conflicts(repo: GitRepo, head: str | None, conflicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conflicts not resolved yet. One with a copy is resolved once the copy has left the branch (deleted,
    or merged by hand and removed); one without (deleted on the remote, kept here) once the note has been
    changed or deleted here since."""
    if not conflicts or head is None:
        return list(conflicts)
    names = sorted({str(c.get("copy") or c.get("path")) for c in conflicts})
    entries = repo.ls_tree(head, names)
    still = []
    for item in conflicts:
        kept = entries.get(str(item.get("path")))
        if item.get("copy"):
            if str(item["copy"]) in entries:
                still.append(item)
        elif kept is not None and (not item.get("sha") or kept.sha == item["sha"]):
            still.append(item)
    return still


def settle_conflicts(repo: GitRepo, head: str | None, record: PullRecord) -> None:
    """Remember the version a remote deletion was refused for, and drop the conflicts resolved since."""
    conflicts = [c for c in record.get("conflicts") or [] if isinstance(c, dict)]
    if not conflicts or head is None:
        return
    bare = [c for c in conflicts if not c.get("copy") and not c.get("sha")]
    if bare:
        entries = repo.ls_tree(head, sorted({str(c.get("path")) for c in bare}))
        for item in bare:
            entry = entries.get(str(item.get("path")))
            if entry is not None:
                item["sha"] = entry.sha
    still = open_conflicts(repo, head, conflicts)
    for item in conflicts:
        if item not in still:
            log.info("conflict_resolved", path=item.get("path"), copy=item.get("copy") or None)
    if still:
        record["conflicts"] = still
    else:
        record.pop("conflicts", None)


def remember(record: PullRecord, item: dict[str, str]) -> None:
    """A conflict the commit side found (a rclone bisync conflict, a pulled version overwritten): listed in
    status beside the pull's own, until it is resolved the same way."""
    kept = [c for c in record.get("conflicts") or [] if isinstance(c, dict)]
    kept.append({**item, "at": clock.iso(clock.now(), ms=True), "remote_head": ""})
    record["conflicts"] = kept[-CONFLICTS_KEPT:]
