"""The data directory, checked every few seconds: one that vanished is waited for (and given up on after
missing_data_timeout), one replaced by another (a remount) is watched anew."""

from __future__ import annotations

import os
import time
from pathlib import Path

from committer.core import logs

log = logs.get(__name__)

OK, MISSING, BACK, REPLACED, GONE = "ok", "missing", "back", "replaced", "gone"


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the directory, or None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class DataDirWatch:
    """What became of the data directory since the last check."""

    def __init__(self, path: Path, missing_timeout: float) -> None:
        self.path = path
        self.missing_timeout = missing_timeout
        self.missing = False
        self._since = 0.0
        self._id: tuple[int, int] | None = identity(path)

    def watched(self) -> None:
        """The watcher started on the directory as it is now."""
        self._id = identity(self.path)

    def check(self) -> str:
        """ok, missing (just noticed, or still), gone (missing past the timeout), back, or replaced."""
        current = identity(self.path)
        if current is None:
            if not self.missing:
                self.missing, self._since = True, time.monotonic()
                log.error("data_dir_missing", path=str(self.path), action="nothing is committed until it is back")
            if self.missing_timeout and time.monotonic() - self._since > self.missing_timeout:
                return GONE
            return MISSING
        came_back = self.missing
        if came_back:
            self.missing = False
            log.warning("data_dir_back", path=str(self.path))
        if current != self._id:
            log.warning("data_dir_replaced", path=str(self.path), action="watch anew and reconcile")
            return REPLACED
        return BACK if came_back else OK
