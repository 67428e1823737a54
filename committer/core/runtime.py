"""The running daemons' records: one small JSON file per daemon in the user's runtime directory, written
at start and removed at a clean stop, so a command typed without --data-dir finds the daemon it means.

The directory is `$XDG_RUNTIME_DIR/committer/` (when that folder is the user's own: not under `sudo -E`),
else `/run/committer/` for root, else `/tmp/committer-<uid>/` (made mode 0700, used only when it is this
user's own). A record holds the pid,
the paths, the branch, the config file's path, the HTTP address and the start time: no secret, no token,
no remote URL. A record whose process is gone, or whose pid now belongs to another program (its start
time in /proc differs), is stale: it is ignored and removed."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from committer.core import clock
from committer.core.fsio import write_atomic

VERSION = 1


@dataclass(frozen=True)
class Record:
    """One running daemon, as its record says."""

    path: Path  # the record file
    pid: int
    data_dir: Path
    git_dir: Path
    branch: str
    config: Path | None
    http: str | None
    started_at: str

    def contains(self, where: Path) -> bool:
        """Whether `where` (resolved) is the daemon's data directory or lies inside it."""
        return where == self.data_dir or self.data_dir in where.parents


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the records live for this user (see the module's docstring)."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg) and _owner(xdg) in (os.geteuid(), None):
        return Path(xdg) / "committer"  # not another user's (`sudo -E` keeps the user's XDG_RUNTIME_DIR)
    if os.geteuid() == 0:
        return Path("/run/committer")
    return Path("/tmp") / f"committer-{os.geteuid()}"


def _owner(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def _own_dir(path: Path, make: bool) -> bool:
    """The directory is there (made when `make`), a real directory of this user's, not writable by others."""
    if make:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700, parents=True)
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _proc_start(pid: int) -> str | None:
    """The process's start time (clock ticks after boot, /proc/PID/stat's 22nd field); None without it."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: object) -> bool:
    """The process is there and is the one that wrote the record (not a later one given the same pid)."""
    if pid <= 0:
        return False
    if Path("/proc/self/stat").exists():
        now = _proc_start(pid)
        return now is not None and (started is None or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write(data_dir: Path, git_dir: Path, branch: str, config: Path | None, http: str,
          env: Mapping[str, str] | None = None) -> Path | None:
    """Record this process as a daemon (atomically); the record's path, or None when there is no runtime
    directory of this user's to write in (discovery then goes without it)."""
    folder = runtime_dir(env)
    try:
        if not _own_dir(folder, make=True):
            return None
        pid = os.getpid()
        record = {
            "version": VERSION, "pid": pid, "proc_start": _proc_start(pid),
            "data_dir": str(_absolute(data_dir)), "git_dir": str(_absolute(git_dir)), "branch": branch,
            "config": str(_absolute(config)) if config else None, "http": http or None,
            "started_at": clock.iso(clock.now()),
        }
        path = folder / f"{pid}.json"
        write_atomic(path, (json.dumps(record) + "\n").encode(), mode=0o644)
    except OSError:
        return None
    return path


def remove(path: Path | None) -> None:
    """Remove this process's record (a clean stop)."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def running(env: Mapping[str, str] | None = None) -> list[Record]:
    """The records of the daemons running as this user, oldest first; stale ones are removed on the way."""
    folder = runtime_dir(env)
    if not _own_dir(folder, make=False):
        return []
    found = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = folder / name
        record = _read(path)
        if record is None:
            continue
        raw, item = record
        if _alive(item.pid, raw.get("proc_start")):
            found.append(item)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(found, key=lambda item: (item.started_at, item.pid))


def _read(path: Path) -> tuple[dict[str, object], Record] | None:
    """A record as written (a file that is not one of ours is left alone and ignored)."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size > 65536:
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        pid, data_dir, git_dir = raw["pid"], raw["data_dir"], raw["git_dir"]
        if not (type(pid) is int and isinstance(data_dir, str) and isinstance(git_dir, str)
                and os.path.isabs(data_dir) and os.path.isabs(git_dir)):
            return None
        config = raw.get("config")
        return raw, Record(
            path=path, pid=pid, data_dir=Path(data_dir), git_dir=Path(git_dir), branch=str(raw.get("branch") or ""),
            config=Path(config) if isinstance(config, str) and config else None,
            http=str(raw["http"]) if raw.get("http") else None, started_at=str(raw.get("started_at") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _absolute(path: Path) -> Path:
    """A path made absolute and resolved, as `os.getcwd()` gives the current directory."""
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))
