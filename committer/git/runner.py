"""Every git process starts here: one runner, passed in, never a global.

A runner gives git a hermetic environment (C locale, no prompts, no user or system config, no
secrets of committer's own), starts it in a session of its own and kills the whole group (git, its
hooks, filters and helpers) at the deadline. It remembers which thread started which process, so a
stop can cut short exactly what one thread is waiting for. Its `timeout` bounds every local git of
the command or daemon that made it (`git_timeout`); network git passes its own deadline.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from committer.core.errors import GitError

# git prints some paths relative to its working directory when that lies inside the work tree.
_NEUTRAL_CWD = "/"
_STRIPPED_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG_PARAMETERS",
)
# committer's own secrets never reach git, its hooks or its filters (network git gets credentials its way).
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")
DEFAULT_TIMEOUT = 300.0
# Every process group started here that has not been seen to finish, whichever runner started it: what a
# command stopped by a signal must end before it exits (they run in sessions of their own, so the signal
# that stops committer never reaches them).
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def clean_env() -> dict[str, str]:
    """The daemon's environment without committer's own secrets (COMMITTER_*TOKEN, *SECRET, ...)."""
    return {k: v for k, v in os.environ.items() if not _secret(k)}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git process gets: C locale, no prompts, no user or system config."""
    env = {k: v for k, v in clean_env().items() if k not in _STRIPPED_ENV}
    env.update(
        LC_ALL="C",
        LANGUAGE="C",
        GIT_TERMINAL_PROMPT="0",
        GIT_LITERAL_PATHSPECS="1",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="safe.directory",
        GIT_CONFIG_VALUE_0="*",
    )
    if extra:
        env.update(extra)
    return env


def _secret(name: str) -> bool:
    return name.startswith("COMMITTER_") and any(word in name for word in _SECRET_WORDS)


def git_argv(git_dir: Path, args: Sequence[str], work_tree: Path | None = None) -> list[str]:
    """The argument list for one git command on a repository."""
    argv = ["git", "-c", "safe.directory=*", f"--git-dir={git_dir}"]
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    argv.extend(args)
    return argv


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill git and whatever it started (a hook, a filter, a helper holding its pipes open)."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()


def kill_all() -> None:
    """Kill every process group this process started and has not seen finish (git, its helpers, hooks).
    Safe in a signal handler: no lock is taken."""
    for proc in tuple(_LIVE.values()):
        kill_group(proc)


def drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """After a kill: collect what is left, but never wait long for pipes a stray child holds."""
    try:
        return proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        proc.wait(timeout=5)
        return b"", b""


