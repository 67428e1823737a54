"""A date past the end or before the start of the history is one clear line naming the newest or oldest
version, exit code 2, and nothing changes; a date inside it resolves as before."""

from __future__ import annotations

import datetime
import time

import pytest

from committer.git import revs
from tests.conftest import Layout, commit_count, committer, git


@pytest.fixture
def two_versions(layout: Layout) -> dict[str, str]:
    (layout.data / "a.md").write_text("v1")
    assert committer("init", env=layout.env).returncode == 0
    (layout.data / "a.md").write_text("v2")
    assert committer("run", "--once", env=layout.env).returncode == 0
    shas = git(layout.git_dir, "rev-list", "main").split()
    return {"oldest": shas[-1], "newest": shas[0]}


def one_line(proc: object) -> str:
    lines = getattr(proc, "stderr").strip().splitlines()  # noqa: B009
    assert "Traceback" not in getattr(proc, "stderr")  # noqa: B009
    return str(lines[-1])


@pytest.mark.parametrize(("to", "edge"), [
    ("2099-01-01", "newest"),
    ("2099-01-01T10:00:00", "newest"),
    ("main@{2099-01-01}", "newest"),
    ("main@{1000 years ago}", "oldest"),
    ("@{1000 years ago}", "oldest"),
    ("1000 years ago", "oldest"),
    ("1990-05-01", "oldest"),
    ("0001-01-01", "oldest"),
    ("1972-06-01", "oldest"),  # fewer than nine digits of seconds: git would read them as another date
    ("9999-12-31", "newest"),
])
def test_a_date_outside_the_history_names_the_newest_or_oldest_version(
    layout: Layout, two_versions: dict[str, str], to: str, edge: str
) -> None:
    before = commit_count(layout.git_dir)
    proc = committer("restore", "a.md", "--to", to, env=layout.env)
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    sha = two_versions[edge]
    assert line.startswith("committer: error: ") and f"--to: {to} " in line
    assert f"the {edge} version is {sha[:12]} of " in line
    assert ("future" if edge == "newest" else "before the history starts") in line
    assert commit_count(layout.git_dir) == before and (layout.data / "a.md").read_text() == "v2"


def test_dates_inside_the_history_still_resolve(layout: Layout, two_versions: dict[str, str]) -> None:
    today = datetime.date.today().isoformat()  # a bare day means its end: the newest version of today
    proc = committer("restore", "a.md", "--to", today, "--dry-run", env=layout.env)
    assert proc.returncode == 0, proc.stderr
    assert f"({two_versions['newest'][:12]})" in proc.stdout
    for to in ("main@{1 second ago}", "now", "today", "main@{0}"):
        proc = committer("restore", "a.md", "--to", to, "--dry-run", env=layout.env)
        assert proc.returncode == 0, (to, proc.stderr)
    proc = committer("restore", "a.md", "--to", "main@{2099-01-01}", env=layout.env)
    assert proc.returncode == 2


def test_the_daemon_answers_the_same_line(layout: Layout, two_versions: dict[str, str], start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon()
    proc = committer("restore", "a.md", "--to", "2099-01-01", env=layout.env)
    assert proc.returncode == 2, proc.stderr
    assert f"the newest version is {two_versions['newest'][:12]}" in one_line(proc)
    assert daemon.stop() == 0


def test_parse_date_reads_days_as_whole_days_and_refuses_what_it_does_not_know() -> None:
    now = time.time()
    day = revs.parse_date("2026-03-01", now)
    assert day is not None and day.last - day.first == 86399
    ago = revs.parse_date("2 hours ago", now)
    assert ago is not None and ago.first == pytest.approx(now - 7200)
    far = revs.parse_date("1000 years ago", now)
    assert far is not None and far.last < 0
    for text in ("main", "HEAD~1", "soon", "2026-13-45", "next tuesday", ""):
        assert revs.parse_date(text, now) is None, text
