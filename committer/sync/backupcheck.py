"""Proof that the remote copy can be restored (`committer verify`, and the daemon every `verify_interval`).

The remote's branch is fetched, with its whole history, into a temporary bare repository outside the data
directory (never into ours: what is proved is what a fresh clone would get), with the credentials of a push
(in the git process's environment only). Then:

1. `git fsck --full` on it: every object is there, readable, and hashes to its name;
2. the commit last pushed from here (the private pushed ref) is on the remote's branch and has exactly the
   tree we pushed (a branch force-pushed to other content is `rewritten`);
3. every LFS object the history points to is downloaded from the remote's LFS storage into the temporary
   repository, and its size and sha256 are checked.

The temporary repository is removed whatever happens. Pure of the daemon: one function in, one `Verified`
out; the record of the last one is kept in `<git_dir>/committer/verify.json` for status and the pages.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from committer.core import clock, fsio, logs
from committer.core.errors import CommitterError, redact
from committer.core.paths import display_path
from committer.core.settings import Settings
from committer.git import lfs
from committer.git.layout import state_dir
from committer.git.repo import GitRepo
from committer.sync import verify as remote_check
from committer.sync.errors import PushError
from committer.sync.refs import pushed_ref
from committer.sync.transport import Remote, raise_for

log = logs.get(__name__)

RECORD = "verify.json"
# Why a verify failed: the label of `committer_backup_verify_failures_total` and the `reason` of the event.
REASONS = ("nothing_pushed", "unreachable", "auth", "not_found", "fetch_failed", "objects_missing", "fsck",
           "branch_missing", "rewritten", "tree_mismatch", "lfs_unavailable", "lfs_missing", "lfs_corrupt")
SHOWN = 5  # objects or lines named in one message
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Verified:
    """One verify: whether the remote copy proved restorable, why not, and what was checked."""

    ok: bool
    reason: str | None  # one of REASONS when not ok
    message: str
    remote: str  # redacted
    commit: str | None = None  # the commit last pushed from here, checked on the remote
    remote_head: str | None = None
    tree: str | None = None
    objects: int = 0  # git objects fetched and checked by fsck
    lfs_objects: int = 0
    lfs_bytes: int = 0
    seconds: float = 0.0
    at: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The record as status, the event and `verify --json` show it."""
        return asdict(self)


class _Failed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def scratch_dir(settings: Settings) -> Path:
    """Where the temporary repository goes: the system's temporary folder, or beside the git dir when that
    folder lies inside the data directory (nothing is ever written there)."""
    tmp = Path(tempfile.gettempdir()).resolve()
    data = settings.data_dir.resolve()
    return settings.git_dir.resolve().parent if tmp == data or data in tmp.parents else tmp


def verify(settings: Settings, repo: GitRepo, cancelled: Callable[[], bool] | None = None) -> Verified:
    """Fetch the remote into a temporary repository and check it; never raises for what it finds."""
    started = time.monotonic()
    remote = Remote(settings)
    pushed = repo.git("rev-parse", "-q", "--verify", f"{pushed_ref(settings.remote, repo.branch)}^{{commit}}",
                      check=False).stdout.decode().strip() or None
    found: dict[str, Any] = {"commit": pushed}
    try:
        if pushed is None:
            raise _Failed("nothing_pushed", f"nothing was pushed to {remote.shown} from here yet: nothing to verify")
        with tempfile.TemporaryDirectory(prefix="committer-verify-", dir=scratch_dir(settings)) as tmp:
            temp = GitRepo(Path(tmp) / "copy.git", Path(tmp), repo.branch, repo.runner)
            temp.init()
            _check(settings, remote, repo, temp, pushed, found, cancelled)
        message = (f"{remote.shown} holds {pushed[:12]} and its whole history, intact "
                   f"({found.get('lfs_objects', 0)} LFS object(s) downloaded and checked)")
        result = Verified(True, None, message, remote.shown, **found)
    except _Failed as failed:
        result = Verified(False, failed.reason, failed.message, remote.shown, **found)
    except CommitterError as exc:  # a local git that failed or ran out of time
        result = Verified(False, "fetch_failed", redact(exc.message), remote.shown, **found)
    result = _stamped(result, time.monotonic() - started)
    if result.ok:
        log.info("backup_verified", remote=result.remote, commit=result.commit, lfs_objects=result.lfs_objects,
                 seconds=result.seconds)
    else:
        log.error("backup_verify_failed", remote=result.remote, reason=result.reason, message=result.message,
                  commit=result.commit, seconds=result.seconds)
    return result


