"""A `git fast-import` started ahead of its stream: it writes nothing until its stream comes, ends cleanly when
it gets none (even when committer is killed), moves no reference when its stream is cut short, and never moves
a branch that another writer moved meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from committer.core.errors import GitError
from committer.git.fastimport import FastImport
from committer.git.objects import blob_id
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import ROOT, Layout, git, wait_for

IDENTITY = ("Test", "test@example.com")


def _repo(layout: Layout) -> GitRepo:
    write(layout, "a.md", "one")
    p = make_pipeline(layout)
    p.reconcile()
    return p.repo


def _leftovers(git_dir: Path) -> list[str]:
    pack = sorted(p.name for p in (git_dir / "objects" / "pack").glob("tmp_*"))
    return pack + sorted(p.name for p in git_dir.glob("fast_import_crash_*"))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _commit(process: FastImport, repo: GitRepo, parent: str, text: bytes) -> str:
    process.blob_nomark(text)
    process.write_commit(repo.ref, parent, IDENTITY, "a change", [], [("100644", blob_id(text), "a.md")])
    return process.finish(":1")


def test_one_started_ahead_commits_like_one_started_now_and_one_unused_ends_leaving_nothing(layout: Layout) -> None:
    repo = _repo(layout)
    head = repo.head()
    assert head is not None
    ahead = FastImport(repo).start()
    assert ahead.ready(60.0) and not ahead.ready(0.0)
    assert ahead._stream._timer is None  # no deadline runs while it waits: it may wait for hours
    sha = _commit(ahead, repo, head, b"two")
    assert repo.head() == sha and git(layout.git_dir, "show", f"{sha}:a.md") == "two"
    assert ahead.usage is None or ahead.usage.cpu_ns > 0  # its CPU, read before it was reaped (Linux)
    unused = FastImport(repo).start()
    unused.close()
    assert _leftovers(layout.git_dir) == [] and repo.head() == sha
    git(layout.git_dir, "fsck", "--strict")


def test_one_started_ahead_never_moves_a_branch_another_writer_moved(layout: Layout) -> None:
    repo = _repo(layout)
    head = repo.head()
    assert head is not None
    ahead = FastImport(repo).start()
    other = _commit(FastImport(repo), repo, head, b"by another writer")  # the branch moves meanwhile
    with pytest.raises(GitError):
        _commit(ahead, repo, head, b"from the old head")
    assert repo.head() == other


def test_a_stop_does_not_kill_one_waiting_and_kills_one_writing(layout: Layout) -> None:
    repo = _repo(layout)
    runner = GitRunner()
    waiting = FastImport(GitRepo(repo.git_dir, repo.data_dir, repo.branch, runner)).start()
    writing = FastImport(GitRepo(repo.git_dir, repo.data_dir, repo.branch, runner)).start()
    writing.blob_nomark(b"half")
    runner.terminate()
    assert waiting.ready(60.0)
    wait_for(lambda: writing._stream.proc is not None and writing._stream.proc.poll() is not None,
             what="the writing fast-import killed")
    writing.abort()
    waiting.close()


_HOLDER = """
import sys
from pathlib import Path
from committer.git.fastimport import FastImport
from committer.git.objects import blob_id
from committer.git.repo import GitRepo
repo = GitRepo(Path(sys.argv[1]), Path(sys.argv[2]), "main")
process = FastImport(repo).start()
if sys.argv[3] == "stream":
    process.blob_nomark(b"cut short")
    process.write_commit(repo.ref, repo.head(), ("T", "t@e"), "cut", [], [("100644", blob_id(b"cut short"), "a.md")])
    process._stream.proc.stdin.flush()
print(process._stream.proc.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.integration
@pytest.mark.parametrize("stream", ["none", "stream"])
def test_committer_killed_leaves_no_pack_no_crash_report_and_the_branch_where_it_was(
        layout: Layout, stream: str) -> None:
    repo = _repo(layout)
    head = repo.head()
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(layout.git_dir), str(layout.data), stream],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as holder:
        assert holder.stdout is not None
        pid = int(holder.stdout.readline())
        os.kill(holder.pid, signal.SIGKILL)  # kill -9: the fast-import's input closes
    wait_for(lambda: _gone(pid), what="fast-import ended")
    assert repo.head() == head
    if stream == "none":
        assert _leftovers(layout.git_dir) == []  # it ended as asked: nothing written, nothing left
    git(layout.git_dir, "fsck", "--strict")
