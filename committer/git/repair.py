"""Start-up check and repair of the repository; the data directory is never touched here."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from committer.core import logs
from committer.core.errors import CommitterError
from committer.git import cleanstop
from committer.git.repo import GitRepo

log = logs.get("committer.repair")

_LEFTOVERS = ("fast_import_crash_*", "objects/tmp_obj_*", "objects/pack/tmp_*", "objects/??/tmp_obj_*",
              "lfs/incomplete/*")  # a download cut by a kill of the whole process


def clean_leftovers(repo: GitRepo) -> None:
    """Remove what a crash leaves: empty loose objects (a power loss), temp objects, crash reports."""
    objects = repo.git_dir / "objects"
    for folder in objects.glob("[0-9a-f][0-9a-f]"):
        for path in folder.iterdir():
            try:
                if path.stat().st_size == 0:
                    path.unlink()
                    log.warning("empty_object_removed", path=str(path))
            except OSError:
                continue
    for pattern in _LEFTOVERS:
        for path in repo.git_dir.glob(pattern):
            try:
                path.unlink(missing_ok=True)
            except OSError:  # a folder, or not ours to remove: left alone
                continue
            log.info("leftover_removed", path=str(path))


def intact(repo: GitRepo, rev: str) -> bool:
    """Every object reachable from rev is there and parses (git fsck --connectivity-only)."""
    proc = repo.git("fsck", "--connectivity-only", "--no-dangling", "--no-progress", rev, check=False)
    return proc.returncode == 0 and not proc.stderr.strip()


def _reflog(repo: GitRepo) -> list[str]:
    """The branch's commits, newest first, read from its reflog file: `git reflog show` refuses a branch
    whose newest commit is the missing object."""
    try:
        lines = (repo.git_dir / "logs" / repo.ref).read_bytes().splitlines()
    except OSError:
        return []
    rows = (line.split(b" ", 2) for line in reversed(lines))  # old new who time zone\tmessage
    shas = [fields[1].decode("ascii", "replace") for fields in rows if len(fields) > 2]
    return [sha for sha in shas if len(sha) in (40, 64) and all(c in "0123456789abcdef" for c in sha)]


def check_and_repair(repo: GitRepo, fetch: Callable[[], str | None] | None = None,
                     taken: tuple[str, dict[str, Any] | None] | None = None) -> str:
    """ok, repaired (the branch was moved back or refetched), or replaced (the git dir was moved aside).

    Skipped when the repository is exactly as the last clean stop left it (the stamp of `git/cleanstop.py`,
    taken away before anything writes: here, or by the caller as `taken`). The order: the branch as it is;
    objects fetched from the remote; the newest intact commit of the branch's reflog (the reconcile that
    follows commits the data directory on top); and when nothing helps, the git dir is moved aside (never
    deleted) so a new one can be made.
    """
    started = time.monotonic()
    found, stamp = taken or cleanstop.take(repo.git_dir)
    clean_leftovers(repo)  # what a crash left: its removal changes the fingerprint, so the check runs
    if not (repo.git_dir / "refs").is_dir() or not (repo.git_dir / "objects").is_dir():
        return _replace(repo, "the repository has no refs or objects folder")
    # the raw reference: head() peels to a commit and would take a missing commit for an empty branch
    head = cleanstop.head_of(repo)
    clean_stop = found
    if stamp is not None and cleanstop.matches(stamp, repo, head):
        last_check = cleanstop.fresh(stamp)
        if last_check is not None:
            cleanstop.checked(repo.git_dir, last_check)
            log.info("repo_checked", result="ok", check="skipped", clean_stop="matched",
                     clean_stop_at=stamp.get("at"), last_check_at=stamp.get("checked_at"),
                     why="the repository is as the clean stop left it", seconds=round(time.monotonic() - started, 3))
            return "ok"
        clean_stop = "expired"  # as left, but its last whole check is a day old: checked now
    elif stamp is not None:
        clean_stop = "changed"
    if head is None or intact(repo, head):
        cleanstop.checked(repo.git_dir)
        log.info("repo_checked", result="ok", check="fsck" if head else "empty branch", clean_stop=clean_stop,
                 seconds=round(time.monotonic() - started, 3))
        return "ok"
    log.error("repo_damaged", head=head, action="repairing; the data directory is not touched")
    if fetch is not None:
        try:
            fetch()
        except CommitterError as exc:
            log.warning("repair_fetch_failed", error=exc.message)
        if intact(repo, head):
            cleanstop.checked(repo.git_dir)
            log.warning("repo_repaired", how="missing objects fetched from the remote", head=head)
            return "repaired"
    for candidate in _reflog(repo):
        if candidate != head and intact(repo, candidate):
            cleanstop.checked(repo.git_dir)
            repo.git("update-ref", "-m", "committer: repair: back to the newest intact commit", repo.ref, candidate)
            log.warning("repo_repaired", how="branch moved back to the newest intact commit", head=candidate,
                        damaged=head)
            return "repaired"
    return _replace(repo, f"no intact commit left on {repo.branch}")


def _replace(repo: GitRepo, why: str) -> str:
    aside = repo.git_dir.with_name(f"{repo.git_dir.name}.broken-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    os.replace(repo.git_dir, aside)
    log.error("repo_moved_aside", path=str(aside), why=why,
              action="a new repository is made from the remote or the data directory; the old one is kept")
    return "replaced"
