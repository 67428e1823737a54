"""GitPython reads history through its object model, but every git it starts is the runner's: the runner's
environment, a session of its own, cut off at the runner's deadline and by `GitRunner.terminate`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import pytest

from committer.core.errors import GitError
from committer.git import gitpython
from committer.git.repo import GitRepo, history
from committer.git.runner import GitRunner, Processes
from tests.conftest import wait_for
from tests.faults.harness import GitWrapper, alive

IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def make_repo(root: Path, commits: int = 3) -> GitRepo:
    """A bare repository with `commits` commits on main, each changing notes.md."""
    repo = GitRepo(root / "r.git", root / "data", "main")
    repo.data_dir.mkdir()
    repo.init()
    base = ["git", f"--git-dir={repo.git_dir}", f"--work-tree={repo.data_dir}"]
    for n in range(commits):
        (repo.data_dir / "notes.md").write_text(f"version {n}\n")
        subprocess.run([*base, "add", "-A"], check=True, env={**os.environ, **IDENTITY})
        subprocess.run([*base, "commit", "-q", "-m", f"save {n}"], check=True, env={**os.environ, **IDENTITY})
    return repo


class RecordingRunner(GitRunner):
    """A runner that remembers every process it starts (a fake plugged into GitPython's executor)."""

    def __init__(self, timeout: float = 60.0) -> None:
        super().__init__(timeout)
        self.started: list[tuple[list[str], subprocess.Popen[bytes]]] = []

    def start(self, argv: list[str], env: dict[str, str], stdin: int | IO[bytes] | None,
              network: bool = False) -> subprocess.Popen[bytes]:
        proc = super().start(argv, env, stdin, network)
        self.started.append((argv, proc))
        return proc


class FakeProcesses:
    """A `Processes` other than GitRunner, plugged into GitPython's executor: it keeps a log of what it is
    asked and has a real runner do it."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.real = GitRunner(timeout)
        self.started: list[tuple[list[str], subprocess.Popen[bytes]]] = []
        self.ran: list[list[str]] = []
        self.forgotten: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str], stdin: int | IO[bytes] | None,
              network: bool = False) -> subprocess.Popen[bytes]:
        proc = self.real.start(argv, env, stdin, network)
        self.started.append((argv, proc))
        return proc

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        self.forgotten.append(proc)
        self.real.forget(proc)

    def run(self, git_dir: Path, args: Sequence[str], *, work_tree: Path | None = None, input: bytes | None = None,
            env: Mapping[str, str] | None = None, timeout: float | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        self.ran.append(list(args))
        return self.real.run(git_dir, args, work_tree=work_tree, input=input, env=env, timeout=timeout, check=check)


def test_gitpython_runs_every_git_through_the_processes_it_is_given(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    fake = FakeProcesses()
    plugged: Processes = fake  # the protocol GitPython's executor asks for, met by a fake
    with gitpython.opened(repo.git_dir, plugged) as handle:
        commits = list(handle.iter_commits(repo.ref, max_count=10))
        assert [str(c.message).strip() for c in commits] == ["save 2", "save 1", "save 0"]
        blob = commits[0].tree / "notes.md"
        assert blob.data_stream.read() == b"version 2\n"
        assert handle.git.rev_parse(repo.ref) == commits[0].hexsha
    assert [args[0] for args in fake.ran] == ["rev-parse"]
    assert {argv[4] for argv, _proc in fake.started} == {"rev-list", "cat-file"}
    assert all(argv[:4] == ["git", "-c", "safe.directory=*", f"--git-dir={repo.git_dir}"]
               for argv, _proc in fake.started)
    # leaving the block ended what GitPython kept running (its `cat-file --batch`), and told the runner so
    assert all(proc.poll() is not None for _argv, proc in fake.started)
    assert {id(p) for _argv, p in fake.started} <= {id(p) for p in fake.forgotten}


def test_history_reads_through_the_repositorys_runner(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.runner = runner = RecordingRunner()
    found = list(history(repo, "notes.md", 2))
    assert [text.strip() for _sha, _epoch, text in found] == ["save 2", "save 1"]
    assert "rev-list" in [argv[4] for argv, _proc in runner.started]


def test_a_git_error_is_gitpythons_own_and_names_the_command(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, commits=1)
    with gitpython.opened(repo.git_dir, GitRunner(60.0)) as handle, pytest.raises(
            gitpython.GitCommandError, match="rev-parse"):
        handle.git.rev_parse("--verify", "no-such-branch")


@pytest.fixture
def hanging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitWrapper:
    """A `git` first on this process's PATH, which the runner's environment passes on: told to, it hangs."""
    wrapper = GitWrapper(tmp_path / "wrapper")
    for name, value in wrapper.env().items():
        monkeypatch.setenv(name, value)
    return wrapper


@pytest.mark.parametrize("sub", ["rev-list", "cat-file"])
def test_a_hanging_git_under_gitpython_is_cut_off_at_the_runners_deadline(
    tmp_path: Path, hanging: GitWrapper, sub: str
) -> None:
    repo = make_repo(tmp_path)
    repo.runner = GitRunner(timeout=1.0)
    hanging.hang(sub)
    with pytest.raises(GitError, match=r"timed out after 1s"):
        list(history(repo, None, 10))
    assert hanging.calls(sub), f"no {sub} was started"
    wait_for(lambda: not any(alive(pid) for pid in hanging.calls(sub)), 10, f"the hung {sub} to be gone")


def test_terminate_ends_a_hanging_gitpython_read_at_once(tmp_path: Path, hanging: GitWrapper) -> None:
    repo = make_repo(tmp_path)
    repo.runner = GitRunner(timeout=3600.0)  # only terminate() can end it
    hanging.hang("cat-file")
    failed: list[BaseException] = []

    def read() -> None:
        try:
            list(history(repo, None, 10))
        except BaseException as exc:  # handed to the test thread
            failed.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: any(alive(pid) for pid in hanging.calls("cat-file")), 10, "a hanging cat-file")
    repo.runner.terminate(reader.ident)
    reader.join(10)
    assert not reader.is_alive()
    assert len(failed) == 1 and isinstance(failed[0], GitError), failed
    assert "killed by signal" in str(failed[0])
    wait_for(lambda: not any(alive(pid) for pid in hanging.calls()), 10, "every wrapped git to be gone")


# Records how each git it runs was started: pid, process group, working directory, the runner's
# environment (GIT_CONFIG_NOSYSTEM) and the arguments.
_WITNESS = r"""#!/bin/sh
pgid=$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f3)
echo "$$ $pgid $PWD ${GIT_CONFIG_NOSYSTEM:-none} $*" >> "$WITNESS_LOG"
exec @REAL_GIT@ "$@"
"""


def _started(tmp_path: Path, repo: GitRepo, script: str) -> list[list[str]]:
    """The gits a Python process running `script` started, one split witness line each."""
    bin_dir = tmp_path / "witness-bin"
    bin_dir.mkdir(exist_ok=True)
    witness = bin_dir / "git"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    witness.write_text(_WITNESS.replace("@REAL_GIT@", real))
    witness.chmod(0o755)
    log = tmp_path / "witness.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "WITNESS_LOG": str(log)}
    env.pop("GIT_PYTHON_GIT_EXECUTABLE", None)
    subprocess.run([sys.executable, "-c", script, str(repo.git_dir), str(repo.data_dir)], cwd=tmp_path, env=env,
                   check=True, timeout=120)
    return [line.split(" ", 4) for line in log.read_text().splitlines()] if log.exists() else []


def _outside_the_runner(started: list[list[str]]) -> list[list[str]]:
    """Gits not started the runner's way: a session of their own, in /, with the runner's environment."""
    return [s for s in started if s[0] != s[1] or s[2] != "/" or s[3] != "1" or "--git-dir=" not in s[4]]


def test_no_git_starts_outside_the_runner_not_even_when_gitpython_is_imported(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    started = _started(tmp_path, repo, (
        "import sys\nfrom pathlib import Path\nfrom committer.git.repo import GitRepo, history\n"
        "repo = GitRepo(Path(sys.argv[1]), Path(sys.argv[2]), 'main')\n"
        "assert len(list(history(repo, None, 10))) == 3\n"))
    assert any("rev-list" in s[4] for s in started) and any("cat-file" in s[4] for s in started), started
    assert _outside_the_runner(started) == []


def test_the_witness_sees_gitpython_bypass_the_runner(tmp_path: Path) -> None:
    """The check above is not blind: GitPython left to start git itself is caught."""
    repo = make_repo(tmp_path)
    started = _started(tmp_path, repo, "import sys, git\ngit.Repo(sys.argv[1]).git.rev_list('main')\n")
    assert _outside_the_runner(started), started
