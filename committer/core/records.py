"""Lists of records that move to a temporary file past a size: a change of a million paths stays small
in memory. Records keep the order they were appended in; each is bytes, length-prefixed on disk."""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# Records kept in memory before the list moves to disk (a batch of the watcher never gets there).
IN_MEMORY = 20_000
_LENGTH = struct.Struct(">I")
_BUFFER = 1 << 20


class Spill:
    """An append-only list of bytes records; iterable any number of times, closed when done."""

    def __init__(self, directory: Path, keep: int = IN_MEMORY) -> None:
        self.directory = directory
        self.keep = keep
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
        self._file = tempfile.TemporaryFile(dir=self.directory, prefix="spill-", buffering=_BUFFER)  # noqa: SIM115
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
            chunk = os.pread(fd, _BUFFER, offset)
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


def path_bytes(rel: str) -> bytes:
    """A path as git orders it: its bytes."""
    return os.fsencode(rel)
