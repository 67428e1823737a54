"""`git fast-import` streams: blobs as they are read, then commits; no index on the hot path."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from committer.core.errors import GitError
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner, drain, git_argv, git_env, kill_group

# fast-import allocates and frees zlib state for every object; with glibc's default trim threshold
# each free hands the heap top back to the kernel and the next object takes it again (two brk calls
# an object: 2.6 of 8 s in a 100k-file import). A larger pad and trim threshold keep the heap.
_FAST_IMPORT_ENV = {"MALLOC_TOP_PAD_": str(16 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


# fast-import deltas each blob only against the previous blob of the stream, an unrelated file in a
# batch: 40 % of its CPU on a backfill for no smaller pack. A repack or a push finds real deltas.
_FAST_IMPORT_DEPTH = "--depth=0"


# Every import keeps its pack, however small. Below `fastimport.unpackLimit` (100 objects by default)
# fast-import ends by starting `git unpack-objects`, which writes the commit's few objects again as loose
# files, each fsynced: a process start and four more fsyncs on the path of a one-file batch (10 of its
# 20 ms). The pack's index is fsynced with it (`pack-metadata`, outside `committed`): a pack whose index a
# power loss emptied would hide the objects the branch names. The packs a stream of commits leaves are
# rolled up by maintenance (daemon/maintenance.py), as the loose objects were.
_FAST_IMPORT_CONFIG = ("-c", "fastimport.unpackLimit=0", "-c", "core.fsync=committed,pack-metadata")


_PIPE_SIZE = 1 << 20

# The first line of every stream: a stream that ends without `done` (committer killed) moves nothing.
_BEGIN = b"feature done\n"

# How long a process started ahead that got no stream is given to exit once its input closes.
_CLOSE_WAIT = 5.0


_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"\\\x7f]')


def quote_path(path: str) -> bytes:
    """A path in fast-import's C-style quoting, which accepts every byte but NUL."""
    raw = os.fsencode(path)
    if _NEEDS_ESCAPE.search(raw) is None:
        return b'"' + raw + b'"'
    out = bytearray(b'"')
    for byte in raw:
        if byte == 0x22:
            out += b'\\"'
        elif byte == 0x5C:
            out += b"\\\\"
        elif byte == 0x0A:
            out += b"\\n"
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


class _Stream:
    """One `git fast-import` process: started on the first write, or ahead of it (`start`); killed at the git
    deadline, which runs from the first write (a process started ahead waits for its stream without one)."""

    def __init__(self, git_dir: Path, options: Sequence[str], runner: GitRunner) -> None:
        self.git_dir = git_dir
        self.options = options
        self.runner = runner
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.monotonic() of the process start
        self.written = False  # the stream has begun (its first line went out)
        self.usage: Usage | None = None  # the last process's CPU and run-queue wait from its stream to its end
        self._begun: Usage | None = None
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        """Start the process now, so its start and its reading of the repository are behind the first write.

        Without `--done`: a process that never gets a stream ends cleanly when its input closes (committer
        gone, even by kill -9), writing nothing and leaving no temporary pack; so a stop does not kill it
        until its stream begins. The stream begins with `feature done`: one cut short moves no reference."""
        if self.proc is not None:
            return
        argv = git_argv(self.git_dir, [*_FAST_IMPORT_CONFIG, "fast-import", "--quiet", _FAST_IMPORT_DEPTH,
                                       *self.options])
        self.proc = self.runner.start(argv, git_env(_FAST_IMPORT_ENV), subprocess.PIPE)
        self.runner.forget(self.proc)  # until its stream begins, a stop need not kill it (see `_stdin`)
        self.started_at, self.written, self._begun = time.monotonic(), False, None
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):  # a deeper pipe lets reading and importing overlap
            fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)

    def _stdin(self) -> IO[bytes]:
        self.start()
        assert self.proc is not None and self.proc.stdin is not None
        if not self.written:
            self.written = True
            self.runner.adopt(self.proc)  # killed from now on at a stop, with the main thread's other git
            self._begun = _schedstat(self.proc.pid)  # what it used before its stream is off the path
            # A hung fast-import would block our writes for ever: the timer kills it at the deadline.
            self._timer = self.runner.deadline(self.proc)
            self.proc.stdin.write(_BEGIN)
        return self.proc.stdin

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        self.runner.forget(proc)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def send(self, *chunks: bytes) -> None:
        try:
            out = self._stdin()
            for chunk in chunks:
                out.write(chunk)
        except (BrokenPipeError, ValueError):
            proc, self.proc = self.proc, None
            stderr = b""
            if proc is not None:
                kill_group(proc)
                _, stderr = drain(proc)
                self._forget(proc)
            detail = stderr.decode("utf-8", "replace").strip() or "killed: timed out, or stopping"
            raise GitError(["fast-import"], -1, detail) from None

    def finish(self) -> bytes:
        """Send `done` and wait: the pack is in place (and a branch moved) only after this."""
        if self.proc is None:
            raise GitError(["fast-import"], -1, "no process to finish: it failed earlier")
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._stdin()
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            proc.stdin.write(b"done\n")
        with contextlib.suppress(BrokenPipeError, ValueError):
            proc.stdin.close()
        # Its messages first (their length is not bounded; its output is a line a commit, far below a
        # pipe's size, so it never blocks on it meanwhile), then its own account, before it is reaped.
        stderr = proc.stderr.read()
        stdout = proc.stdout.read()
        self.usage = _usage(proc.pid, self._begun)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        self.proc = None
        self._forget(proc)
        if proc.returncode < 0:
            raise GitError(["fast-import"], proc.returncode, "killed: timed out or the daemon is stopping")
        if proc.returncode != 0:
            raise GitError(["fast-import"], proc.returncode, stderr.decode("utf-8", "replace"))
        return stdout

    def close(self) -> None:
        """End a process that got no stream: its input closes and it exits, having written nothing."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if self.written:
            self.proc = proc
            self.abort()
            return
        try:
            proc.communicate(timeout=_CLOSE_WAIT)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            kill_group(proc)
            drain(proc)
        self._forget(proc)

    def abort(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            kill_group(proc)
            drain(proc)
            self._forget(proc)


@dataclass(frozen=True)
class Usage:
    """What a process ended having used: CPU (ns) and time runnable but waiting for a CPU another held (ns)."""

    cpu_ns: int
    waited_ns: int


def _usage(pid: int, begun: Usage | None) -> Usage | None:
    """The CPU and run-queue wait of a child that exited and is not reaped yet, since `begun` (Linux's
    schedstat); None where there is none."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except (OSError, AttributeError):
        return None
    end = _schedstat(pid)
    if end is None or begun is None:
        return end
    return Usage(end.cpu_ns - begun.cpu_ns, end.waited_ns - begun.waited_ns)


