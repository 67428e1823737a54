"""A progress bar over files and bytes for a first commit on a terminal (rich, as typer's own output)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from committer.core import progress


class Progress:
    """Counts what the commit step read; redrawn every 256 files."""

    def __init__(self, root: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.root = root
        self._bar: Any = None
        self._task: Any = None
        self._files = 0
        self._bytes = 0

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            total = tree_bytes(self.root)
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                            transient=True, console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("committing", total=total)
        return self

    def advance(self, size: int) -> None:
        self._files += 1
        self._bytes += size
        if self._bar is not None and (self._files & 255 == 0 or self._files == 1):
            self._flush()

    def _flush(self) -> None:
        self._bar.update(self._task, completed=self._bytes, description=f"committing {self._files} files")

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._flush()
            self._bar.stop()


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under root (one lstat each), the progress bar's total."""
    size, stack = 0, [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            size += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return size


class StepBar:
    """Steps of long work (git's own progress of a network call: objects counted, compressed, written or
    received, and bytes; files read or written) as a bar on a terminal, one phase after another, from the
    first step on (quick work shows none); off the terminal, nothing. `step` may be called from another
    thread (the one reading git's stderr)."""

    def __init__(self, enabled: bool, what: str) -> None:
        self.enabled = enabled
        self.what = what  # "pushing", "pulling"
        self._bar: Any = None
        self._task: Any = None
        self._phase = ""
        self._lock = threading.Lock()
        self._done = False

    def __enter__(self) -> StepBar:
        return self

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[size]}"), TimeElapsedColumn(),
                        transient=True, console=Console(stderr=True))
        self._bar.start()
        self._task = self._bar.add_task(self.what, total=None, size="")

    def step(self, step: progress.Step) -> None:
        """One step: its phase, how far, and the bytes so far."""
        with self._lock:
            if not self.enabled or self._done:
                return
            if self._bar is None:
                self._start()
            if step.phase != self._phase:
                self._phase = step.phase
                self._bar.reset(self._task, total=step.total, description=f"{self.what}: {step.phase.lower()}")
            self._bar.update(self._task, completed=step.done, total=step.total, size=step.size or "")

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._done = True
            if self._bar is not None:
                self._bar.stop()


@contextlib.contextmanager
def shown_steps(what: str) -> Iterator[None]:
    """While the block runs, the long work it does in this process (git's network calls, a scan, files
    written) is shown as a bar on stderr when it is a terminal; otherwise nothing is added to the output."""
    with StepBar(sys.stderr.isatty(), what) as bar, progress.shown(bar.step if bar.enabled else None):
        yield
