"""git's own progress on a network call (`--progress`: objects counted, compressed, written or received, and
bytes), read from its stderr as it comes and handed on a step at a time; the whole stderr is kept for the
error messages as before."""

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
_KEPT = 1 << 20  # progress text is redrawn with \r: only the last MiB of stderr's text is kept, as a capture


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
            self._kept += chunk
            del self._kept[:-_KEPT]
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for raw in lines:
                step = parse(raw.decode("utf-8", "replace"))
                if step is not None:
                    with contextlib.suppress(Exception):  # a broken display must not lose git's stderr
                        self._on_step(step)
        self._pipe.close()

    def text(self, timeout: float = 5.0) -> bytes:
        """All of stderr (its last MiB) once git closed it (or `timeout` seconds, a stray child holding it)."""
        self._thread.join(timeout)
        return bytes(self._kept)
