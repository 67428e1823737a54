"""The CLI as users run it: init, run --once, status, log, bad input, one daemon per repository."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import Layout, commit_count, committer, git, tree_files

pytestmark = pytest.mark.integration

SPEC_STATUS_KEYS = {
    "data_dir", "git_dir", "branch", "remote", "head", "last_commit_at", "pending_commits",
    "oldest_pending_at", "last_push_at", "last_push_seconds", "consecutive_failures", "last_error",
    "held", "held_files", "running", "pid", "repo_size_bytes", "objects", "last_pull_at", "conflicts", "pull",
    "outbox", "oldest_undelivered_at", "last_delivery_error", "settings", "unwritable_paths", "found", "repository",
    "verified",
}


def read_all(leader: int, follower: int) -> bytes:
    """Everything a finished child wrote to a pty."""
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks)


def one_line_error(proc: object) -> str:
    """Exit code 2, one line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)  # type: ignore[attr-defined]
    err: str = proc.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("committer: error: ")
    return err


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["run", "--debounce", "soon"], {}, "debounce"),
        (["run", "--max-delay", "1s", "--debounce", "5s"], {}, "max-delay"),
        (["run"], {"COMMITTER_OBSERVER": "magic"}, "COMMITTER_OBSERVER"),
        (["run"], {"COMMITTER_POLL_INTERVAL": "-3s"}, "COMMITTER_POLL_INTERVAL"),
        (["status"], {"COMMITTER_BRANCH": "no spaces allowed"}, "COMMITTER_BRANCH"),
        (["init", "--branch", "-bad"], {}, "branch"),
        (["run", "--branch", "HEAD"], {}, "branch"),
        (["run", "--branch", "a..b"], {}, "branch"),
        (["run", "--branch=-x"], {}, "branch"),
        (["init"], {"COMMITTER_BRANCH": "refs/heads/x"}, "give the branch name alone, such as 'x'"),
        (["run", "--branch", "notes.lock"], {}, "branch"),
    ],
)
def test_bad_settings_get_one_line_naming_the_setting(
    layout: Layout, args: list[str], env: dict[str, str], named: str
) -> None:
    proc = committer(*args, env={**layout.env, **env})
    assert named in one_line_error(proc)


@pytest.mark.parametrize("command", [["run", "--once"], ["init"], ["restore", "a.md", "--to", "HEAD"], ["pull"]])
def test_a_git_dir_that_is_a_file_or_someone_elses_folder_is_refused(
    layout: Layout, command: list[str]
) -> None:
    (layout.data / "a.md").write_text("a")
    layout.git_dir.parent.mkdir(parents=True)
    layout.git_dir.write_text("not a folder")
    env = {**layout.env, "COMMITTER_REMOTE": f"file://{layout.root}/remote.git"}
    assert "is a file, not a directory" in one_line_error(committer(*command, env=env))
    layout.git_dir.unlink()
    layout.git_dir.mkdir()
    (layout.git_dir / "thesis.tex").write_text("someone's work")
    assert "is not empty and is not a git repository" in one_line_error(committer(*command, env=env))
    assert sorted(p.name for p in layout.git_dir.iterdir()) == ["thesis.tex"]


