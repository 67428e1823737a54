"""A file's history page: the revisions it shows (renames, merges, the BM-Meta trailer, names that are not
UTF-8), the git processes it starts, and that its `git log` is one the commit-graph's changed-path filters
answer."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from committer.daemon import maintenance
from committer.daemon.maintenance import Maintenance, has_commit_graph, write_commit_graph
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner, git_env
from committer.serve import filehistory, tags
from committer.serve.access import Access
from committer.serve.pages import Pages
from tests.conftest import git, wait_for
from tests.serve.test_pages import fetch, serving

BAD = b"bad\xff.md"  # a name that is not UTF-8


def _commit(number: int, files: list[tuple[str, bytes, bytes]], parents: list[int], ref: str = "main") -> bytes:
    """One fast-import commit: files as (op, path, content), op M (write), R (rename to content) or D."""
    meta = {"v": 1, "batch": f"b{number}", "host": "test", "added": 0, "modified": len(files), "deleted": 0,
            "renamed": 0, "first_event": "2026-01-01T00:00:00Z"}
    message = f"chore(sync): commit {number}\n\nBM-Meta: {json.dumps(meta)}\n".encode()
    out = [f"commit refs/heads/{ref}\nmark :{number}\n".encode(),
           f"committer t <t@t> {1_750_000_000 + number * 60} +0000\n".encode(),
           b"data %d\n%s\n" % (len(message), message)]
    if parents:
        out.append(f"from :{parents[0]}\n".encode())
    out += [f"merge :{p}\n".encode() for p in parents[1:]]
    for op, path, content in files:
        quoted = b'"' + path.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\xff", b"\\377") + b'"'
        if op == "M":
            out.append(b"M 100644 inline " + quoted + b"\n" + b"data %d\n%s\n" % (len(content), content))
        elif op == "R":
            out.append(b"R " + quoted + b' "' + content + b'"\n')
        else:
            out.append(b"D " + quoted + b"\n")
    return b"".join(out) + b"\n"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """1 adds a.md and bad\\xff.md; 2 edits a.md; 3 (a side branch) edits bad\\xff.md; 4 edits a.md; 5 merges
    the side branch; 6 moves a.md to b.md; 7 edits b.md; 8 edits 40 other files, one commit each."""
    git_dir = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(git_dir)], check=True, env=git_env())
    stream = [
        _commit(1, [("M", b"a.md", b"a1\n"), ("M", BAD, b"b1\n")], []),
        _commit(2, [("M", b"a.md", b"a2\n")], [1]),
        _commit(3, [("M", BAD, b"b2\n")], [2], "side"),
        _commit(4, [("M", b"a.md", b"a3\n" * 400)], [2]),
        _commit(5, [("M", BAD, b"b2\n")], [4, 3]),
        _commit(6, [("R", b"a.md", b"b.md")], [5]),
        _commit(7, [("M", b"b.md", b"a4\n" * 400)], [6]),
    ]
    stream += [_commit(n, [("M", f"other/{n}.md".encode(), b"x\n")], [n - 1]) for n in range(8, 48)]
    subprocess.run(["git", f"--git-dir={git_dir}", "fast-import", "--quiet"], input=b"".join(stream), check=True,
                   env=git_env())
    (tmp_path / "data").mkdir()
    return GitRepo(git_dir, tmp_path / "data", "main")


def _marks(repo: GitRepo) -> dict[str, int]:
    out = repo.git("log", "--format=%H %s", "main", "side").stdout.decode()
    return {line.split()[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}


def _shown(repo: GitRepo, path: str) -> list[tuple[int, str, str, str | None]]:
    marks = _marks(repo)
    revisions, more = filehistory.file_history(repo, path)
    assert not more
    assert all(r.commit.meta is not None for r in revisions)  # the BM-Meta trailer read
    return [(marks[r.commit.sha], r.status, r.path, r.old_path) for r in revisions]


def test_the_revisions_across_a_rename_and_a_merge_with_and_without_the_commit_graph(repo: GitRepo) -> None:
    bad = os.fsdecode(BAD)
    expected_b = [(7, "modified", "b.md", None), (6, "renamed", "b.md", "a.md"), (4, "modified", "a.md", None),
                  (2, "modified", "a.md", None), (1, "added", "a.md", None)]
    expected_bad = [(3, "modified", bad, None), (1, "added", bad, None)]  # the merge took the side's version
    assert _shown(repo, "b.md") == expected_b
    assert _shown(repo, bad) == expected_bad
    assert write_commit_graph(repo)
    filehistory.forget()  # the branch did not move: the pages read before would be kept
    assert _shown(repo, "b.md") == expected_b
    assert _shown(repo, bad) == expected_bad
    page, more = filehistory.file_history(repo, "b.md", skip=1, limit=2)
    assert [r.commit.sha for r in page] == [r.commit.sha for r in filehistory.file_history(repo, "b.md")[0][1:3]]
    assert more


def test_the_log_is_answered_from_the_changed_path_filters(repo: GitRepo, tmp_path: Path) -> None:
    """The daemon's maintenance writes the filters, and the page's `git log` is one git can use them for
    (a plain path, no --follow): most commits are ruled out without reading a tree."""
    assert write_commit_graph(repo)
    trace = tmp_path / "trace"
    repo.git(*filehistory.log_args(repo.ref, "b.md", 10), env={"GIT_TRACE2_PERF": str(trace)})
    stats = next(json.loads(line.split("statistics:", 1)[1]) for line in trace.read_text().splitlines()
                 if "bloom" in line and "statistics:" in line)
    assert stats["filter_not_present"] == 0
    assert stats["definitely_not"] >= 40, stats


def test_a_history_without_a_commit_graph_gets_one_at_the_first_quiet_moment(
        repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written before the daemon wrote them, or by another git: no need to wait for 50 new commits."""
    monkeypatch.setattr(maintenance, "WHEN_QUIET", 0.0)
    assert not has_commit_graph(repo)
    worker = Maintenance(repo)
    worker.tick()
    assert worker.started
    worker.stop(timeout=60)
    assert has_commit_graph(repo) and worker.last_error is None
    again = Maintenance(repo)
    again.tick()  # it has one now: nothing to do until enough commits
    assert not again.started


