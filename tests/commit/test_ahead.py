"""The daemon's commit step keeps the next pass's fast-import started ahead: used when it is fresh and alive,
replaced when not, kept through a pass that wrote nothing, never used to move a branch another writer moved."""

from __future__ import annotations

import pytest

from committer.commit import step as stepmod
from committer.commit.committer import Committer
from committer.commit.trace import Trace
from committer.core.errors import GitError
from committer.git.runner import kill_group
from tests.commit.test_pipeline import make_pipeline, write
from tests.conftest import Layout, git, wait_for


def _daemons(layout: Layout) -> Committer:
    write(layout, "a.md", "one")
    p = make_pipeline(layout)
    p.step.ahead = True
    p.reconcile()
    return p


def _traced(p: Committer, path: str) -> Trace:
    trace = Trace()
    trace.mark("batch_closed")
    result = p.commit([path], trace=trace)
    assert result.sha is not None
    return trace


def test_each_batch_takes_the_process_started_after_the_one_before(layout: Layout) -> None:
    p = _daemons(layout)
    first = p.step._spare
    assert first is not None and first.ready(60.0)  # started after the start-up pass
    write(layout, "a.md", "two")
    fields = _traced(p, "a.md").fields()
    assert fields["fast_import_ahead"] is True
    assert p.step._spare is not None and p.step._spare is not first
    assert git(layout.git_dir, "show", "HEAD:a.md") == "two"
    if "cpu_ms" in fields:  # Linux: where the path's time went
        assert fields["cpu_ms"] >= 0 and fields["waited_ms"] >= 0 and fields["fast_import_cpu_ms"] > 0
    kept = p.step._spare
    assert p.commit(["a.md"]).sha is None and p.step._spare is kept  # nothing changed: it stays ready
    p.step.close()
    assert p.step._spare is None and not list((layout.git_dir / "objects" / "pack").glob("tmp_*"))
    assert not list(layout.git_dir.glob("fast_import_crash_*"))


def test_without_the_daemon_no_process_is_left_waiting(layout: Layout) -> None:
    write(layout, "a.md", "one")
    p = make_pipeline(layout)
    p.reconcile()
    write(layout, "a.md", "two")
    assert p.commit(["a.md"]).sha is not None and p.step._spare is None


def test_a_process_killed_or_too_old_is_replaced_by_one_started_now(
        layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _daemons(layout)
    spare = p.step._spare
    assert spare is not None and spare._stream.proc is not None
    proc = spare._stream.proc
    kill_group(proc)  # as a stop's kill of the main thread's git would
    wait_for(lambda: proc.poll() is not None, what="the process killed")
    write(layout, "a.md", "two")
    assert _traced(p, "a.md").fields()["fast_import_ahead"] is False
    monkeypatch.setattr(stepmod, "AHEAD_FOR", 0.0)
    write(layout, "a.md", "three")
    assert _traced(p, "a.md").fields()["fast_import_ahead"] is False
    assert git(layout.git_dir, "show", "HEAD:a.md") == "three"
    p.step.close()


def test_a_branch_another_writer_moved_is_never_written_over(layout: Layout) -> None:
    p = _daemons(layout)
    write(layout, "b.md", "by hand")
    git(layout.git_dir, "--work-tree", str(layout.data), "add", "b.md")
    tree = git(layout.git_dir, "--work-tree", str(layout.data), "write-tree").strip()
    other = git(layout.git_dir, "commit-tree", tree, "-p", "HEAD", "-m", "another writer").strip()
    git(layout.git_dir, "update-ref", "refs/heads/main", other)
    write(layout, "a.md", "two")
    with pytest.raises(GitError):
        p.commit(["a.md"])  # from the head it knew: fast-import refuses to move the branch backwards
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == other
    p.refresh_head()
    assert p.commit(["a.md"]).sha is not None  # the daemon's retry, on the moved branch
    assert git(layout.git_dir, "rev-parse", "HEAD~1").strip() == other
    p.step.close()