def start_child(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a long-running child of committer's own (the fleet's worker and scheduler under `fleet up`): a
    session of its own, output shared with ours, remembered until `forget_child` so a stopped command ends it."""
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    _LIVE[proc.pid] = proc
    return proc


def forget_child(proc: subprocess.Popen[bytes]) -> None:
    _LIVE.pop(proc.pid, None)


class Processes(Protocol):
    """What a git executor other than committer's own (GitPython's) needs from a runner: start a process
    (and forget it once ended), or run one to completion, within `timeout`. GitRunner is the one in use."""

    timeout: float

    def start(
        self, argv: list[str], env: dict[str, str], stdin: int | IO[bytes] | None, network: bool = False
    ) -> subprocess.Popen[bytes]: ...

    def forget(self, proc: subprocess.Popen[bytes]) -> None: ...

    def run(
        self, git_dir: Path, args: Sequence[str], *, work_tree: Path | None = None, input: bytes | None = None,
        env: Mapping[str, str] | None = None, timeout: float | None = None, check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]: ...


class GitRunner:
    """Starts, times and kills git processes; one per command or daemon, shared by all its parts."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._running: dict[subprocess.Popen[bytes], tuple[int | None, bool]] = {}

    def start(
        self, argv: list[str], env: dict[str, str], stdin: int | IO[bytes] | None, network: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start one git process in a session of its own, remembered until `forget`; `network`: it talks to
        the remote (a stop lets such a call finish its own, bounded, attempt unless told otherwise)."""
        try:
            proc = subprocess.Popen(
                argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=_NEUTRAL_CWD,
                start_new_session=True,
            )
        except OSError as exc:
            raise GitError(argv[4:], -1, str(exc)) from exc
        self._running[proc] = (threading.get_ident(), network)
        _LIVE[proc.pid] = proc
        return proc

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop remembering a process that ended (or that its owner ends itself)."""
        self._running.pop(proc, None)
        _LIVE.pop(proc.pid, None)

    def adopt(self, proc: subprocess.Popen[bytes]) -> None:
        """Remember again a process forgotten while it waited for its work (a fast-import started ahead, which
        a stop need not kill: it ends by itself when its input closes), now that the work begins."""
        self._running[proc] = (threading.get_ident(), False)
        _LIVE[proc.pid] = proc

    def deadline(self, proc: subprocess.Popen[bytes], seconds: float | None = None) -> threading.Timer:
        """A started timer that kills the process group at the deadline (cancel it when done)."""
        timer = threading.Timer(self.timeout if seconds is None else seconds, kill_group, args=(proc,))
        timer.daemon = True
        timer.start()
        return timer

    def terminate(self, thread: int | None = None, network: bool = False) -> None:
        """Kill the local git processes one thread started (the main thread's by default), with their
        children; with `network`, its calls to the remote too. Safe in a signal handler: no lock is taken."""
        owner = threading.main_thread().ident if thread is None else thread
        for proc, (started_by, talks) in tuple(self._running.items()):
            if started_by == owner and (network or not talks):
                kill_group(proc)

    def run(
        self,
        git_dir: Path,
        args: Sequence[str],
        *,
        work_tree: Path | None = None,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one git command to completion within its deadline."""
        argv = git_argv(git_dir, args, work_tree)
        limit = self.timeout if timeout is None else timeout
        proc = self.start(argv, git_env(env), subprocess.PIPE if input is not None else subprocess.DEVNULL)
        try:
            stdout, stderr = proc.communicate(input, timeout=limit)
        except subprocess.TimeoutExpired as exc:
            kill_group(proc)
            drain(proc)
            raise GitError(argv[4:], -1, f"timed out after {limit:g}s") from exc
        finally:
            self.forget(proc)
        if proc.returncode < 0:
            raise GitError(argv[4:], proc.returncode, f"killed by signal {-proc.returncode}")
        if check and proc.returncode != 0:
            raise GitError(argv[4:], proc.returncode, stderr.decode("utf-8", "replace"))
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    @contextlib.contextmanager
    def stream(self, git_dir: Path, args: Sequence[str], work_tree: Path | None = None,
               seconds: float | None = None) -> Iterator[Iterator[bytes]]:
        """The NUL-separated records a git command prints, read as it prints them, within the deadline (the
        runner's, or `seconds`); leaving early kills it. A failure is raised when the block ends."""
        argv = git_argv(git_dir, args, work_tree)
        proc = self.start(argv, git_env(), subprocess.DEVNULL)
        timer = self.deadline(proc, seconds)
        finished = False

        def records() -> Iterator[bytes]:
            nonlocal finished
            assert proc.stdout is not None
            rest = b""
            while chunk := proc.stdout.read1(1 << 16):  # type: ignore[attr-defined]
                parts = (rest + chunk).split(b"\0")
                rest = parts.pop()
                yield from parts
            if rest:
                yield rest
            finished = True

        try:
            yield records()
        finally:
            timer.cancel()
            if not finished:
                kill_group(proc)
            stderr = drain(proc)[1]
            self.forget(proc)
        if finished and proc.returncode != 0:
            raise GitError(argv[4:], proc.returncode, stderr.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Finished:
    """How a program run by `run_capped` ended: its exit code (None when killed at the deadline), the end of
    its stderr, and how long it ran."""

    returncode: int | None
    stderr: bytes
    seconds: float


def run_capped(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], input: bytes, timeout: float, keep: int = 4096,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Finished:
    """Run a program that is not git (a hook) in a session of its own: `input` on its stdin, its stdout
    thrown away, the last `keep` bytes of its stderr kept (a flood costs no memory), its whole group killed
    at the deadline. `started` is given the process (to kill it from another thread). OSError when it
    cannot start. Returns once the program itself exits; whatever it left running in its group is killed then."""
    begun = time.monotonic()
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=cwd, env=dict(env), start_new_session=True)
    _LIVE[proc.pid] = proc
    try:
        return _capped(proc, begun, input, timeout, keep, started)
    finally:
        _LIVE.pop(proc.pid, None)


def _capped(proc: subprocess.Popen[bytes], begun: float, input: bytes, timeout: float, keep: int,
            started: Callable[[subprocess.Popen[bytes]], None] | None) -> Finished:
    if started is not None:
        started(proc)
    assert proc.stdin is not None and proc.stderr is not None
    stdin, stderr = proc.stdin.fileno(), proc.stderr.fileno()
    os.set_blocking(stdin, False)
    os.set_blocking(stderr, False)
    tail, rest, exited = b"", memoryview(input), False
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # an old kernel: look at the process every 50 ms instead
        pidfd = None
    with selectors.DefaultSelector() as selector:
        selector.register(stderr, selectors.EVENT_READ)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ)
        if rest:
            selector.register(stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        while not exited and (left := begun + timeout - time.monotonic()) > 0:
            for key, _mask in selector.select(left if pidfd is not None else min(left, 0.05)):
                if key.fd == stdin:
                    try:
                        rest = rest[os.write(stdin, rest[: 1 << 16]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        rest = memoryview(b"")
                    if not rest:  # all written, or the program does not read it
                        selector.unregister(stdin)
                        proc.stdin.close()
                elif key.fd == stderr:
                    tail = _read_tail(stderr, tail, keep, selector)
            exited = _exited(proc)
    if pidfd is not None:
        os.close(pidfd)
    # Whether it exited or overran, nothing it started stays behind (`sleep 777 &`): its group is ended
    # while the program is not yet reaped, so the group id cannot belong to anyone else.
    kill_group(proc)
    proc.wait()
    with contextlib.suppress(OSError):
        tail = _read_tail(stderr, tail, keep, None)  # what it wrote just before it ended
    for stream in (proc.stdin, proc.stderr):
        with contextlib.suppress(OSError):
            stream.close()
    return Finished(proc.returncode if exited else None, tail, time.monotonic() - begun)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the program ended, without reaping it (its pid, and so its group id, stay reserved)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already (by `poll` elsewhere)
        return True


def _read_tail(fd: int, tail: bytes, keep: int, selector: selectors.BaseSelector | None) -> bytes:
    """Read what the pipe holds now, keeping the last `keep` bytes; at its end, stop watching it."""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return tail
        if not chunk:
            if selector is not None and fd in selector.get_map():
                selector.unregister(fd)
            return tail
        tail = (tail + chunk)[-keep:]