def test_switching_branch_on_a_repository_with_history_needs_new_branch(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a")
    assert committer("init", env=layout.env).returncode == 0
    main = git(layout.git_dir, "rev-parse", "main").strip()
    assert "--new-branch" in one_line_error(committer("init", "--branch", "dev", env=layout.env))
    err = one_line_error(committer("run", "--once", "--branch", "dev", env=layout.env))
    assert "keeps its history on 'main'" in err and "--new-branch" in err
    assert git(layout.git_dir, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    (layout.data / "b.md").write_text("b")
    proc = committer("run", "--once", "--branch", "dev", "--new-branch", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert git(layout.git_dir, "rev-parse", "dev~1").strip() == main  # continues from main's head
    assert "b.md" in git(layout.git_dir, "ls-tree", "-r", "--name-only", "dev")
    assert committer("run", "--once", "--branch", "dev", env=layout.env).returncode == 0  # dev is its branch now


def test_config_file_problems_are_one_line(layout: Layout, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("debounce = [\n")
    assert "not valid TOML" in one_line_error(committer("run", "--config", str(bad), env=layout.env))
    assert "does not exist" in one_line_error(
        committer("run", env={**layout.env, "COMMITTER_CONFIG": str(tmp_path / "nope.toml")})
    )
    assert "cannot read" in one_line_error(committer("run", "--config", str(tmp_path), env=layout.env))
    bad.write_text('debounce = "fast"\n')
    assert "debounce" in one_line_error(committer("run", "--config", str(bad), env=layout.env))


def test_missing_data_dir_and_git_dir_inside_it_are_refused(layout: Layout) -> None:
    missing = {**layout.env, "COMMITTER_DATA_DIR": str(layout.root / "not-there")}
    assert "data-dir" in one_line_error(committer("run", env=missing))
    assert "data-dir" in one_line_error(committer("init", env=missing))
    inside = {**layout.env, "COMMITTER_GIT_DIR": str(layout.data / ".repo")}
    assert "git-dir" in one_line_error(committer("run", "--once", env=inside))
    assert not (layout.data / ".repo").exists()


def test_init_commits_what_the_directory_holds(layout: Layout) -> None:
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "a.md").write_text("a")
    (layout.data / "b.md").write_text("b")
    (layout.data / "b.md.swp").write_text("swap")
    proc = committer("init", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert "committed 2 files" in proc.stdout
    assert tree_files(layout.git_dir) == {"notes/a.md", "b.md"}
    assert git(layout.git_dir, "config", "core.bare").strip() == "true"
    assert git(layout.git_dir, "config", "core.fsync").strip() == "committed"
    assert git(layout.git_dir, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(layout.git_dir, "log", "-1", "--format=%an <%ae>").strip() == "committer <committer@localhost>"
    again = committer("init", env=layout.env)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert commit_count(layout.git_dir) == 1


def test_identity_does_not_depend_on_the_users_git_config(layout: Layout, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Somebody Else\n\temail = else@example.com\n")
    (layout.data / "a.md").write_text("a")
    assert committer("init", env={**layout.env, "HOME": str(home)}).returncode == 0
    assert git(layout.git_dir, "log", "-1", "--format=%an").strip() == "committer"


def test_run_once_on_an_empty_volume_creates_the_repository(layout: Layout) -> None:
    proc = committer("run", "--once", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.git_dir / "HEAD").is_file()
    assert commit_count(layout.git_dir) == 0
    (layout.data / "first.md").write_text("hello")
    assert committer("run", "--once", env=layout.env).returncode == 0
    assert tree_files(layout.git_dir) == {"first.md"}
    assert os.listdir(layout.data) == ["first.md"]


def test_status_json_has_every_key_before_and_after_init(layout: Layout) -> None:
    before = json.loads(committer("status", "--json", env=layout.env).stdout)
    assert set(before) == SPEC_STATUS_KEYS
    assert before["head"] is None and before["running"] is False
    (layout.data / "a.md").write_text("a")
    committer("init", env=layout.env)
    after = json.loads(committer("status", "--json", env=layout.env).stdout)
    assert set(after) == SPEC_STATUS_KEYS
    assert after["head"] == git(layout.git_dir, "rev-parse", "HEAD").strip()
    assert after["last_commit_at"].endswith("Z") and after["branch"] == "main"
    assert after["repo_size_bytes"] > 0 and after["objects"] >= 3
    human = committer("status", env=layout.env)
    assert human.returncode == 0 and "not running" in human.stdout and after["head"][:12] in human.stdout


def test_status_redacts_credentials_in_the_remote_url(layout: Layout) -> None:
    env = {**layout.env, "COMMITTER_REMOTE": "https://user:s3cr3t-value@example.com/x.git"}
    out = committer("status", "--json", env=env).stdout
    assert "s3cr3t-value" not in out
    assert json.loads(out)["remote"] == "https://***@example.com/x.git"


def test_log_decodes_trailers_for_the_directory_or_one_path(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a")
    committer("init", env=layout.env)
    (layout.data / "b.md").write_text("b")
    committer("run", "--once", env=layout.env)
    whole = committer("log", env=layout.env)
    assert whole.returncode == 0
    assert whole.stdout.count("chore(sync)") == 2 and "op=init" in whole.stdout
    lines = committer("log", "a.md", "--json", env=layout.env).stdout.splitlines()
    only_a = [json.loads(line) for line in lines]
    assert len(only_a) == 1 and only_a[0]["meta"]["added"] == 1 and only_a[0]["meta"]["op"] == "init"
    absolute = committer("log", str(layout.data / "b.md"), "--json", env=layout.env).stdout.splitlines()
    assert len(absolute) == 1 and json.loads(absolute[0])["meta"]["op"] == "reconcile"
    assert "not inside" in one_line_error(committer("log", "/etc/passwd", env=layout.env))


def test_logs_are_json_lines_off_a_terminal_and_console_on_one(layout: Layout) -> None:
    import pty
    import subprocess
    import sys

    (layout.data / "a.md").write_text("a")
    proc = committer("run", "--once", env={**layout.env, "COMMITTER_LOG_FORMAT": "auto"})
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    commit = next(e for e in events if e["event"] == "git_commit")
    assert commit["level"] == "info" and commit["files"] == 1 and commit["timestamp"].endswith("Z")

    (layout.data / "b.md").write_text("b")
    leader, follower = pty.openpty()
    env = {**os.environ, **layout.env, "COMMITTER_LOG_FORMAT": "auto"}
    child = subprocess.run([sys.executable, "-m", "committer", "run", "--once"], stderr=follower,
                           stdout=subprocess.DEVNULL, env=env, timeout=60, check=False)
    text = read_all(leader, follower).decode(errors="replace")
    assert child.returncode == 0
    assert "saved b.md" in text and not text.lstrip().startswith("{")  # a line for people


def test_init_shows_a_progress_bar_on_a_terminal(layout: Layout) -> None:
    import pty
    import subprocess
    import sys

    for i in range(3000):
        (layout.data / f"f{i:04}.md").write_bytes(os.urandom(512))
    leader, follower = pty.openpty()
    env = {**os.environ, **layout.env, "COMMITTER_LOG_FORMAT": "json", "COLUMNS": "100"}
    child = subprocess.run([sys.executable, "-m", "committer", "init"], stderr=follower,
                           stdout=subprocess.PIPE, env=env, timeout=120, check=False)
    assert child.returncode == 0
    assert b"committing" in read_all(leader, follower)
    assert b"committed 3000 files" in child.stdout


@pytest.mark.parametrize("command", ["init", "run", "status", "log", "push", "pull", "confirm-deletes", "restore",
                                     "snapshot", "doctor", "connect"])
def test_help_of_every_command(command: str) -> None:
    proc = committer(command, "-h")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Usage" in proc.stdout
    assert not re.search(r"<\w+>", proc.stdout), proc.stdout  # every value named: PATH, DURATION, N, not <str>
    assert proc.stdout == committer(command, "--help").stdout


def test_the_app_s_help_lists_whole_summaries_and_it_has_a_version() -> None:
    from committer import __version__

    top = committer("-h")
    assert top.returncode == 0 and "--version" in top.stdout
    listed = top.stdout.split("Commands:", 1)[1]
    assert "…" not in listed and "..." not in listed, listed
    assert "Push unpushed commits and tags now." in " ".join(listed.split())
    version = committer("--version")
    assert version.returncode == 0 and version.stdout == f"committer {__version__}\n"


def test_empty_answers_say_so_and_what_does_not_exist_is_an_error(layout: Layout) -> None:
    nothing = committer("status", env=layout.env)
    assert nothing.returncode == 1 and "no repository yet" in nothing.stdout
    assert nothing.stderr.strip().splitlines() == [
        f"committer: error: no repository at {layout.git_dir}; run `committer init` there, or give --git-dir PATH "
        "(and --data-dir PATH)"]
    assert committer("run", "--once", env=layout.env).returncode == 0  # a repository without a commit
    status = committer("status", env=layout.env)
    assert status.returncode == 0 and re.search(r"^head\s+no commits yet$", status.stdout, re.MULTILINE)
    log = committer("log", env=layout.env)
    assert log.returncode == 0 and log.stdout == "no commits yet\n"
    listed = committer("snapshot", "--list", env=layout.env)
    assert listed.returncode == 0 and listed.stdout.startswith("no snapshots yet")
    assert committer("snapshot", "--list", "--json", env=layout.env).stdout == ""
    (layout.data / "notes").mkdir()
    (layout.data / "notes" / "plan.md").write_text("plan")
    assert committer("run", "--once", env=layout.env).returncode == 0
    missing = committer("log", "notes/nosuch.md", env=layout.env)
    err = missing.stderr.strip()
    assert missing.returncode == 1 and len(err.splitlines()) == 1 and not missing.stdout
    assert err.startswith("committer: error: notes/nosuch.md: nothing was ever saved at this path")
    assert "`committer search nosuch.md`" in err and "`committer log`" in err


def test_an_unreadable_token_file_is_one_line_naming_it_and_a_setting_s_mistake(layout: Layout) -> None:
    nope = layout.root / "nope"
    proc = committer("connect", "acme/notes", "--config", str(layout.root / "c.toml"), "--token-file", str(nope),
                     "--github-api-url", "http://127.0.0.1:9", env=layout.env)
    err = one_line_error(proc)
    assert err == (f"committer: error: token-file: the token file {nope} cannot be read: no such file or directory; "
                   "nothing was changed")
    assert not (layout.root / "c.toml").exists()
