"""A command typed without --data-dir finds its repository as git does: the running daemon whose data
directory holds the current directory, a committer.toml here or in a parent, the user's config, the only
daemon running as this user; else the defaults, where a data directory that is not there is an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from committer.core import runtime
from committer.core.settings import DEFAULT_CONFIG_FILE, Settings
from tests.conftest import DaemonProcess, Layout, isolated

pytestmark = pytest.mark.integration

UNSET = ("COMMITTER_DATA_DIR", "COMMITTER_GIT_DIR", "COMMITTER_CONFIG")


def typed(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`committer ARGS` typed in `cwd`, told nothing of where the repository is."""
    full = {key: value for key, value in os.environ.items() if key not in UNSET}
    full.update(COMMITTER_LOG_FORMAT="json", **env)
    return subprocess.run([sys.executable, "-m", "committer", *args], cwd=cwd, capture_output=True, text=True,
                          env=full, timeout=60, check=False)


def found(cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = typed(cwd, "status", "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status: dict[str, Any] = json.loads(proc.stdout)
    return status


def no_defaults_here() -> None:
    if Path(str(Settings().data_dir)).exists() or DEFAULT_CONFIG_FILE.exists():
        pytest.skip("this machine has the default data directory or the system config")


def test_inside_a_running_daemon_s_data_directory_and_from_anywhere_when_it_is_the_only_one(
        layout: Layout, start_daemon: Any, tmp_path: Path) -> None:
    (layout.data / "notes" / "2026").mkdir(parents=True)
    (layout.data / "notes" / "2026" / "plan.md").write_text("plan")
    env = isolated(layout.root)
    daemon = start_daemon(env={"COMMITTER_TOKEN": "tok-never-in-the-record-0123"})
    pid = daemon.proc.pid
    [record] = list((layout.root / "run" / "committer").glob("*.json"))
    text = record.read_text()
    assert json.loads(text)["pid"] == pid and "tok-never" not in text and "remote" not in text
    status = found(layout.data, env)
    assert status["found"]["how"] == "daemon_here" and status["found"]["pid"] == pid
    assert status["git_dir"] == str(layout.git_dir) and status["running"] and status["head"]
    below = layout.data / "notes" / "2026"
    human = typed(below, "status", env=env).stdout
    assert human.startswith("found ") and f"running daemon pid {pid} (data dir contains the current" in human
    assert "notes/2026/plan.md" in typed(below, "log", env=env).stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = found(elsewhere, env)
    assert status["found"]["how"] == "only_daemon" and status["found"]["pid"] == pid
    # An explicit place wins over every daemon, as a flag or in the environment.
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    given = typed(layout.data, "status", "--json", "--data-dir", str(other / "data"), "--git-dir",
                  str(other / "git"), env=env)
    assert given.returncode == 1 and json.loads(given.stdout)["found"]["how"] == "given"
    assert "no repository at" in given.stderr
    by_env = typed(layout.data, "status", "--json", env={**env, "COMMITTER_DATA_DIR": str(other / "data"),
                                                          "COMMITTER_GIT_DIR": str(other / "git")})
    assert json.loads(by_env.stdout)["data_dir"] == str(other / "data")
    assert daemon.stop() == 0
    assert not record.exists()  # removed at a clean stop


def test_a_committer_toml_in_a_parent_with_paths_relative_to_its_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "notes" / "journal").mkdir(parents=True)
    (project / "notes" / "journal" / "monday.md").write_text("monday")
    (project / "committer.toml").write_text('data_dir = "notes"\ngit_dir = "state/notes.git"\n')
    env = isolated(tmp_path)
    inside = project / "notes" / "journal"
    made = typed(inside, "init", env=env)
    assert made.returncode == 0, made.stderr
    assert (project / "state" / "notes.git" / "HEAD").is_file()
    status = found(inside, env)
    assert status["found"]["how"] == "committer_toml" and status["found"]["config"] == str(project / "committer.toml")
    assert status["data_dir"] == str(project / "notes") and status["head"]
    assert "committer.toml (in a parent of the current directory)" in typed(inside, "status", env=env).stdout
    assert "monday.md" in typed(project, "log", env=env).stdout


def test_the_user_s_config(tmp_path: Path) -> None:
    env = isolated(tmp_path)
    data, git_dir = tmp_path / "data", tmp_path / "git" / "notes.git"
    data.mkdir()
    (data / "a.md").write_text("a")
    config = tmp_path / "config" / "committer" / "committer.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"data_dir = {json.dumps(str(data))}\ngit_dir = {json.dumps(str(git_dir))}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert typed(elsewhere, "init", env=env).returncode == 0
    status = found(elsewhere, env)
    assert status["found"]["how"] == "user_config" and status["git_dir"] == str(git_dir) and status["head"]


def test_two_daemons_are_not_the_only_one_but_each_is_found_from_inside(tmp_path: Path, layout: Layout) -> None:
    no_defaults_here()
    second = Layout(tmp_path / "second", tmp_path / "second" / "data", tmp_path / "second" / "git" / "k.git")
    second.data.mkdir(parents=True)
    env = isolated(layout.root)
    daemons = [DaemonProcess(item, ["--debounce", "150ms"], env) for item in (layout, second)]
    try:
        for daemon in daemons:
            daemon.wait_ready()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        refused = typed(elsewhere, "log", env=env)
        assert refused.returncode == 2 and "--data-dir" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert found(second.data, env)["found"]["pid"] == daemons[1].proc.pid
        assert found(layout.data, env)["found"]["pid"] == daemons[0].proc.pid
    finally:
        for daemon in daemons:
            daemon.kill()


def test_a_stale_record_is_ignored_and_removed(tmp_path: Path) -> None:
    env = isolated(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    path = runtime.write(data, tmp_path / "git", "main", None, "", env)
    assert path is not None and [item.pid for item in runtime.running(env)] == [os.getpid()]
    record = json.loads(path.read_text())
    dead = path.with_name(f"{gone.stdout.strip()}.json")
    dead.write_text(json.dumps({**record, "pid": int(gone.stdout)}))  # its process is gone
    path.write_text(json.dumps({**record, "proc_start": "1"}))  # this pid, but another program's now
    assert runtime.running(env) == []
    assert not dead.exists() and not path.exists()


def test_without_anything_that_says_where_a_missing_default_data_dir_is_an_error(tmp_path: Path) -> None:
    no_defaults_here()
    env = isolated(tmp_path)
    for command in (["status"], ["snapshot", "--list"]):
        proc = typed(tmp_path, *command, env=env)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and len(err.splitlines()) == 1, (command, proc.stdout, err)
        assert err.startswith("committer: error: data-dir: ") and "--data-dir PATH" in err and not proc.stdout