def _stamped(result: Verified, seconds: float) -> Verified:
    values = result.as_dict()
    values.update(seconds=round(seconds, 3), at=clock.iso(clock.now()))
    return Verified(**values)


def _check(settings: Settings, remote: Remote, repo: GitRepo, temp: GitRepo, pushed: str, found: dict[str, Any],
           cancelled: Callable[[], bool] | None) -> None:
    _fetch(remote, temp, cancelled)
    head = temp.head()
    found["remote_head"] = head
    if head is None:
        raise _Failed("branch_missing", f"the remote has no branch {repo.branch!r}; {pushed[:12]} was pushed there")
    # The fetch already checked every object it received; fsck reads them all again, as a restore would.
    fsck = temp.git("fsck", "--full", "--no-dangling", "--no-progress", check=False, timeout=settings.transfer_timeout)
    if fsck.returncode != 0:
        lines = (fsck.stdout + fsck.stderr).decode("utf-8", "replace").strip().splitlines()
        raise _Failed("fsck", f"git fsck found {len(lines)} problem(s) in the remote's history: "
                              + "; ".join(lines[:SHOWN]))
    count = temp.git("count-objects", "-v").stdout.decode()
    found["objects"] = sum(int(v) for k, _, v in (line.partition(": ") for line in count.splitlines())
                           if k in ("count", "in-pack"))
    if temp.git("merge-base", "--is-ancestor", pushed, head, check=False).returncode != 0:
        raise _Failed("rewritten", f"the remote's {repo.branch} ({head[:12]}) no longer holds {pushed[:12]}, the "
                                   "commit last pushed from here: its history was rewritten or replaced")
    ours = repo.git("rev-parse", f"{pushed}^{{tree}}").stdout.decode().strip()
    theirs = temp.git("rev-parse", f"{pushed}^{{tree}}").stdout.decode().strip()
    found["tree"] = theirs
    if ours != theirs:
        raise _Failed("tree_mismatch", f"{pushed[:12]} on the remote has tree {theirs[:12]}, not {ours[:12]} as pushed")
    _check_lfs(remote, temp, pushed, found, cancelled)


def _fetch(remote: Remote, temp: GitRepo, cancelled: Callable[[], bool] | None) -> None:
    """The remote's branch with every object into the temporary repository; a failure classified."""
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--end-of-options", remote.url,
            f"+{temp.ref}:{temp.ref}"]
    result = remote.run(temp, args, cancelled=cancelled)
    if result.returncode != 0 and "couldn't find remote ref" in result.stderr:
        raise _Failed("branch_missing", f"the remote has no branch {temp.branch!r}")
    try:
        raise_for(result, "verify")
    except PushError as exc:
        if exc.kind in ("auth", "not_found"):
            raise _Failed(exc.kind, exc.detail) from None
        try:  # it answers, but cannot send its history: objects are missing or broken there
            remote_check.remote_branch(remote, temp, cancelled)
        except PushError:
            raise _Failed("unreachable", exc.detail) from None
        raise _Failed("objects_missing", f"the remote answers but cannot send its history: {exc.detail}") from None


def _pointers(temp: GitRepo) -> dict[str, tuple[str, int]]:
    """Blob id -> (LFS oid, size) of every pointer blob the fetched history holds."""
    out = temp.git("cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectsize) %(objectname)")
    small = [sha for kind, size, sha in (line.split(" ") for line in out.stdout.decode().splitlines())
             if kind == "blob" and int(size) < lfs.POINTER_MAX]
    found = {}
    for sha, data in temp.read_blobs(small).items():
        parsed = lfs.parse(data)
        if parsed is not None:
            found[sha] = parsed
    return found


