"""The durable outbox: every event kept under the git dir until each receiver (the HTTP endpoint, the exec
hook) has taken it, so a restart or a kill -9 loses none, and none that a receiver acknowledged comes again.

One append-only file, `committer/outbox/events.log`, a line per event: `SEQ ID NAME AT JSON` (tab-separated),
written with one write() and fsynced before `append` returns. Each receiver has a cursor file,
`<receiver>.acked`: the last sequence number it acknowledged, replaced atomically. A line cut short by a
crash (no newline at its end) is dropped when the outbox is opened; a damaged line is skipped and logged.
Once most of the file is lines every receiver has, the rest is copied to a new file (compaction).

Bounded: past `limit` events waiting for one receiver, its oldest are dropped, counted and logged. A write
that fails (a full disk) drops that event for the receivers, counted and logged the same way: the commit
that made it is never held up.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from committer.core import events, fsio, logs
from committer.git.layout import state_dir

log = logs.get(__name__)

LOG = "events.log"
_LINE = re.compile(rb"^(\d+)\t([0-9a-f-]{36})\t([a-z_]+)\t([0-9T:.Z-]+)\t\{")
COMPACT_BYTES = 1 << 20  # dead lines worth a copy of the live ones
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One event in the log: its sequence number, id, name, time, and where its JSON body lies."""

    seq: int
    id: str
    name: str
    at: str
    offset: int  # of the line
    start: int  # of the body within the line
    length: int  # of the line, newline included

    @property
    def body_span(self) -> tuple[int, int]:
        return self.offset + self.start, self.length - self.start - 1


def outbox_dir(git_dir: Path) -> Path:
    return state_dir(git_dir) / "outbox"


def scan(path: Path) -> tuple[list[Entry], int]:
    """The entries of a log file and the length of its whole lines (a cut last line is not counted)."""
    entries: list[Entry] = []
    good = 0
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return entries, 0
    with handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break  # cut short by a crash
            match = _LINE.match(line)
            if match is None or not line.endswith(b"}\n"):
                log.warning("outbox_line_damaged", offset=good, action="skipped")
            else:
                seq, ident, name, at = (g.decode() for g in match.groups())
                entries.append(Entry(int(seq), ident, name, at, good, match.end() - 1, len(line)))
            good += len(line)
    return entries, good


