"""The clean-stop stamp (`<git_dir>/committer/clean-stop.json`): what the repository was when committer
last left it in a known-good state, so that the next start can skip the whole-repository connectivity
check (`git fsck --connectivity-only`, 267 MB and many seconds on a 1,000,000-file history) when nothing
has touched the objects or the branch since.

Why a stamp may be trusted:

- It is written only at the end of a run that went through the start-up check (`daemon/startup.py`
  `prepare`): there the repository was found intact (by `git fsck`, or by a matching stamp, itself
  written under this same rule), or repaired and found intact, or made anew. From that state on, the
  objects and the branch were changed only by git processes committer ran: fast-import (its pack and
  index fsynced before the branch moves), fetch (which checks the connectivity of what it receives),
  merge, update-ref and repack, all with `core.fsync=committed`, so what they wrote is on disk
  before the stamp that describes it is. A run whose last commit or pull failed, that lost its lock,
  or that ended by an exception writes no stamp: the next start checks.
- The stamp is taken away (removed, the removal fsynced) at the start, before anything writes: a run
  that crashes leaves none behind, and the next start checks.
- It is compared with a fingerprint read from the file system, not trusted as it is: the branch's
  commit; the packed-refs file (its content) and the branch's ref file (its identity); every file of
  `objects/pack` (name, size, mtime, ctime, inode); and every loose object (name, size, ctime). Nothing
  is read of any object's content, and the cost follows the number of packs and of loose objects
  (rolled into packs by maintenance), never the history. A repack, a gc, a fetch or a commit made by
  anything after the stamp, an object or pack deleted, added or rewritten, a ref moved, packed-refs
  edited, the git dir copied elsewhere (other inodes): each changes the fingerprint, and the check runs.
  Maintenance that repacks while the daemon runs is stopped before the stamp is written, so the stamp
  describes the packs it left.
- A repository that borrows objects (`objects/info/alternates`), keeps refs in a reftable, or whose
  packs or objects are links (what they point at could go while the links stay) has objects or refs this
  fingerprint cannot see: it is always checked.
- What no fingerprint sees is damage done while a daemon ran, by another program or the disk, before a
  stop that records it. So a stamp carries the time of the last whole check it descends from, a skip does
  not renew it, and past TRUSTED_FOR (a day) the start checks again: such damage is found within a day.

What is not covered is what no fingerprint can see without reading every object: damage done by the
disk itself to a pack's bytes, with no change of its size or times. The start-up check, a connectivity
check, would not see most of that either; `committer verify` reads every object (`git fsck --full`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from committer.core import clock, fsio, logs
from committer.core.errors import CommitterError
from committer.git.layout import state_dir
from committer.git.repo import GitRepo

log = logs.get("committer.repair")

STAMP_FILE = "clean-stop.json"
VERSION = 2
# A stamp says when the last whole check was, carried from run to run: past this, a start checks again,
# so damage no fingerprint can see (done by something else while a daemon ran) is found within a day.
TRUSTED_FOR = 24 * 3600.0
_checked: dict[str, float] = {}  # git dir: when its last whole check was (this start's, or carried)
_MAX_STAMP = 4 << 20  # a stamp is a few hundred bytes a pack: anything this big is not ours


def _stat(path: Path) -> list[int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class _Linked(Exception):
    """An object or pack file is a link: what it points at could go (another disk unmounted) unseen."""


def _loose(objects: Path) -> str:
    """One digest of every loose object's name, size and ctime (no content read)."""
    digest = hashlib.sha256()
    for folder in sorted(objects.glob("[0-9a-f][0-9a-f]")):
        if folder.is_symlink():
            raise _Linked(folder)
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_symlink():
                    raise _Linked(entry.path)
                st = entry.stat(follow_symlinks=False)
                digest.update(f"{folder.name}{entry.name} {st.st_size} {st.st_ctime_ns}\n".encode())
    return digest.hexdigest()


def fingerprint(repo: GitRepo, head: str | None) -> dict[str, Any] | None:
    """What the objects and the branch are now, from the file system; None when they cannot be told
    apart this way (borrowed objects, a reftable, objects or packs that are links)."""
    git_dir, objects = repo.git_dir, repo.git_dir / "objects"
    if (objects / "info" / "alternates").exists() or (git_dir / "reftable").exists():
        return None
    if objects.is_symlink() or (objects / "pack").is_symlink():
        return None
    try:
        loose = _loose(objects)
    except _Linked:
        return None
    packed = git_dir / "packed-refs"
    try:
        packed_digest = hashlib.sha256(packed.read_bytes()).hexdigest()
    except FileNotFoundError:
        packed_digest = None
    with os.scandir(objects / "pack") as entries:
        listed = list(entries)
    if any(entry.is_symlink() for entry in listed):
        return None
    packs = sorted([entry.name, *(_stat(Path(entry.path)) or [])] for entry in listed)
    here = os.stat(git_dir)
    return {
        "git_dir": str(git_dir.resolve()), "git_dir_id": [here.st_dev, here.st_ino],
        "ref": repo.ref, "head": head,
        "ref_file": _stat(git_dir / repo.ref), "packed_refs": [_stat(packed), packed_digest],
        "shallow": _stat(git_dir / "shallow"),
        "packs": packs, "loose": loose,
    }