def _schedstat(pid: int) -> Usage | None:
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as handle:
            cpu, waited, _slices = handle.read().split()
        return Usage(int(cpu), int(waited))
    except (OSError, ValueError):
        return None


class FastImport:
    """One `git fast-import` stream: blobs as they are found, then its commits.

    One process, so a backfill lands in one pack: a push sends it as it is, because git does not
    retry deltas between objects of one pack (a backfill split over two packs by two parallel
    imports pushed in 11 s instead of 3.5 s for 100k files, for half a second less importing).
    """

    def __init__(self, repo: GitRepo) -> None:
        self.git_dir = repo.git_dir
        self._stream = _Stream(repo.git_dir, ["--cat-blob-fd=1"], repo.runner)
        self._marks = 0

    def blob(self, data: bytes) -> str:
        """Send one blob; returns the mark to refer to it in the commit."""
        self._marks += 1
        mark = f":{self._marks}"
        self._stream.send(b"blob\nmark %s\ndata %d\n" % (mark.encode(), len(data)), data, b"\n")
        return mark

    def blob_nomark(self, data: bytes) -> None:
        """Send one blob without a mark: commits name it by its id (no mark table in fast-import)."""
        self._stream.send(b"blob\ndata %d\n" % len(data), data, b"\n")

    def finish_blobs(self) -> None:
        """End a stream that holds blobs only: they are in a pack now, no reference moved."""
        self._stream.finish()

    def write_commit(
        self,
        ref: str,
        parent: str | None,
        identity: tuple[str, str],
        message: str,
        deletes: Sequence[str],
        modifies: Sequence[tuple[str, str, str]],
        when: int | None = None,
    ) -> str:
        """Write one commit on `parent` (a commit id, or the mark of a commit of this stream); its mark."""
        self._marks += 1
        mark = f":{self._marks}"
        stamp = f"{identity[0]} <{identity[1]}> {when or int(time.time())} +0000".encode()
        # Messages show names escaped (core.paths.display_path); a stray surrogate must still never stop a commit.
        body = message.encode("utf-8", "backslashreplace")
        lines = [
            b"commit %s\nmark %s\n" % (ref.encode(), mark.encode()),
            b"author %s\ncommitter %s\n" % (stamp, stamp),
            b"data %d\n%s\n" % (len(body), body),
        ]
        if parent:
            lines.append(b"from %s\n" % parent.encode())
        lines += [b"D %s\n" % quote_path(path) for path in deletes]
        lines += [b"M %s %s %s\n" % (m.encode(), ref_.encode(), quote_path(p)) for m, ref_, p in modifies]
        lines.append(b"\n")
        self._stream.send(b"".join(lines))
        return mark

    def finish(self, mark: str) -> str:
        """End the stream (the branch moves now, not before) and return the id of the commit `mark`."""
        self._stream.send(b"get-mark %s\n" % mark.encode())
        sha = self._stream.finish().decode().strip()
        if len(sha) != 40:
            raise GitError(["fast-import"], 0, f"unexpected answer {sha!r}")
        return sha

    def abort(self) -> None:
        """Drop the stream: without `done`, fast-import updates no reference."""
        self._stream.abort()

    def start(self) -> FastImport:
        """Start the process now, ahead of its stream (which may come much later); returns itself."""
        self._stream.start()
        return self

    def close(self) -> None:
        """End a process started ahead that got no stream (one that did is aborted)."""
        self._stream.close()

    def ready(self, within: float) -> bool:
        """Started ahead less than `within` seconds ago, still running, and nothing written to it yet."""
        stream = self._stream
        return (not stream.written and stream.alive()
                and time.monotonic() - stream.started_at < within)

    @property
    def usage(self) -> Usage | None:
        """The CPU and run-queue wait of the process that last finished (None before, or without /proc)."""
        return self._stream.usage

    @property
    def started(self) -> bool:
        return self._stream.proc is not None
