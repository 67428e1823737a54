"""How far long work is, for whoever shows it: a step (a phase, how many of how many, bytes so far), and the
one display a foreground command sets for the work it runs in its own process (a bar on a terminal)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One step of long work: the phase ("Writing objects", "Reading files"), how far (`done` of `total`,
    when it is known), and the bytes so far as text ("1.20 MiB")."""

    phase: str
    done: int
    total: int | None = None
    size: str | None = None


OnStep = Callable[[Step], None]
_display: OnStep | None = None


@contextlib.contextmanager
def shown(on_step: OnStep | None) -> Iterator[None]:
    """While the block runs, long work in this process (git's network calls, a scan, a restore) hands its
    steps to `on_step` (None: to nobody)."""
    global _display
    before, _display = _display, on_step
    try:
        yield
    finally:
        _display = before


def display() -> OnStep | None:
    """Who is shown the steps of long work now; None when nobody is (the daemon: it logs instead)."""
    return _display


def size_text(count: int) -> str:
    """Bytes as git writes them: 512 bytes, 1.20 KiB, 3.40 MiB, 1.10 GiB."""
    if count < 1024:
        return f"{count} bytes"
    value, shown = float(count), "bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value, shown = value / 1024, unit
        if value < 1024:
            break
    return f"{value:.2f} {shown}"
