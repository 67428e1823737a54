"""Fixtures: real directories, real git, and the daemon as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Tools CI always has: a test skipped for want of one of them is a test that never ran. Their skip reasons
# name the tool (`git-lfs is not installed`, `browser tests (Chromium): ...`, `podman: ...`).
REQUIRED_TOOLS = re.compile(r"git-lfs|chromium|podman|tini|rsync|rclone", re.IGNORECASE)
_MISSING = pytest.StashKey[list[str]]()  # "test id: reason" of each such skip, for the summary


def _requires_all(config: pytest.Config) -> bool:
    """CI (or COMMITTER_REQUIRE_ALL): no test may be skipped for want of a required tool."""
    return bool(os.environ.get("CI") or os.environ.get("COMMITTER_REQUIRE_ALL")) and not hasattr(
        config, "workerinput")  # under xdist, the controller sees every worker's skips


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when CI skipped a test for want of a required tool (the lines come in the summary)."""
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not _requires_all(config) or reporter is None:
        return
    missing = [f"{report.nodeid}: {_skip_reason(report)}" for report in reporter.stats.get("skipped", [])
               if REQUIRED_TOOLS.search(_skip_reason(report))]
    config.stash[_MISSING] = missing
    if missing and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line for each test skipped for want of a required tool, when that fails the run."""
    for line in config.stash.get(_MISSING, []):
        terminalreporter.write_line(f"SKIPPED BUT REQUIRED {line}", red=True, bold=True)



def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval: float = 0.02
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def finishes(call: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run `call` on a thread and return its result; fail if it is still running after `timeout` seconds.
    For "this returns instead of waiting out X": give a timeout far below X, far above the normal case."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"test-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{what} still running after {timeout}s")
    if errors:
        raise errors[0]
    return result[0]


def worker_threads() -> set[threading.Thread]:
    """committer's own threads alive now (each worker names its thread committer-...)."""
    return {t for t in threading.enumerate() if t.name.startswith("committer-") and t.is_alive()}


def git(git_dir: Path, *args: str, check: bool = True) -> str:
    """Run git against the repository under test and return its stdout."""
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def tree_files(git_dir: Path, rev: str = "HEAD") -> set[str]:
    """Every path in a commit's tree (empty set before the first commit)."""
    out = subprocess.run(
        ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "-z", "--name-only", rev],
        capture_output=True, check=False,
    ).stdout
    return {os.fsdecode(p) for p in out.split(b"\0") if p}


def commit_count(git_dir: Path) -> int:
    out = git(git_dir, "rev-list", "--count", "HEAD", check=False).strip()
    return int(out) if out.isdigit() else 0


def show(git_dir: Path, path: str, rev: str = "HEAD") -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "blob", f"{rev}:{path}"],
        capture_output=True, check=True,
    ).stdout


# Where the CLI and the daemon look for running daemons' records and the user's config: nowhere, unless a
# test gives its own folders (`layout.env` does), so no test sees another's daemons or the machine's.
ISOLATED = {"XDG_RUNTIME_DIR": os.devnull, "XDG_CONFIG_HOME": os.devnull}


def isolated(root: Path) -> dict[str, str]:
    """A runtime folder and a user config folder of a test's own, under `root`."""
    return {"XDG_RUNTIME_DIR": str(root / "run"), "XDG_CONFIG_HOME": str(root / "config")}


