"""What the remote holds: pushes confirmed from git's porcelain answer, and a remote moved back or rewritten
by someone else reported as remote_diverged, never pushed over."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from committer.git.repo import GitRepo
from committer.serve.metrics import Metrics
from committer.sync import verify
from committer.sync.errors import PushError
from committer.sync.pusher import Pusher
from tests.gitserver import git, wait_for
from tests.sync.test_push_remote import bare, commit, remote_head, repo, running, settings_for

__all__ = ["bare", "repo", "running"]  # fixtures


def force_remote(bare: Path, sha: str) -> None:
    """Someone else moves the remote branch (a force-push)."""
    git("--git-dir", str(bare), "update-ref", "refs/heads/main", sha)


def diverged(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("committer_remote_diverged") or 0.0


def test_confirm_reads_the_porcelain_line() -> None:
    """The porcelain summary must name the commit sent; anything else is not a confirmation."""
    sha = "1234567890abcdef1234567890abcdef12345678"
    ref = "refs/heads/main"
    assert verify.confirm({ref: (" ", "abcdef0..1234567")}, ref, sha) is None
    assert verify.confirm({ref: ("+", "abcdef0...1234567 (forced update)")}, ref, sha) is None
    assert verify.confirm({ref: ("*", "[new branch]")}, ref, sha) is None
    assert verify.confirm({ref: ("=", "[up to date]")}, ref, sha) is None
    assert verify.confirm({ref: (" ", "abcdef0..7654321")}, ref, sha) is not None
    assert verify.confirm({}, ref, sha) is not None


def test_a_remote_moved_back_by_one_commit_is_reported_and_not_pushed_over(repo: GitRepo, bare: Path) -> None:
    """Force-pushed back one commit: the next push is refused as remote_diverged and the remote stays as it is."""
    metrics = Metrics(process=False)
    sent: list[dict[str, object]] = []
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo, metrics=metrics, emit=sent.append)
    first = commit(repo)
    second = commit(repo)
    assert pusher.push_now()["pushed"]
    force_remote(bare, first)
    third = commit(repo)
    with pytest.raises(PushError) as info:
        pusher.push_now()
    assert info.value.kind == "remote_diverged" and info.value.permanent
    assert f"moved back to {first[:12]}" in info.value.detail and second[:12] in info.value.detail
    assert remote_head(bare) == first
    snap = pusher.snapshot()
    assert snap["last_error"]["kind"] == "remote_diverged" and snap["pending_commits"] == 1
    told = [e for e in sent if e["event"] == "push_failed"]
    assert [(e["kind"], e["permanent"]) for e in told] == [("remote_diverged", True)]
    assert diverged(metrics) == 1
    assert repo.head() == third


def test_someone_elses_new_commits_are_not_a_divergence(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    """A remote that moved ahead is non_fast_forward (a pull brings it in), not remote_diverged."""
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo)
    commit(repo)
    pusher.push_now()
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(bare), str(clone))
    (clone / "theirs.md").write_text("theirs\n")
    git("add", "theirs.md", cwd=clone)
    git("commit", "--quiet", "-m", "theirs", cwd=clone)
    git("push", "--quiet", "origin", "main", cwd=clone)
    commit(repo)
    with pytest.raises(PushError) as info:
        pusher.push_now()
    assert info.value.kind == "non_fast_forward"


def test_a_push_whose_bookkeeping_was_lost_is_recorded_and_continued(repo: GitRepo, bare: Path) -> None:
    """Killed after a push, before recording it: the remote holds our commits, so the next push goes on top."""
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo)
    commit(repo)
    pusher.push_now()
    unrecorded = commit(repo)
    git("--git-dir", str(repo.git_dir), "push", "--quiet", f"file://{bare}", f"{unrecorded}:refs/heads/main")
    latest = commit(repo)
    assert pusher.push_now()["pushed"]
    assert remote_head(bare) == latest and pusher.snapshot()["last_error"] is None


def test_the_periodic_check_finds_a_rewrite_and_sees_it_undone(
    repo: GitRepo, bare: Path, tmp_path: Path, running: list[Pusher]
) -> None:
    """With nothing to push, one ls-remote per reconcile_interval still notices; put back, pushing resumes."""
    metrics = Metrics(process=False)
    settings = dataclasses.replace(settings_for(repo, f"file://{bare}"), reconcile_interval=0.2)
    pusher = Pusher(settings, repo, metrics=metrics)
    running.append(pusher)
    first = commit(repo)
    second = commit(repo)
    pusher.start()
    wait_for(lambda: remote_head(bare) == second, what="the first push")
    other = git("--git-dir", str(bare), "commit-tree", "-p", first, "-m", "rewritten",
                f"{first}^{{tree}}")
    force_remote(bare, other)  # rewritten: a commit this repository has never seen
    wait_for(lambda: (pusher.snapshot()["last_error"] or {}).get("kind") == "remote_diverged", what="the check")
    assert f"rewritten to {other[:12]}" in pusher.snapshot()["last_error"]["message"]
    assert diverged(metrics) == 1
    force_remote(bare, second)  # someone puts it back
    wait_for(lambda: pusher.snapshot()["last_error"] is None, what="the divergence to clear")
    assert diverged(metrics) == 0
    third = commit(repo)
    pusher.request()
    wait_for(lambda: remote_head(bare) == third, what="pushing again")


def test_a_deleted_remote_branch_is_a_divergence(repo: GitRepo, bare: Path) -> None:
    """The branch deleted on the remote is not silently created again."""
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo)
    commit(repo)
    pusher.push_now()
    git("--git-dir", str(bare), "update-ref", "-d", "refs/heads/main")
    commit(repo)
    with pytest.raises(PushError) as info:
        pusher.push_now()
    assert info.value.kind == "remote_diverged" and "deleted" in info.value.detail
    assert remote_head(bare) is None