def read_cursor(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def peek(git_dir: Path, receivers: Sequence[str]) -> dict[str, Any]:
    """What waits for the receivers (for `status` from another process): count and the oldest's time."""
    directory = outbox_dir(git_dir)
    entries, _size = scan(directory / LOG)
    acked = [read_cursor(directory / f"{r}.acked") or 0 for r in receivers]
    floor = min(acked, default=0)
    waiting = [e for e in entries if e.seq > floor]
    return {"outbox": len(waiting), "oldest_at": waiting[0].at if waiting else None}


class Outbox:
    """The log, the receivers' cursors, and a condition the receivers wait on (one lock for all of it)."""

    def __init__(self, git_dir: Path, receivers: Sequence[str], limit: int,
                 on_drop: Callable[[str, int], None] | None = None) -> None:
        self.dir = outbox_dir(git_dir)
        self.path = self.dir / LOG
        self.receivers = tuple(receivers)
        self.limit = limit
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._cursor_locks = {r: threading.Lock() for r in self.receivers}
        self._compacting = threading.Lock()
        self._entries: list[Entry] = []
        self._seqs: list[int] = []
        self._acked: dict[str, int] = {}
        self._size = 0
        self._next = 1
        self._fd = -1
        self._closed = False
        self.dropped = 0

    # -- opening -----------------------------------------------------------------------------------

    def open(self) -> None:
        """Read the log (dropping a line cut short by a crash) and the cursors; a receiver seen for the
        first time starts after what is already there."""
        self.dir.mkdir(parents=True, exist_ok=True)
        entries, good = scan(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        size = os.fstat(fd).st_size
        if size > good:
            os.ftruncate(fd, good)
            os.fsync(fd)
            log.warning("outbox_repaired", dropped_bytes=size - good, why="a line cut short by a crash")
        last = entries[-1].seq if entries else 0
        for stale in self.dir.glob("*.acked"):  # a receiver no longer configured starts afresh if it comes back
            if stale.name.removesuffix(".acked") not in self.receivers:
                stale.unlink(missing_ok=True)
        for receiver in self.receivers:
            known = read_cursor(self._cursor(receiver))
            self._acked[receiver] = last if known is None else known
            if known is None:
                self._write_cursor(receiver)
        self._fd, self._size, self._entries = fd, good, entries
        self._seqs = [e.seq for e in entries]
        self._next = max([last, *self._acked.values()]) + 1
        with self._lock:
            self._bound()
        waiting = self.waiting()
        if waiting:
            log.info("outbox_open", waiting=waiting)

    def _cursor(self, receiver: str) -> Path:
        return self.dir / f"{receiver}.acked"

    def _write_cursor(self, receiver: str) -> None:
        with self._cursor_locks[receiver]:  # the newest value wins, whoever writes it
            value = self._acked[receiver]
            try:
                fsio.write_atomic(self._cursor(receiver), f"{value}\n".encode(), 0o600)
            except OSError as exc:
                log.error("outbox_cursor_write_failed", receiver=receiver, error=exc.strerror or str(exc))

    # -- writing -----------------------------------------------------------------------------------

    def append(self, event: events.Event) -> None:
        """Add one event, durably; never raises (a failed write drops the event, logged and counted)."""
        body = events.body(event)
        with self._lock:
            if self._closed:
                return
            seq = self._next
            prefix = f"{seq}\t{event['id']}\t{event['event']}\t{event['at']}\t".encode()
            line = prefix + body + b"\n"
            try:
                if os.write(self._fd, line) != len(line):
                    raise OSError(28, "short write")
                os.fdatasync(self._fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                log.error("outbox_write_failed", what=event["event"], id=event["id"],
                          error=exc.strerror or str(exc), action="the event is lost for the receivers")
                self._dropped(self.receivers, 1)
                return
            self._next += 1
            self._entries.append(Entry(seq, event["id"], event["event"], event["at"], self._size, len(prefix),
                                       len(line)))
            self._seqs.append(seq)
            self._size += len(line)
            self._bound()
            self._ready.notify_all()

    def _bound(self) -> None:
        """Past `limit` events waiting for a receiver, its oldest are dropped (lock held)."""
        for receiver in self.receivers:
            waiting = len(self._seqs) - bisect.bisect_right(self._seqs, self._acked[receiver])
            if waiting > self.limit:
                self._acked[receiver] = self._seqs[len(self._seqs) - self.limit - 1]
                self._write_cursor(receiver)
                log.warning("notify_dropped", receiver=receiver, count=waiting - self.limit, limit=self.limit,
                            why="more events waiting than notify_outbox_max: the oldest are dropped")
                self._dropped((receiver,), waiting - self.limit)

    def _dropped(self, receivers: Sequence[str], count: int) -> None:
        self.dropped += count * len(receivers)
        if self._on_drop is not None:
            for receiver in receivers:
                self._on_drop(receiver, count)

    # -- reading -----------------------------------------------------------------------------------

    def take(self, receiver: str, stopped: Callable[[], bool]) -> tuple[Entry, bytes] | None:
        """The oldest event the receiver has not acknowledged, waiting for one (no timeout: an idle outbox
        wakes nobody); None once closed, or once `stopped()` and nothing is left. `stopped` is called with
        the lock held: it must not call back into the outbox."""
        with self._ready:
            while not self._closed:
                index = bisect.bisect_right(self._seqs, self._acked[receiver])
                if index < len(self._entries):
                    entry = self._entries[index]
                    offset, length = entry.body_span
                    return entry, os.pread(self._fd, length, offset)
                if stopped():
                    return None
                self._ready.wait()
            return None

    def ack(self, receiver: str, seq: int) -> None:
        """The receiver has this event (or it was dropped for it): durably past it."""
        with self._lock:
            if seq <= self._acked[receiver]:
                return
            self._acked[receiver] = seq
        self._write_cursor(receiver)
        self._compact()

    def wake(self) -> None:
        """Wake every receiver waiting in `take` (to see that it is stopped)."""
        with self._ready:
            self._ready.notify_all()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # -- what status shows -------------------------------------------------------------------------

    def waiting(self, receiver: str | None = None) -> int:
        """Events not yet taken by the receiver (by every receiver when None)."""
        with self._lock:
            floor = self._acked[receiver] if receiver else min(self._acked.values(), default=self._next - 1)
            return len(self._seqs) - bisect.bisect_right(self._seqs, floor)

    def oldest_at(self) -> str | None:
        """The time of the oldest event some receiver still waits for."""
        with self._lock:
            floor = min(self._acked.values(), default=self._next - 1)
            index = bisect.bisect_right(self._seqs, floor)
            return self._entries[index].at if index < len(self._entries) else None

    # -- compaction --------------------------------------------------------------------------------

    def _compact(self) -> None:
        """Copy the lines some receiver still wants to a new file once the others make up most of it. The
        copy is made without the lock (the file only grows); only the tail written meanwhile is copied
        under it, so appends wait for a moment at most."""
        if not self._compacting.acquire(blocking=False):
            return
        try:
            with self._lock:
                floor = min(self._acked.values())
                index = bisect.bisect_right(self._seqs, floor)
                start = self._entries[index].offset if index < len(self._entries) else self._size
                end, fd = self._size, self._fd
                if start < max(COMPACT_BYTES, end - start) or self._closed:
                    return
            tmp = self.dir / f".{LOG}.tmp"
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                _copy(fd, out, start, end)
                with self._lock:
                    if self._closed:
                        return
                    _copy(self._fd, out, end, self._size)
                    os.fsync(out)
                    os.replace(tmp, self.path)
                    new = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
                    os.close(self._fd)
                    self._fd = new
                    kept = [e for e in self._entries if e.offset >= start]
                    self._entries = [Entry(e.seq, e.id, e.name, e.at, e.offset - start, e.start, e.length)
                                     for e in kept]
                    self._seqs = [e.seq for e in self._entries]
                    self._size -= start
            except OSError as exc:
                log.warning("outbox_compaction_failed", error=exc.strerror or str(exc), action="tried again later")
            finally:
                os.close(out)
                with contextlib.suppress(OSError):
                    tmp.unlink()
        finally:
            self._compacting.release()


def _copy(src: int, dst: int, start: int, end: int) -> None:
    while start < end:
        chunk = os.pread(src, min(_CHUNK, end - start), start)
        if not chunk:
            raise OSError(5, "the outbox ended early")
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
        start += len(chunk)