def committer(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a process, the way users do."""
    full_env = {**os.environ, **ISOLATED, **(env or {})}
    full_env.setdefault("COMMITTER_LOG_FORMAT", "json")
    return subprocess.run(
        [*prefix, sys.executable, "-m", "committer", *args],
        capture_output=True, text=True, env=full_env, timeout=timeout, check=False,
    )


@dataclass
class Layout:
    """A data directory and a git directory side by side in a temporary folder."""

    root: Path
    data: Path
    git_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def args(self) -> list[str]:
        return ["--data-dir", str(self.data), "--git-dir", str(self.git_dir)]


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """An empty bare repository standing in for the remote (file://)."""
    path = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


@pytest.fixture(params=["git status", "walk"])
def reconcile_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the reconcile finds stale paths: `git status` (smaller trees) and committer's own walk
    over the index's stat data (larger ones), whatever the test tree's size."""
    from committer.commit import committer as module

    monkeypatch.setattr(module, "STATUS_BELOW", 10**9 if request.param == "git status" else 0)
    return str(request.param)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    data = tmp_path / "data"
    data.mkdir()
    env = {"COMMITTER_DATA_DIR": str(data), "COMMITTER_GIT_DIR": str(tmp_path / "git" / "knowledge.git"),
           **isolated(tmp_path)}
    return Layout(tmp_path, data, tmp_path / "git" / "knowledge.git", env)


class DaemonProcess:
    """`committer run` as a child process with its JSON log captured to a file."""

    def __init__(self, layout: Layout, extra: list[str], env: dict[str, str] | None,
                 prefix: tuple[str, ...] = ()) -> None:
        self.layout = layout
        self.log_path = layout.root / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, **isolated(layout.root), "COMMITTER_LOG_FORMAT": "json", **(env or {})}
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "committer", "run", *layout.args(), *extra],
            stdout=self._log, stderr=subprocess.STDOUT, env=full_env,
        )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def wait_event(self, name: str, timeout: float = 15.0, count: int = 1,
                   where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        def ready() -> list[dict[str, Any]] | None:
            if self.proc.poll() is not None and len(self._matching(name, where)) < count:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.output()}")
            found = self._matching(name, where)
            return found if len(found) >= count else None

        return wait_for(ready, timeout, f"{count} {name} event(s)")  # type: ignore[no-any-return]

    def _matching(self, name: str, where: Callable[[dict[str, Any]], bool] | None) -> list[dict[str, Any]]:
        return [e for e in self.events(name) if where is None or where(e)]

    def wait_ready(self) -> None:
        self.wait_event("daemon_ready", timeout=30)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


class SentEvents:
    """The events out of a daemon as a receiver gets them: an exec hook (`env()`) appends each to a file.
    The courier sends them in order, so once an event is here every event made before it is too."""

    def __init__(self, root: Path) -> None:
        self.path = root / "events-out.jsonl"
        self.hook = root / "events-hook.py"
        self.hook.write_text("import sys\nwith open(sys.argv[1], 'ab') as out:\n"
                             "    out.write(sys.stdin.buffer.read().strip() + b'\\n')\n")

    def env(self) -> dict[str, str]:
        """The daemon's settings for the hook."""
        return {"COMMITTER_EXEC_HOOK": f"{sys.executable} {self.hook} {self.path}"}

    def __call__(self, name: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        found = [json.loads(line) for line in lines]
        return [e for e in found if name is None or e["event"] == name]

    def wait(self, name: str, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The first `count` events of that name, once they have come."""
        def arrived() -> list[dict[str, Any]] | None:
            found = self(name)
            return found[:count] if len(found) >= count else None

        return wait_for(arrived, timeout, f"{count} {name} event(s) out")  # type: ignore[no-any-return]


@pytest.fixture
def sent_events(layout: Layout) -> SentEvents:
    """What the daemon's events receiver gets; pass `sent_events.env()` to the daemon."""
    return SentEvents(layout.root)


@pytest.fixture
def start_daemon(layout: Layout) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(*extra: str, env: dict[str, str] | None = None, ready: bool = True,
              prefix: tuple[str, ...] = ()) -> DaemonProcess:
        args = list(extra)
        if "--debounce" not in args:
            args += ["--debounce", "150ms"]
        daemon = DaemonProcess(layout, args, env, prefix)
        started.append(daemon)
        if ready:
            daemon.wait_ready()
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
