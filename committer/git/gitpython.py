"""GitPython's object model (refs, commits, trees) with every git it runs started by the runner: the only
GitPython import.

GitPython starts git itself (`Git.execute`: the user's environment, no session of its own, no deadline
unless asked, and the `cat-file --batch` processes it keeps for reading objects). Here its command
executor is `RunnerGit`, which hands every command to the `GitRunner` instead: the runner's hermetic
environment, a session of its own, the group killed at the deadline or by `GitRunner.terminate`. A process
GitPython keeps (`cat-file --batch`) is one git process like any other: the deadline bounds its whole life.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def _no_git_at_import() -> Iterator[None]:
    """GitPython runs `git version` (twice) when it is imported, outside any runner. Pointed at a program
    that does not exist, with its refresh told to stay quiet, it starts nothing; RunnerGit never uses
    that program (the runner names git itself)."""
    saved = {name: os.environ.get(name) for name in ("GIT_PYTHON_GIT_EXECUTABLE", "GIT_PYTHON_REFRESH")}
    os.environ["GIT_PYTHON_GIT_EXECUTABLE"] = "/nonexistent/committer-runs-git-itself"
    os.environ["GIT_PYTHON_REFRESH"] = "quiet"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


with _no_git_at_import():
    import git
    from git.cmd import Git
    from git.compat import safe_decode
    from git.db import GitCmdObjectDB
    from git.exc import GitCommandError

from committer.core.errors import GitError  # noqa: E402
from committer.git.runner import Processes, git_argv, git_env, kill_group  # noqa: E402

SETTLE = 1.0  # after a failed read, how long a git the runner killed is given to be seen ended
Repo = git.Repo
Commit = git.Commit
__all__ = ["Commit", "GitCommandError", "Repo", "RunnerGit", "opened"]


class _Process(Git.AutoInterrupt):
    """A git process GitPython reads as it runs (a log, a `cat-file --batch` it keeps), started by the
    runner, killed with its group at the deadline; when GitPython lets go of it, it is ended and forgotten."""

    __slots__ = ("expired", "limit", "popen", "runner", "timer")

    def __init__(self, proc: subprocess.Popen[bytes], args: list[str], runner: Processes, limit: float) -> None:
        super().__init__(proc, args)
        self.popen, self.runner, self.limit = proc, runner, limit
        self.expired = threading.Event()
        self.timer = threading.Timer(limit, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self) -> None:
        self.expired.set()
        kill_group(self.popen)

    def failure(self, settle: float = 0.0) -> GitError | None:
        """What ended the process, when the runner did (its deadline, a stop); None otherwise. `settle`:
        how long a process that may just have been killed is given to be seen ended (a reader saw its
        output end before the kernel had reaped it)."""
        code = self.popen.poll()
        if code is None and settle > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.popen.wait(settle)
        if self.expired.is_set():
            return GitError(self.args, -1, f"timed out after {self.limit:g}s")
        if code is not None and code < 0:
            return GitError(self.args, code, f"killed by signal {-code}")
        return None

    def wait(self, stderr: str | bytes | None = b"") -> int:
        """The exit status; GitError when the runner ended it, GitCommandError for any other failure."""
        try:
            return super().wait(stderr)
        except GitCommandError as exc:
            raise (self.failure() or exc) from exc

    def _terminate(self) -> None:
        # GitPython ends a process it lets go of with SIGTERM to git alone; the runner ends the whole group.
        self.timer.cancel()
        if self.proc is not None:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            if self.proc.poll() is None:
                kill_group(self.popen)
        super()._terminate()
        self.runner.forget(self.popen)


class RunnerGit(Git):
    """GitPython's command executor, every command run by `runner` on `git_dir` (its deadline, environment
    and process group); GitPython's own environment and working directory are not used."""

    def __init__(self, runner: Processes, git_dir: Path) -> None:
        super().__init__(None)
        self.runner, self.git_dir = runner, git_dir
        self.processes: list[_Process] = []

    def execute(  # type: ignore[override]
        self,
        command: str | Sequence[Any],
        istream: int | IO[bytes] | None = None,
        with_extended_output: bool = False,
        with_exceptions: bool = True,
        as_process: bool = False,
        output_stream: IO[bytes] | None = None,
        stdout_as_string: bool = True,
        kill_after_timeout: float | None = None,
        with_stdout: bool = True,
        universal_newlines: bool = False,
        shell: bool | None = None,
        env: Mapping[str, str] | None = None,
        strip_newline_in_stdout: bool = True,
        **_ignored: Any,
    ) -> Any:
        """Run one command GitPython built (`[executable, *args]`) through the runner, answering as
        `Git.execute` does."""
        if isinstance(command, str) or shell:
            raise GitError([str(command)], -1, "a git command must be a list of arguments, never a shell line")
        args = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in command[1:]]
        limit = self.runner.timeout if kill_after_timeout is None else kill_after_timeout
        if as_process:
            stdin = subprocess.DEVNULL if istream is None else istream
            proc = self.runner.start(git_argv(self.git_dir, args), git_env(env), stdin)
            process = _Process(proc, args, self.runner, limit)
            self.processes.append(process)
            return process
        data = istream.read() if istream is not None and not isinstance(istream, int) else None
        done = self.runner.run(self.git_dir, args, input=data, env=env, timeout=limit, check=False)
        stdout, stderr = done.stdout, done.stderr.removesuffix(b"\n")
        if strip_newline_in_stdout:
            stdout = stdout.removesuffix(b"\n")
        if with_exceptions and done.returncode != 0:
            raise GitCommandError(args, done.returncode, stderr, stdout)
        result: str | bytes = stdout if with_stdout else b""
        if output_stream is not None:
            output_stream.write(done.stdout)
            result = b""
        elif universal_newlines or stdout_as_string:
            result = safe_decode(result) or ""
        if with_extended_output:
            return done.returncode, result, safe_decode(stderr)
        return result

    def failure(self, settle: float = 0.0) -> GitError | None:
        """The first process of this executor the runner ended (its deadline, a stop), if any."""
        return next((found for process in self.processes if (found := process.failure(settle))), None)

    def close(self) -> None:
        """End every process this executor started and GitPython still holds."""
        self.clear_cache()
        for process in self.processes:
            process._terminate()
        self.processes.clear()


@contextlib.contextmanager
def opened(git_dir: Path, runner: Processes) -> Iterator[git.Repo]:
    """GitPython's view of the repository at `git_dir`, every git it runs started by `runner`. A read the
    runner cut short (the deadline, a stop) raises GitError, whatever GitPython made of the missing output;
    leaving the block ends every git it started."""
    handle = git.Repo(git_dir)
    executor = RunnerGit(runner, git_dir)
    # Repo made its own executor and object database; neither has run anything yet.
    handle.git = executor
    handle.odb = GitCmdObjectDB(os.path.join(handle.common_dir, "objects"), executor)
    try:
        yield handle
    except Exception as exc:
        found = executor.failure(SETTLE)
        if found is not None and found is not exc:
            raise found from exc
        raise
    finally:
        executor.close()
        handle.close()