def _path(git_dir: Path) -> Path:
    return state_dir(git_dir) / STAMP_FILE


def take(git_dir: Path) -> tuple[str, dict[str, Any] | None]:
    """Read the stamp and remove it (the removal on disk) before anything writes: (how it was, the stamp).

    How it was: `missing`, `unreadable` (corrupt, of another version, or it could not be removed: then it is
    not trusted), or `found`."""
    path = _path(git_dir)
    try:
        data = path.read_bytes()[:_MAX_STAMP + 1]
    except FileNotFoundError:
        return "missing", None
    except OSError:
        return "unreadable", None
    try:
        path.unlink()
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("clean_stop_stamp_kept", path=str(path), error=str(exc))
        return "unreadable", None
    try:
        stamp = json.loads(data) if len(data) <= _MAX_STAMP else None
    except ValueError:
        stamp = None
    if not isinstance(stamp, dict) or stamp.get("version") != VERSION or not isinstance(stamp.get("repo"), dict):
        return "unreadable", None
    return "found", stamp


def checked(git_dir: Path, at: float | None = None) -> None:
    """Say when this repository's last whole check was: now (`at` None: it was checked at this start, or made
    anew), or the time a matching stamp carried."""
    _checked[str(git_dir.absolute())] = clock.now() if at is None else at


def fresh(stamp: dict[str, Any]) -> float | None:
    """The time of the whole check a stamp descends from, while it is recent enough to go without another
    (TRUSTED_FOR; a time ahead of the clock is not trusted either); None otherwise."""
    at = clock.parse(str(stamp.get("checked_at") or ""))
    if at is None or not clock.now() - TRUSTED_FOR < at <= clock.now() + 60:
        return None
    return at


def matches(stamp: dict[str, Any], repo: GitRepo, head: str | None) -> bool:
    """The repository is exactly as the stamp describes it."""
    try:
        now = fingerprint(repo, head)
    except OSError:
        return False
    return now is not None and json.loads(json.dumps(now)) == stamp["repo"]


def head_of(repo: GitRepo) -> str | None:
    """The branch's commit as its ref says (not peeled: a missing commit is not an empty branch)."""
    return repo.git("rev-parse", "-q", "--verify", repo.ref, check=False).stdout.decode().strip() or None


def still_known(repo: GitRepo) -> bool:
    """For a command that commits without the start-up check (`init`): the stamp taken away before it
    writes; True when the repository is not there yet (the command makes it) or is exactly as the last
    clean stop left it, so that the command's own writes keep it known-good and it may leave a stamp."""
    if not repo.exists():
        checked(repo.git_dir)
        return True
    _found, stamp = take(repo.git_dir)
    at = fresh(stamp) if stamp is not None else None
    if at is None or stamp is None or not matches(stamp, repo, head_of(repo)):
        return False
    checked(repo.git_dir, at)
    return True


def leave(repo: GitRepo) -> bool:
    """Record the repository as this clean stop leaves it (see the module's docstring for when a caller may);
    True when recorded. Never fails a stop: the next start then checks."""
    head = None
    try:
        head = head_of(repo)
        repo_print = fingerprint(repo, head)
        if repo_print is None:
            return False
        at = _checked.get(str(repo.git_dir.absolute()))
        if at is None:  # never checked nor made by this process: nothing to vouch for
            return False
        stamp = {"version": VERSION, "at": clock.iso(clock.now()), "checked_at": clock.iso(at), "repo": repo_print}
        state_dir(repo.git_dir).mkdir(parents=True, exist_ok=True)
        fsio.write_atomic(_path(repo.git_dir), (json.dumps(stamp, sort_keys=True) + "\n").encode())
    except (OSError, CommitterError) as exc:
        log.warning("clean_stop_unrecorded", error=getattr(exc, "message", str(exc)),
                    action="the next start checks the whole repository")
        return False
    log.info("clean_stop_recorded", head=head)
    return True
