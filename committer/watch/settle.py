"""Which changed paths are not ready to be committed yet (pure: fed the watcher's events, no I/O).

A file open for writing may be half-written: a slow writer, `rsync --bwlimit`, Python's
`NamedTemporaryFile` written for seconds before `os.replace`. inotify says when a file is opened and
when it is closed (after writing or not), so a file opened, then written, and not yet closed is
*writing*. A temp-looking name (rsync's `.name.XXXXXX`, Python's `tmpXXXXXXXX`) is *settling* while it
exists: such files are usually renamed away once complete, so they wait for that rename rather than
being committed at the debounce. The batcher keeps a batch that holds such a path open, up to
`max_delay`; then it is committed as it is and the next batch brings the rest.
"""

from __future__ import annotations

import re

# Python's tempfile: "tmp" + 8 characters of [a-z0-9_] (+ the caller's suffix); rsync: "." + the final
# name + "." + 6 characters of [A-Za-z0-9]; `mkstemp(prefix=".name.")`: 8 characters after the prefix.
_TEMP_NAME = re.compile(r"tmp[a-z0-9_]{8}(?:\.[^/]*)?|\..+\.[A-Za-z0-9_]{6,8}")
MOST_TRACKED = 100_000  # open files followed at once; past it (lost closes) the table starts afresh


def looks_temporary(rel: str) -> bool:
    """Whether a path's last component looks like a temp file that its writer will rename away."""
    return _TEMP_NAME.fullmatch(rel.rpartition("/")[2]) is not None


class Settling:
    """Open-for-write counts and temp-looking files, by relative path, from the watcher's events."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}  # path -> opens not yet closed (any mode: inotify does not say)
        self._written: set[str] = set()  # open paths created or modified since they were opened
        self._temps: set[str] = set()  # temp-looking paths that were created and are still there

    def opened(self, rel: str) -> None:
        """IN_OPEN: one more open of the file."""
        if len(self._open) >= MOST_TRACKED and rel not in self._open:
            self.lost()
        self._open[rel] = self._open.get(rel, 0) + 1

    def closed(self, rel: str, wrote: bool = False) -> None:
        """IN_CLOSE_NOWRITE: one open fewer (a close of an open made before the watch started counts for
        nothing). IN_CLOSE_WRITE (`wrote`): the writer is done, whatever the count says. The kernel merges
        identical events that follow each other unread, so two readers' closes (git reading the file while
        a reconcile runs) can arrive as one and leave a count that never comes back to zero; a writer's
        close ends the wait all the same."""
        left = self._open.get(rel, 0) - 1
        if left > 0 and not wrote:
            self._open[rel] = left
        else:
            self._open.pop(rel, None)
            self._written.discard(rel)

    def written(self, rel: str) -> None:
        """The file was created or modified."""
        if rel in self._open:
            self._written.add(rel)
        if looks_temporary(rel) and len(self._temps) < MOST_TRACKED:
            self._temps.add(rel)

    def moved(self, src: str, dest: str) -> None:
        """A rename: what is open under the old name is open under the new one."""
        count = self._open.pop(src, 0)
        if count:
            self._open[dest] = self._open.get(dest, 0) + count
        if src in self._written:
            self._written.discard(src)
            self._written.add(dest)
        self._temps.discard(src)
        if looks_temporary(dest) and len(self._temps) < MOST_TRACKED:
            self._temps.add(dest)
        prefix = src + "/"
        for table in (self._temps, self._written):
            for path in [p for p in table if p.startswith(prefix)]:
                table.discard(path)
                table.add(dest + path[len(src):])
        for path in [p for p in self._open if p.startswith(prefix)]:
            self._open[dest + path[len(src):]] = self._open.pop(path)

    def deleted(self, rel: str) -> None:
        """The path (a file, or a folder and all below it) is gone."""
        prefix = rel + "/"
        for path in [p for p in self._open if p == rel or p.startswith(prefix)]:
            del self._open[path]
        self._written = {p for p in self._written if p in self._open}
        self._temps = {p for p in self._temps if p != rel and not p.startswith(prefix)}

    def lost(self) -> None:
        """Events were lost (a queue overflow): what was known is not any more."""
        self._open.clear()
        self._written.clear()
        self._temps.clear()

    def is_busy(self, rel: str) -> bool:
        """Whether one path is in busy() (without building the set)."""
        return rel in self._written or rel in self._temps

    def busy(self) -> frozenset[str]:
        """The paths a batch should wait for: open and written, or temp-looking and still there."""
        return frozenset(self._written | self._temps)
