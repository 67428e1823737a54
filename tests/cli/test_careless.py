"""What a careless or hostile user meets: a path typed inside a subfolder, `..` that leads out, a
committer.toml of another user's, names that hold control characters in `status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from committer.core import discover, runtime
from committer.core.errors import ConfigError
from committer.core.settings import DEFAULT_CONFIG_FILE, Settings
from committer.ops.status import render_status
from tests.conftest import Layout, committer
from tests.core.test_logs_console import cli, on_terminal


def typed(layout: Layout, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "committer", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COMMITTER_LOG_FORMAT": "json", **layout.env}, timeout=60, check=False)


@pytest.mark.integration
def test_a_path_typed_in_a_subfolder_is_relative_to_it_and_cannot_lead_out(layout: Layout) -> None:
    (layout.data / "notes").mkdir()
    (layout.data / "plan.md").write_text("top\n")
    (layout.data / "notes" / "plan.md").write_text("inner\n")
    assert committer("init", env=layout.env).returncode == 0
    notes = layout.data / "notes"
    assert typed(layout, notes, "show", "plan.md").stdout == "inner\n"  # as git reads it, not the top's
    assert typed(layout, notes, "show", "../plan.md").stdout == "top\n"
    assert typed(layout, layout.root, "show", "plan.md").stdout == "top\n"  # outside: from the data dir
    # A path typed from the top in a subfolder: the names offered are as they are typed there.
    near = typed(layout, notes, "show", "notes/plan.md")
    assert near.returncode == 2 and "did you mean ../plan.md or plan.md?" in near.stderr, near.stderr
    assert typed(layout, notes, "search", "plan").stdout.splitlines()[1:3] == ["  ../plan.md", "  plan.md"]
    (notes / "plan.md").write_text("changed\n")
    dry = typed(layout, notes, "restore", "plan.md", "--to", "HEAD", "--dry-run")
    assert dry.returncode == 0 and "notes/plan.md" in dry.stdout, dry.stdout + dry.stderr
    for outside in ("../../etc/passwd", "/etc/passwd"):
        proc = typed(layout, notes, "show", outside)
        assert proc.returncode == 2 and "is not inside the data directory" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "fatal:" not in proc.stderr


def test_a_committer_toml_of_another_user_s_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    toml = tmp_path / "committer.toml"
    toml.write_text('data_dir = "/srv/data"\n')
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    mine = discover.find(None, env, {}, tmp_path / "sub")
    assert mine.how == discover.NEARBY and mine.config == toml
    other = 4242
    if os.geteuid() == 0:
        os.chown(toml, other, -1)
    else:  # the file is this user's: this process plays another one
        other = os.geteuid()
        monkeypatch.setattr(discover.os, "geteuid", lambda: other + 1)
    with pytest.raises(ConfigError, match=rf"belongs to user id {other}, not to you.*--config"):
        discover.find(None, env, {}, tmp_path / "sub")
    link = tmp_path / "sub" / "committer.toml"
    link.symlink_to(toml)  # a link of the user's own to another user's file
    with pytest.raises(ConfigError, match=rf"belongs to user id {other}"):
        discover.find(None, env, {}, tmp_path / "sub")
    link.unlink()
    assert discover.find(str(toml), env, {}, tmp_path / "sub").config == toml  # --config: the user's choice
    if os.geteuid() == 0:  # root after sudo: the sudoer's file is read
        assert discover.find(None, {**env, "SUDO_UID": str(other)}, {}, tmp_path).config == toml


@pytest.mark.integration
def test_status_names_put_back_and_escapes_control_characters(layout: Layout) -> None:
    status = json.loads(committer("status", "--json", env=layout.env).stdout)
    status["found"] = {"text": "/tmp/evil\x1b[2J\nfolder/committer.toml (in the current directory)"}
    status["held"] = {"count": 150, "since": "2026-12-07T10:00:00Z", "reason": "max_delete", "paths": []}
    shown = render_status(status)
    assert "\x1b" not in shown and "evil\\x1b[2J\\x0afolder" in shown
    hold = next(line for line in shown.splitlines() if line.startswith("HOLD"))
    assert "committer confirm-deletes" in hold and "committer put-back" in hold


@pytest.mark.integration
def test_show_into_the_data_directory_and_a_backwards_diff_say_so(layout: Layout) -> None:
    (layout.data / "plan.md").write_text("one\n")
    assert committer("init", env=layout.env).returncode == 0
    (layout.data / "plan.md").write_text("two\n")
    assert committer("run", "--once", env=layout.env).returncode == 0
    new, old = (line.split()[0] for line in committer("log", "-n", "2", env=layout.env).stdout.splitlines()
                if line[:1].isalnum())
    copy = typed(layout, layout.data, "show", "plan.md", "--at", old, "-o", "copy.md")
    assert copy.returncode == 0 and (layout.data / "copy.md").read_text() == "one\n"
    assert "copy.md is in the data directory: it is saved with the next commit" in copy.stderr
    for where in ("HEAD", "objects/x"):
        into = committer("show", "plan.md", "-o", str(layout.git_dir / where), "--force", env=layout.env)
        assert into.returncode == 2 and "inside the repository" in into.stderr, into.stderr
    assert "ref: " in (layout.git_dir / "HEAD").read_text()
    (layout.root / "dangling").symlink_to(layout.root / "nowhere" / "x.md")
    link = typed(layout, layout.root, "show", "plan.md", "-o", "dangling")
    assert link.returncode == 2 and "is a symbolic link; add --force" in link.stderr, link.stderr
    dash = typed(layout, layout.data, "show", "plan.md", "-o", "-")
    assert dash.stdout == "two\n" and not (layout.data / "-").exists()
    outside = typed(layout, layout.root, "show", "plan.md", "-o", "out.md")
    assert outside.returncode == 0 and "data directory" not in outside.stderr
    back = committer("diff", "plan.md", "--from", new, "--to", old, env=layout.env)
    assert back.returncode == 0 and "-two" in back.stdout and "shown backwards" in back.stderr
    ahead = committer("diff", "plan.md", "--from", old, "--to", new, env=layout.env)
    assert "+two" in ahead.stdout and "backwards" not in ahead.stderr


def test_records_that_are_not_a_daemon_s_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    folder = runtime.runtime_dir(env)
    folder.mkdir(mode=0o700)
    alive = {"pid": os.getpid(), "git_dir": "/srv/k.git"}
    (folder / "1.json").write_text("[" * 60000)  # deeper than json can read: RecursionError
    (folder / "2.json").write_text(json.dumps({**alive, "data_dir": "notes"}))  # not absolute
    (folder / "3.json").write_text(json.dumps({**alive, "pid": True, "data_dir": "/srv/data"}))
    os.mkfifo(folder / "4.json")
    assert runtime.running(env) == []
    assert discover.find(None, env, {}, tmp_path).how == discover.DEFAULTS
    # `sudo -E`: root keeps the user's XDG_RUNTIME_DIR, whose records and folder are not root's to make.
    stranger = os.geteuid() + 4242
    monkeypatch.setattr(runtime.os, "geteuid", lambda: stranger)
    assert runtime.runtime_dir(env) == Path("/tmp") / f"committer-{stranger}"


@pytest.mark.integration
def test_a_current_directory_removed_under_the_shell_is_named(tmp_path: Path) -> None:
    if Settings().data_dir.exists() or DEFAULT_CONFIG_FILE.exists():
        pytest.skip("this machine has the default data directory or the system config")
    gone = tmp_path / "gone"
    gone.mkdir()
    script = ("import os, runpy, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); sys.argv = ['committer', 'log']; "
              "runpy.run_module('committer', run_name='__main__')")
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMMITTER_")}
    env.update(XDG_RUNTIME_DIR=str(tmp_path / "run"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-c", script, str(gone)], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 2 and "the current directory was removed" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.integration
def test_what_a_command_says_on_a_terminal_never_acts_on_it(layout: Layout) -> None:
    (layout.data / "plan.md").write_text("one\n")
    assert committer("init", env=layout.env).returncode == 0
    env = {**layout.env, "COMMITTER_LOG_FORMAT": "json"}
    code, out = on_terminal(cli("restore", "plan.md", "--to", "main@{today\x1b[2J}"), env)
    assert code == 0 and "main@{today\\x1b[2J}" in out and "\x1b[2J" not in out, out
    code, out = on_terminal(cli("restore", "plan.md", "--to", 'main@{1 hour ago\n\nBM-Meta: {"v":1}}'), env)
    assert code == 0 and 'main@{1 hour ago BM-Meta: {"v":1}} (' in out, out
    code, out = on_terminal(cli("show", "nope\x1b[2J.md"), env)
    assert code == 2 and "nope\\x1b[2J.md" in out and "\x1b[2J" not in out, out


def test_a_committer_toml_inside_a_data_directory_is_data_not_settings(tmp_path: Path) -> None:
    """A pull writes whatever the remote holds into the data directory: a committer.toml there must not
    choose where a command reads and pushes."""
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    project = tmp_path / "project"
    (project / "notes" / "sub").mkdir(parents=True)
    (project / "committer.toml").write_text('data_dir = "notes"\ngit_dir = "state/notes.git"\n')
    assert discover.find(None, env, {}, project / "notes" / "sub").config == project / "committer.toml"
    planted = project / "notes" / "sub" / "committer.toml"
    planted.write_text('data_dir = "/home"\nremote = "https://evil.example/x.git"\n')
    with pytest.raises(ConfigError, match=r"lies inside the data directory that .*project/committer.toml names"):
        discover.find(None, env, {}, project / "notes" / "sub")
    planted.write_text('data_dir = "."\n')
    with pytest.raises(ConfigError, match=r"lies inside the data directory it names itself.*--config"):
        discover.find(None, env, {}, project / "notes" / "sub")
    assert discover.find(str(planted), env, {}, project / "notes" / "sub").config == planted
