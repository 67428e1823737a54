"""git's own progress on a network call (`--progress`: objects counted, compressed, written or received, and
bytes), read from its stderr as it comes and handed on a step at a time; the rest of stderr (its other
lines) is kept for the error messages as before."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading

from committer.core.progress import OnStep, Step

# "Writing objects:  42% (420/1000), 1.20 MiB | 2.00 MiB/s", "Enumerating objects: 1234, done.",
# "remote: Counting objects: 100% (3/3), done."
_LINE = re.compile(
    r"^(?:remote: )?(?P<phase>[A-Z][a-z]+(?: [a-z]+)*(?: objects| deltas)?): +"
    r"(?:(?P<percent>\d+)% \((?P<done>\d+)/(?P<total>\d+)\)|(?P<count>\d+))"
    r"(?:, (?P<size>[\d.]+ [KMGT]?i?B))?")
# What git says besides the counts when it shows progress: nothing an error message needs.
_COUNTS = re.compile(rb"^(?:remote: )?(?:Delta compression using up to \d+ threads|Total \d+ \(delta \d+\))")
_KEPT = 1 << 20  # only the last MiB of stderr's other lines is kept, as a capture


def parse(line: str) -> Step | None:
    """The step a line of git's progress output tells; None for any other line."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    if match["count"] is not None:
        return Step(match["phase"], int(match["count"]), None, match["size"])
    return Step(match["phase"], int(match["done"]), int(match["total"]), match["size"])


class Tee:
    """Reads a child's stderr on a thread of its own: every progress line goes to `on_step`, the text is
    kept for `text()`. It takes `proc.stderr` over, so `communicate()` leaves it alone."""

    def __init__(self, proc: subprocess.Popen[bytes], on_step: OnStep) -> None:
        assert proc.stderr is not None
        self._pipe = proc.stderr
        proc.stderr = None
        self._on_step = on_step
        self._kept = bytearray()
        self._thread = threading.Thread(target=self._run, name="git-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = b""
        fd = self._pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for raw in lines:
                self._line(raw)
        if pending:
            self._line(pending)
        self._pipe.close()

    def _line(self, raw: bytes) -> None:
        """A progress line goes to `on_step` only: an error message made of stderr names what went wrong,
        not every percent git counted on the way (a push refused by a hook said "Counting objects: 1% ...")."""
        step = parse(raw.decode("utf-8", "replace"))
        if step is None:
            if raw.strip() and not _COUNTS.match(raw):
                self._kept += raw + b"\n"
                del self._kept[:-_KEPT]
            return
        with contextlib.suppress(Exception):  # a broken display must not lose git's stderr
            self._on_step(step)

    def text(self, timeout: float = 5.0) -> bytes:
        """All of stderr (its last MiB) once git closed it (or `timeout` seconds, a stray child holding it)."""
        self._thread.join(timeout)
        return bytes(self._kept)
