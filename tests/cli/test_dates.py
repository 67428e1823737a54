"""A date past the end or before the start of the history is one clear line naming the newest or oldest
version, exit code 2, and nothing changes; a date inside it resolves as before."""

from __future__ import annotations

import datetime
import os
import subprocess
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


def test_parse_date_reads_days_as_whole_days_and_refuses_what_it_does_not_know(layout: Layout) -> None:
    """A bare day is the whole day; git's approxidate reads the rest; a text it would read as "now" without
    saying now, with a word it does not know, or shaped like a revision is not a date."""
    from committer.git.repo import GitRepo
    from committer.git.runner import GitRunner

    git(layout.git_dir.parent, "init", "-q", "--bare", str(layout.git_dir))
    repo = GitRepo(layout.git_dir, layout.data, "main", GitRunner())
    now = time.time()
    day = revs.parse_date(repo, "2026-03-01", now)
    assert day is not None and day.last - day.first == 86399
    ago = revs.parse_date(repo, "2 hours ago", now)
    assert ago is not None and ago.first == pytest.approx(now - 7200, abs=2)
    far = revs.parse_date(repo, "1000 years ago", now)
    assert far is not None and far.last < 0
    evening = revs.parse_date(repo, "yesterday 18:00", now)
    expected = datetime.datetime.combine(datetime.date.today() - datetime.timedelta(days=1), datetime.time(18))
    assert evening is not None and evening.first == pytest.approx(expected.timestamp(), abs=2)
    for text in ("last tuesday", "noon", "3 weeks ago", "dec 1", "now", "today", "yesterday", "1 second ago",
                 "0 minutes ago"):
        assert revs.parse_date(repo, text, now) is not None, text
    for text in ("main", "HEAD~1", "soon", "2026-13-45", "next tuesday", "tuesday", "x 5", "", "2 hours ago; rm"):
        assert revs.parse_date(repo, text, now) is None, text


def _stamp(when: datetime.datetime) -> str:
    return f"{int(when.timestamp())} +0000"


@pytest.fixture
def dated(layout: Layout) -> dict[str, str]:
    """A history written with chosen dates: v1 twenty days ago, v2 yesterday at noon, v3 seconds ago."""
    work = layout.root / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    today = datetime.datetime.combine(datetime.date.today(), datetime.time())
    times = {"v1": datetime.datetime.now() - datetime.timedelta(days=20),
             "v2": today - datetime.timedelta(hours=12), "v3": datetime.datetime.now() - datetime.timedelta(seconds=5)}
    shas = {}
    for name, when in times.items():
        (work / "plan.md").write_text(f"{name}\n")
        stamp = _stamp(when)
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        subprocess.run(["git", "-C", str(work), "add", "plan.md"], check=True)
        subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", name],
                       check=True, env={**os.environ, **env})
        shas[name] = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(layout.git_dir)], check=True)
    return shas


@pytest.mark.integration
def test_each_date_form_names_the_version_of_its_time(layout: Layout, dated: dict[str, str]) -> None:
    """`show --at` with every form people type; a bare day means the end of that day."""
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    three_days = (datetime.date.today() - datetime.timedelta(days=3)).strftime("%A").lower()
    cases = {
        "yesterday": "v2", "yesterday 18:00": "v2", "yesterday 11:00": "v1", "2 hours ago": "v2",
        f"last {three_days}": "v1", "last week": "v1", yesterday.isoformat(): "v2",  # its end, not its start
        f"{yesterday.isoformat()} 18:00": "v2", f"{yesterday.isoformat()} 11:00": "v1", "now": "v3",
        "today": "v3", dated["v1"][:10]: "v1", f"main@{{{yesterday.isoformat()}}}": "v2",
    }
    for when, version in cases.items():
        proc = committer("show", "plan.md", "--at", when, env=layout.env)
        assert proc.returncode == 0 and proc.stdout == f"{version}\n", (when, proc.stderr)


@pytest.mark.integration
def test_before_the_first_version_is_one_line_naming_it_and_the_log(layout: Layout, dated: dict[str, str]) -> None:
    proc = committer("show", "plan.md", "--at", "30 days ago", env=layout.env)
    assert proc.returncode == 2
    line = one_line(proc)
    assert f"the oldest version is {dated['v1'][:12]} of " in line and "`committer log plan.md`" in line
    proc = committer("show", "plan.md", "--at", "soon", env=layout.env)
    assert proc.returncode == 2 and "'soon' names no version" in one_line(proc) and "last tuesday" in one_line(proc)


@pytest.mark.integration
def test_the_readme_restore_on_a_younger_history_names_the_oldest_version(
        layout: Layout, two_versions: dict[str, str]) -> None:
    (layout.data / "notes").mkdir()
    proc = committer("restore", "a.md", "--to", "2 hours ago", env=layout.env)
    assert proc.returncode == 2
    line = one_line(proc)
    assert line.startswith("committer: error: --to: 2 hours ago is before the history starts; ")
    assert f"the oldest version is {two_versions['oldest'][:12]}" in line and "`committer log a.md`" in line
    assert (layout.data / "a.md").read_text() == "v2"
