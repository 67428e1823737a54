"""Whether a process group is still at work: the CPU it used and the bytes it read and wrote, from /proc.

A network git call (a first push of a million files, a slow link) may rightly run for a long time, but a
call whose git, pack-objects and remote helper neither compute nor move a byte is waiting on a remote that
stopped answering. `Quiet` tells the two apart, so that such calls are cut off by how long they have been
idle rather than by how long they have run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

# CPU below this much, over a whole quiet window, is a process waking to poll, not work.
_CPU_WORK = 0.1
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Reading:
    """The members of a process group, their CPU seconds and their bytes read and written so far, and what
    each member has written to storage (`write_bytes`: what fills the disk, pipes and sockets not counted)."""

    members: frozenset[int]
    cpu: float
    io: int
    stored: Mapping[int, int] = field(default_factory=dict)


def read_group(pgid: int) -> Reading:
    """What /proc tells of the processes in group `pgid` now (processes it cannot read count for nothing)."""
    members: set[int] = set()
    stored: dict[int, int] = {}
    cpu, io = 0.0, 0
    for pid, fields in _in_group(pgid):
        try:
            members.add(pid)
            cpu += (int(fields[11]) + int(fields[12])) / _TICKS
            with open(f"/proc/{pid}/io", "rb") as fh:
                for line in fh:
                    key, _, value = line.partition(b":")
                    if key in (b"rchar", b"wchar"):
                        io += int(value)
                    elif key == b"write_bytes":
                        stored[pid] = int(value)
        except (OSError, ValueError, IndexError):
            continue
    return Reading(frozenset(members), cpu, io, stored)


def _in_group(pgid: int) -> Iterator[tuple[int, list[bytes]]]:
    """(pid, fields of /proc/<pid>/stat after the command name) of each process of group `pgid` now."""
    group = str(pgid).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == group:
            yield int(name), fields


def alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (one that ended but was not reaped holds nothing open)."""
    return any(fields[0] not in (b"Z", b"X") for _pid, fields in _in_group(pgid))


def wait_ended(pgid: int, timeout: float) -> bool:
    """Wait at most `timeout` seconds for every process of group `pgid` to end (after it was killed)."""
    deadline = time.monotonic() + timeout
    while alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


class Quiet:
    """Tracks one process group: `expired()` once it has done no work for `limit` seconds."""

    def __init__(self, pgid: int, limit: float) -> None:
        self.pgid = pgid
        self.limit = limit
        self._now = time.monotonic
        self._mark = read_group(pgid)
        self._since = self._now()
        self._stored: dict[int, int] = dict(self._mark.stored)
        self.members = self._mark.members  # the processes of the group at the last reading

    @property
    def stored(self) -> int:
        """Bytes the group has written to storage since it started, members that already ended included."""
        return sum(self._stored.values())

    def expired(self) -> bool:
        """Read the group again: new members, bytes moved or real CPU used restart the quiet window."""
        now, reading = self._now(), read_group(self.pgid)
        self.members = reading.members
        for pid, count in reading.stored.items():
            self._stored[pid] = max(count, self._stored.get(pid, 0))
        if (reading.members - self._mark.members or reading.io != self._mark.io
                or reading.cpu - self._mark.cpu >= _CPU_WORK):
            self._mark, self._since = reading, now
        return now - self._since >= self.limit