def test_the_delta_cache_follows_the_size_of_the_folder() -> None:
    """Small for a small folder (its many versions cost page faults, not time), git's own 96 MB for one
    large enough that a few dozen of its versions need it."""
    assert filehistory.small_cache(None) == []
    assert filehistory.small_cache(90_000) == ["-c", f"core.deltaBaseCacheLimit={8 << 20}"]
    assert filehistory.small_cache(1 << 20) == ["-c", f"core.deltaBaseCacheLimit={32 << 20}"]
    assert filehistory.small_cache(4 << 20) == ["-c", f"core.deltaBaseCacheLimit={96 << 20}"]


class Counting(GitRunner):
    """The real runner, remembering what it started."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []
        self.argv: list[list[str]] = []

    def start(self, argv: list[str], env: dict[str, str], stdin: object, network: bool = False) -> (
            subprocess.Popen[bytes]):
        command = next(a for a in argv[3:] if not a.startswith("-") and "=" not in a)
        if command != "for-each-ref":  # the tags: read again only when they may have changed (serve/tags.py)
            self.started.append(command)
            self.argv.append(argv)
        return super().start(argv, env, stdin, network)  # type: ignore[arg-type]


@pytest.fixture
def counted(repo: GitRepo) -> Iterator[tuple[int, Counting]]:
    runner = Counting()
    counted = GitRepo(repo.git_dir, repo.data_dir, "main", runner=runner)
    with serving(Pages(counted, Access("open"), lambda: {}, lambda op, args: {})) as port:
        yield port, runner


def test_a_file_page_starts_three_git_processes(counted: tuple[int, Counting]) -> None:
    """What exists now (one ls-tree, read once for "is there such a name" and "is it a folder"), the
    file's log, and one cat-file for the size of its folder (before the log) and of its revisions."""
    port, runner = counted
    answer = fetch(port, "/file/bad%FF.md")
    assert answer.status == 200 and "bad\\xff.md" in answer.body.decode()
    assert runner.started == ["ls-tree", "cat-file", "log"]
    assert f"core.deltaBaseCacheLimit={8 << 20}" in runner.argv[-1]  # a small folder: a small delta cache
    runner.started.clear()
    assert fetch(port, "/file/other").status == 200
    assert runner.started == ["ls-tree", "log", "diff-tree"]
    runner.started.clear()
    answer = fetch(port, "/file/b.md")  # and, where a name first appears, whether it was moved there
    assert answer.status == 200 and "renamed from <code>a.md</code>" in answer.body.decode()
    assert runner.started == ["ls-tree", "cat-file", "log", "diff-tree", "log"]
    runner.started.clear()
    assert fetch(port, "/file/never.md").status == 404
    assert runner.started[:2] == ["ls-tree", "log"]


def test_a_page_read_again_is_kept_until_the_branch_moves(counted: tuple[int, Counting], repo: GitRepo) -> None:
    """A reload reads no history; a new commit, or a new snapshot tag, shows at once."""
    port, runner = counted
    filehistory.forget()
    wait_for(lambda: tags.branch_stamp(repo.git_dir, repo.ref), what="the ref older than its stat's tick")
    first = fetch(port, "/file/b.md").body
    runner.started.clear()
    assert fetch(port, "/file/b.md").body == first
    assert runner.started == ["ls-tree"]  # what exists now; the history is kept
    sha = git(repo.git_dir, "rev-parse", "main~40").strip()  # commit 7, b.md's newest revision
    git(repo.git_dir, "tag", "snapshot-kept", sha)
    assert "snapshot-kept" in fetch(port, "/file/b.md").body.decode()
    stream = (b"commit refs/heads/main\ncommitter t <t@t> 1760000000 +0000\ndata 6\nnewer\n"
              b"from refs/heads/main^0\nM 100644 inline b.md\ndata 3\na5\n\n")
    subprocess.run(["git", f"--git-dir={repo.git_dir}", "fast-import", "--quiet"], input=stream, check=True,
                   env=git_env())
    runner.started.clear()
    assert git(repo.git_dir, "rev-parse", "main").strip() in fetch(port, "/file/b.md").body.decode()
    assert "log" in runner.started