def _check_lfs(remote: Remote, temp: GitRepo, pushed: str, found: dict[str, Any],
               cancelled: Callable[[], bool] | None) -> None:
    pointers = _pointers(temp)
    wanted = {oid: size for oid, size in pointers.values()}
    found["lfs_objects"], found["lfs_bytes"] = len(wanted), sum(wanted.values())
    if not wanted:
        return
    if not lfs.available():
        raise _Failed("lfs_unavailable", f"the history points to {len(wanted)} LFS object(s) and git-lfs is not "
                                         "installed here to download them")
    fetched = remote.run(temp, ["lfs", "fetch", "--all", "--", remote.url, temp.ref], cancelled=cancelled)
    missing, corrupt = [], []
    for oid, size in sorted(wanted.items()):
        seen = _object(temp.git_dir, oid)
        if seen is None:
            missing.append(oid)
        elif seen != (oid, size):
            corrupt.append(oid)
    if missing or corrupt:
        names = _names(temp, pushed, {sha for sha, (oid, _s) in pointers.items() if oid in {*missing, *corrupt}},
                       pointers)
        if missing:
            why = fetched.stderr.strip().splitlines()[-1:] if fetched.returncode != 0 else []
            raise _Failed("lfs_missing", f"{len(missing)} LFS object(s) could not be downloaded from the remote's "
                                         f"storage: {_listed(missing, names)}" + (f" ({why[0]})" if why else ""))
        raise _Failed("lfs_corrupt", f"{len(corrupt)} LFS object(s) came back with another size or sha256: "
                                     f"{_listed(corrupt, names)}")


def _object(git_dir: Path, oid: str) -> tuple[str, int] | None:
    """(sha256, size) of a downloaded LFS object, or None when it is not there."""
    digest, size = hashlib.sha256(), 0
    try:
        with open(lfs.object_path(git_dir, oid), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest(), size


def _names(temp: GitRepo, pushed: str, blobs: set[str], pointers: Mapping[str, tuple[str, int]]) -> dict[str, str]:
    """LFS oid -> a path that pointed to it (for the message), from the history's listing."""
    names: dict[str, str] = {}
    out = temp.git("rev-list", "--objects", pushed).stdout.decode("utf-8", "surrogateescape")
    for line in out.splitlines():
        sha, _, path = line.partition(" ")
        if sha in blobs and path:
            names.setdefault(pointers[sha][0], display_path(path))
    return names


def _listed(oids: list[str], names: Mapping[str, str]) -> str:
    shown = [f"{names.get(oid, 'a file')} (oid {oid[:12]})" for oid in oids[:SHOWN]]
    return ", ".join(shown) + (f" and {len(oids) - SHOWN} more" if len(oids) > SHOWN else "")


# -- the record of the last verify -------------------------------------------------------------------


def save(git_dir: Path, result: Verified) -> None:
    """Keep the last verify for status and the pages, and the last success beside it."""
    previous = last(git_dir) or {}
    record = result.as_dict()
    record["last_ok_at"] = result.at if result.ok else previous.get("last_ok_at")
    directory = state_dir(git_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fsio.write_atomic(directory / RECORD, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())


def last(git_dir: Path) -> dict[str, Any] | None:
    """The last verify's record, or None when there was none (or it cannot be read)."""
    try:
        value = json.loads((state_dir(git_dir) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def verify_interval(settings: Settings) -> float:
    """How often the daemon verifies: `verify_interval`, but never by default for a file:// or path remote
    (a copy on the same machine), unless the setting was given."""
    remote = settings.remote
    local = remote.startswith(("file://", "/")) or os.path.isabs(remote)
    if not remote or (local and settings.source_of("verify_interval") == "default"):
        return 0.0
    return settings.verify_interval


def told(result: Verified, git_dir: Path, emit: Callable[[dict[str, Any]], None]) -> None:
    """After a verify: its record kept, its event made (a failure is a `verify` event with result failed)."""
    from committer.core import events

    save(git_dir, result)
    emit(events.verify(remote=result.remote, ok=result.ok, reason=result.reason, message=result.message,
                       commit=result.commit, remote_head=result.remote_head, lfs_objects=result.lfs_objects,
                       seconds=result.seconds))
