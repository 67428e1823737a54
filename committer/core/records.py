"""Lists of records that move to a temporary file past a size: a change of a million paths stays small
in memory. Records keep the order they were appended in; each is bytes, length-prefixed on disk."""

from __future__ import annotations

import contextlib
import heapq
import os
import struct
import tempfile
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import IO

# Records kept in memory before the list moves to disk (a batch of the watcher never gets there).
IN_MEMORY = 20_000
_LENGTH = struct.Struct(">I")
_BUFFER = 1 << 20


class Spill:
    """An append-only list of bytes records; iterable any number of times, closed when done."""

    def __init__(self, directory: Path, keep: int = IN_MEMORY, read_size: int = _BUFFER) -> None:
        self.directory = directory
        self.keep = keep
        self.read_size = read_size  # bytes read (and buffered for writing) at a time on disk
        self._items: list[bytes] = []
        self._file: IO[bytes] | None = None
        self._count = 0

    def append(self, record: bytes) -> None:
        self._count += 1
        if self._file is None:
            self._items.append(record)
            if len(self._items) > self.keep:
                self._to_disk()
            return
        self._file.write(_LENGTH.pack(len(record)))
        self._file.write(record)

    def _to_disk(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Unlinked at once: a killed process leaves nothing behind.
        self._file = tempfile.TemporaryFile(dir=self.directory, prefix="spill-", buffering=self.read_size)  # noqa: SIM115
        for item in self._items:
            self._file.write(_LENGTH.pack(len(item)))
            self._file.write(item)
        self._items = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[bytes]:
        if self._file is None:
            yield from list(self._items)
            return
        self._file.flush()
        fd, offset, buffer = self._file.fileno(), 0, b""
        while True:  # positional reads: appending after an iteration still goes to the end
            chunk = os.pread(fd, self.read_size, offset)
            if not chunk:
                return
            offset += len(chunk)
            buffer += chunk
            start = 0
            while len(buffer) - start >= _LENGTH.size:
                (size,) = _LENGTH.unpack_from(buffer, start)
                end = start + _LENGTH.size + size
                if end > len(buffer):
                    break
                yield buffer[start + _LENGTH.size : end]
                start = end
            buffer = buffer[start:]

    def close(self) -> None:
        self._items = []
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# Records one run of an external sort holds in memory (about 15 MB of short records), per record kept.
SORT_RUN_FACTOR = 5
_RUN_READ = 64 << 10  # a run's read buffer while runs are merged: 20 runs of a million records, 1.3 MB


def sort(records: Iterable[bytes], directory: Path, keep: int = IN_MEMORY) -> Generator[bytes, None, None]:
    """The records in byte order: sorted in memory when few, else in runs of SORT_RUN_FACTOR * keep,
    each written to an unlinked temporary file, then merged. Reads all of `records` before the first."""
    size = max(1, keep * SORT_RUN_FACTOR)
    runs: list[Spill] = []
    chunk: list[bytes] = []
    try:
        for record in records:
            chunk.append(record)
            if len(chunk) >= size:
                runs.append(_run(chunk, directory))
                chunk = []
        chunk.sort()
        if not runs:
            yield from chunk
            return
        yield from heapq.merge(chunk, *runs)
    finally:
        for run in runs:
            run.close()


def _run(chunk: list[bytes], directory: Path) -> Spill:
    chunk.sort()
    run = Spill(directory, keep=0, read_size=_RUN_READ)
    for record in chunk:
        run.append(record)
    return run


def path_bytes(rel: str) -> bytes:
    """A path as git orders it: its bytes."""
    return os.fsencode(rel)
