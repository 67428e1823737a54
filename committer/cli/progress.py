"""A progress bar over files and bytes for a first commit on a terminal (rich, as typer's own output)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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


class GitBar:
    """git's own progress of a network call (objects counted, compressed, written or received, and bytes) as
    a bar on a terminal, one phase after another; off the terminal, nothing. `step` is called from the
    thread reading git's stderr."""

    def __init__(self, enabled: bool, what: str) -> None:
        self.enabled = enabled
        self.what = what  # "pushing", "pulling"
        self._bar: Any = None
        self._task: Any = None
        self._phase = ""

    def __enter__(self) -> GitBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[size]}"), TimeElapsedColumn(),
                            transient=True, console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=None, size="")
        return self

    def step(self, step: Any) -> None:
        """One line of git's progress: a `gitprogress.Step` (phase, done, total, size)."""
        if self._bar is None:
            return
        if step.phase != self._phase:
            self._phase = step.phase
            self._bar.reset(self._task, total=step.total, description=f"{self.what}: {step.phase.lower()}")
        self._bar.update(self._task, completed=step.done, total=step.total, size=step.size or "")

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
