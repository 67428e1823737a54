"""The instance lock: an OS file lock held for a daemon's life (or one command's), named by its holder."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from committer.core.errors import LockError
from committer.git.layout import state_dir

LOCK_FILE = "daemon.lock"
DAEMON, COMMAND = "daemon", "command"  # who holds the lock: only a daemon answers requests (SIGUSR1)


def _parse_holder(text: str) -> tuple[int, str]:
    """(pid, role) from the lock file's `<pid> <role>`; a bare pid is a daemon; -1 when unreadable."""
    parts = text.split()
    pid = int(parts[0]) if parts and parts[0].isdigit() else -1
    return pid, parts[1] if len(parts) > 1 else DAEMON


class InstanceLock:
    """An OS file lock held for the daemon's life (or one command's); the kernel drops it when the process dies.

    A command (`role` COMMAND) may `wait` for another command to finish; a daemon never waits.
    """

    def __init__(self, git_dir: Path, role: str = DAEMON, wait: float = 0.0) -> None:
        self.path = state_dir(git_dir) / LOCK_FILE
        self.role = role
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockError naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid, role = _parse_holder(os.pread(fd, 32, 0).decode(errors="replace"))
                if role != DAEMON and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                os.close(fd)
                where = self.path.parent.parent
                shown = str(pid) if pid > 0 else "unknown"
                if role == DAEMON:
                    raise LockError(f"another committer (pid {shown}) is already running on {where}") from None
                raise LockError(f"another committer command (pid {shown}) is working on {where}; "
                                "try again when it has finished") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.role}\n".encode(), 0)
        self._fd = fd

    def still_held(self) -> bool:
        """False when the lock file was removed or replaced under us (the git dir moved or deleted)."""
        if self._fd is None:
            return False
        try:
            mine, there = os.fstat(self._fd), os.stat(self.path)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)

    def release(self) -> None:
        """Give the lock up."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def holder_pid(git_dir: Path) -> int | None:
    """The pid of the daemon holding the repository, or None when no daemon runs (a command may)."""
    path = state_dir(git_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, role = _parse_holder(os.pread(fd, 32, 0).decode(errors="replace"))
            return pid if role == DAEMON else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
