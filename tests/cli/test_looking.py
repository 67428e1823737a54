"""Seeing old versions without restoring: `show`, `diff`, `log -p` and `search`, on a real history made by
`committer init` and `run --once`, odd names included (`-n.md`, `:(glob)*.md`, a name that is not UTF-8)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Layout, committer, git

pytestmark = pytest.mark.integration
BAD = os.fsdecode(b"bad\xff.md")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Layout, dict[str, str]]:
    """v1: meetings/weekly.md, odd names, a binary; v2: weekly.md edited; v3: weekly.md moved to notes.md."""
    root = tmp_path_factory.mktemp("looking")
    data = root / "data"
    (data / "meetings").mkdir(parents=True)
    layout = Layout(root, data, root / "git" / "knowledge.git",
                    {"COMMITTER_DATA_DIR": str(data), "COMMITTER_GIT_DIR": str(root / "git" / "knowledge.git")})
    (data / "meetings" / "weekly.md").write_text("Agenda\nBudget: draft\n")
    (data / "-n.md").write_text("dash line\n")
    (data / ":(glob)*.md").write_text("glob line\n")
    (data / BAD).write_text("latin line\n")
    (data / "pic.bin").write_bytes(b"\x00\x01binary\xff" * 10)
    assert committer("init", env=layout.env).returncode == 0
    (data / "meetings" / "weekly.md").write_text("Agenda\nBudget: approved\n")
    assert committer("run", "--once", env=layout.env).returncode == 0
    (data / "meetings" / "weekly.md").rename(data / "meetings" / "notes.md")
    assert committer("run", "--once", env=layout.env).returncode == 0
    shas = git(layout.git_dir, "rev-list", "main").split()
    return layout, {"v3": shas[0], "v2": shas[1], "v1": shas[2]}


def test_show_prints_a_file_as_it_was_under_its_old_name(saved: tuple[Layout, dict[str, str]]) -> None:
    layout, revs = saved
    now = committer("show", "meetings/notes.md", env=layout.env)
    assert now.returncode == 0 and now.stdout == "Agenda\nBudget: approved\n"
    old = committer("show", "meetings/weekly.md", "--at", revs["v1"][:10], env=layout.env)
    assert old.returncode == 0 and old.stdout == "Agenda\nBudget: draft\n"
    for name in ("-n.md", ":(glob)*.md", "bad\\xff.md"):
        proc = committer("show", "--", name, env=layout.env)
        assert proc.returncode == 0 and proc.stdout.endswith(" line\n"), (name, proc.stderr)


def test_a_path_without_history_says_which_names_are_near(saved: tuple[Layout, dict[str, str]]) -> None:
    layout, _revs = saved
    proc = committer("show", "notes.md", env=layout.env)
    assert proc.returncode == 2 and "did you mean meetings/notes.md?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_writes_a_binary_file_only_to_a_file_or_a_pipe(
        saved: tuple[Layout, dict[str, str]], tmp_path: Path) -> None:
    layout, _revs = saved
    content = b"\x00\x01binary\xff" * 10
    target = tmp_path / "out.bin"
    proc = committer("show", "pic.bin", "-o", str(target), env=layout.env)
    assert proc.returncode == 0 and target.read_bytes() == content
    target.write_bytes(b"mine")
    proc = committer("show", "pic.bin", "-o", str(target), env=layout.env)
    assert proc.returncode == 2 and "--force" in proc.stderr and target.read_bytes() == b"mine"
    assert committer("show", "pic.bin", "-o", str(target), "--force", env=layout.env).returncode == 0
    assert target.read_bytes() == content
    piped = subprocess.run([sys.executable, "-m", "committer", "show", "pic.bin"], capture_output=True,
                           env={**os.environ, **layout.env}, check=False)
    assert piped.returncode == 0 and piped.stdout == content
    # On a terminal: refused, with the way to write it.
    leader, follower = pty.openpty()
    try:
        terminal = subprocess.run([sys.executable, "-m", "committer", "show", "pic.bin"], stdout=follower,
                                  stderr=subprocess.PIPE, env={**os.environ, **layout.env}, check=False, timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert terminal.returncode == 2 and b"-o FILE" in terminal.stderr


def test_diff_shows_the_last_change_or_between_two_versions_across_a_move(
        saved: tuple[Layout, dict[str, str]]) -> None:
    layout, revs = saved
    last = committer("diff", "meetings/notes.md", env=layout.env)
    assert last.returncode == 0 and "rename from meetings/weekly.md" in last.stdout
    both = committer("diff", "meetings/notes.md", "--from", revs["v1"], "--to", revs["v3"], env=layout.env)
    assert both.returncode == 0, both.stderr
    assert "-Budget: draft" in both.stdout and "+Budget: approved" in both.stdout
    edit = committer("diff", "meetings/weekly.md", "--to", revs["v2"], env=layout.env)
    assert edit.returncode == 0 and "+Budget: approved" in edit.stdout and "--- a/meetings/weekly.md" in edit.stdout


def test_log_p_prints_each_change_under_its_commit(saved: tuple[Layout, dict[str, str]]) -> None:
    layout, revs = saved
    proc = committer("log", "-p", "meetings/notes.md", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index(revs["v3"][:12]) < out.index("rename to meetings/notes.md") < out.index(revs["v2"][:12])
    assert out.index(revs["v2"][:12]) < out.index("+Budget: approved") < out.index(revs["v1"][:12])
    assert "+Budget: draft" in out[out.index(revs["v1"][:12]):]
    nothing = committer("log", "nosuch.md", env=layout.env)
    assert nothing.returncode == 1 and "nosuch.md: nothing was ever saved at this path" in nothing.stderr


def test_search_finds_names_and_content_now_and_in_past_versions(saved: tuple[Layout, dict[str, str]]) -> None:
    layout, revs = saved
    names = committer("search", "NOTES", env=layout.env)
    assert names.returncode == 0 and "  meetings/notes.md" in names.stdout
    content = committer("search", "budget", env=layout.env)
    assert "meetings/notes.md:2: Budget: approved" in content.stdout and "draft" not in content.stdout
    past = committer("search", "draft", "--in-history", env=layout.env)
    assert past.returncode == 0, past.stderr
    assert f"{revs['v2'][:12]}" in past.stdout and "(went) Budget: draft" in past.stdout
    assert f"{revs['v1'][:12]}" in past.stdout and "(came) Budget: draft" in past.stdout
    none = committer("search", "draft", env=layout.env)
    assert none.returncode == 1 and "--in-history" in none.stdout


def test_search_takes_odd_text_literally(saved: tuple[Layout, dict[str, str]]) -> None:
    layout, _revs = saved
    dash = committer("search", "--", "-n", env=layout.env)
    assert dash.returncode == 0 and "  -n.md" in dash.stdout
    glob = committer("search", ":(glob)*", env=layout.env)
    assert glob.returncode == 0 and "  :(glob)*.md" in glob.stdout and "-n.md" not in glob.stdout
    latin = committer("search", "latin", env=layout.env)
    assert "bad\\xff.md:1: latin line" in latin.stdout
    star = committer("search", "*", env=layout.env)
    assert star.returncode == 0 and star.stdout.splitlines()[1:] == ["  :(glob)*.md"]


def test_search_says_the_content_of_lfs_files_was_not_searched(tmp_path: Path) -> None:
    """A file kept in Git LFS has only its pointer in git: its content is not searched, and the answer says so
    (its name still is)."""
    data = tmp_path / "data"
    data.mkdir()
    layout = Layout(tmp_path, data, tmp_path / "git" / "knowledge.git",
                    {"COMMITTER_DATA_DIR": str(data), "COMMITTER_GIT_DIR": str(tmp_path / "git" / "knowledge.git"),
                     "COMMITTER_LFS_THRESHOLD": "1KiB"})
    (data / "big-notes.txt").write_text("needle in a big file\n" * 100)
    (data / "small.md").write_text("needle in a small file\n")
    assert committer("init", env=layout.env).returncode == 0
    assert "oid sha256:" in git(layout.git_dir, "show", "HEAD:big-notes.txt")  # kept in LFS
    found = committer("search", "needle", env=layout.env)
    assert found.returncode == 0, found.stderr
    assert "small.md:1: needle in a small file" in found.stdout
    assert "not searched: the content of 1 file kept in Git LFS (only their names are searched): big-notes.txt" \
        in found.stdout
    named = committer("search", "big-notes", env=layout.env)
    assert "  big-notes.txt" in named.stdout
    as_json = committer("search", "needle", "--json", env=layout.env)
    assert '"unsearched": ["the content of 1 file kept in Git LFS' in as_json.stdout
