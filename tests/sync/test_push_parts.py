"""A large backlog pushed in parts: each a fast-forward of an intermediate commit, recorded as it lands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from committer.git.repo import GitRepo
from committer.sync.errors import PushError
from committer.sync.pusher import Pusher
from tests.conftest import ISOLATED, committer
from tests.gitserver import git, wait_for
from tests.sync.test_push_remote import _no_ambient_token, bare, commit, pushes, remote_head, repo, settings_for

__all__ = ["_no_ambient_token", "bare", "repo"]  # the fixtures, imported so pytest finds them


def _log(path: Path, *args: str) -> list[str]:
    return git("--git-dir", str(path), "log", "--format=%H", *args).split()


def _pushed(pusher: Pusher, repo: GitRepo) -> str:
    assert pusher.push is not None
    return git("--git-dir", str(repo.git_dir), "rev-parse", pusher.push.pushed_ref)


def test_a_backlog_past_push_part_files_goes_in_parts_and_lands_every_commit(repo: GitRepo, bare: Path) -> None:
    shas = [commit(repo) for _ in range(5)]
    git("--git-dir", str(repo.git_dir), "tag", "v1", shas[-1])
    sent: list[dict[str, object]] = []
    pusher = Pusher(settings_for(repo, f"file://{bare}", push_part_files=2), repo, emit=sent.append)
    with capture_logs() as logs:
        result = pusher.push_now()
    assert result["pushed"] and result["new"] == shas[-1] and result["commits"] == 5 and result["old"] is None
    assert remote_head(bare) == shas[-1] and _log(bare, "main") == shas[::-1]
    assert git("--git-dir", str(bare), "rev-parse", "v1") == shas[-1]  # tags went with the last part
    assert [e["new"] for e in pushes(logs)] == [shas[1], shas[3], shas[4]]  # oldest commits first
    assert [e["commits"] for e in pushes(logs)] == [2, 2, 1]
    assert [(e["old"], e["new"]) for e in sent] == [(None, shas[1]), (shas[1], shas[3]), (shas[3], shas[4])]
    assert [(e["commits"], e["of"]) for e in logs if e["event"] == "push_part"] == [(2, 5), (2, 3)]
    assert _pushed(pusher, repo) == shas[-1] and pusher.snapshot()["pending_commits"] == 0


def test_a_commit_larger_than_a_part_goes_alone_and_counts_come_from_bm_meta(repo: GitRepo, bare: Path) -> None:
    """A commit's size is what its BM-Meta says it changed; one larger than a part is a part of its own."""
    shas = [commit(repo) for _ in range(3)]
    big = git("--git-dir", str(repo.git_dir), "commit-tree", f"{shas[-1]}^{{tree}}", "-p", shas[-1], "-m",
              "chore(sync): many\n\nBM-Meta: " + json.dumps({"v": 1, "batch": "b", "added": 7, "modified": 2}))
    git("--git-dir", str(repo.git_dir), "update-ref", repo.ref, big)
    with capture_logs() as logs:
        Pusher(settings_for(repo, f"file://{bare}", push_part_files=4), repo).push_now()
    assert [e["new"] for e in pushes(logs)] == [shas[-1], big]
    assert remote_head(bare) == big


def test_a_merge_in_the_backlog_or_no_limit_pushes_the_rest_at_once(repo: GitRepo, bare: Path) -> None:
    base = commit(repo)
    side = commit(repo, parent=base)
    main = commit(repo, parent=base)
    merge = git("--git-dir", str(repo.git_dir), "commit-tree", f"{main}^{{tree}}", "-p", main, "-p", side, "-m", "m")
    git("--git-dir", str(repo.git_dir), "update-ref", repo.ref, merge)
    with capture_logs() as logs:
        Pusher(settings_for(repo, f"file://{bare}", push_part_files=1), repo).push_now()
    assert [e["new"] for e in pushes(logs)] == [base, merge]  # the line of commits up to the merge, then the rest
    more = [commit(repo) for _ in range(4)]
    with capture_logs() as logs:
        Pusher(settings_for(repo, f"file://{bare}", push_part_files=0), repo).push_now()
    assert [e["new"] for e in pushes(logs)] == [more[-1]]


def test_a_failure_between_parts_resumes_from_what_the_remote_has(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    shas = [commit(repo) for _ in range(6)]
    settings = settings_for(repo, f"file://{bare}", push_part_files=2)
    hook = bare / "hooks" / "pre-receive"
    # The remote refuses every push after the first: the backlog stops after one part.
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\n[ -e {tmp_path}/once ] && exit 1\ntouch {tmp_path}/once\n")
    hook.chmod(0o755)
    pusher = Pusher(settings, repo)
    with pytest.raises(PushError):
        pusher.push_now()
    assert remote_head(bare) == shas[1] and _pushed(pusher, repo) == shas[1]
    assert pusher.snapshot()["pending_commits"] == 4
    hook.unlink()
    # The remote also got the next part from a push whose bookkeeping was lost (killed before recording).
    git("--git-dir", str(repo.git_dir), "push", "-q", str(bare), f"{shas[4]}:refs/heads/main")
    with capture_logs() as logs:
        result = Pusher(settings, repo).push_now()
    assert result["pushed"] and remote_head(bare) == shas[-1] and _log(bare, "main") == shas[::-1]
    assert [e["new"] for e in pushes(logs) if e["result"] == "ok"][-1] == shas[-1]
    assert any(e["event"] == "push_recorded_late" for e in logs)


@pytest.mark.integration
def test_committer_push_killed_between_parts_resumes(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    """kill -9 of `committer push` while the remote takes the second part; the next run pushes the rest."""
    shas = [commit(repo) for _ in range(6)]
    waiting, go = tmp_path / "waiting", tmp_path / "go"
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\nif [ -e {tmp_path}/first ]; then touch {waiting}\n"
                    f"  while [ ! -e {go} ]; do sleep 0.05; done\nfi\ntouch {tmp_path}/first\n")
    hook.chmod(0o755)
    env = {**os.environ, **ISOLATED, "COMMITTER_PUSH_PART_FILES": "2", "COMMITTER_LOG_FORMAT": "json"}
    args = ["push", "--data-dir", str(repo.data_dir), "--git-dir", str(repo.git_dir), "--remote", f"file://{bare}"]
    proc = subprocess.Popen([sys.executable, "-m", "committer", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(waiting.exists, timeout=30, what="the second part to reach the remote")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        go.touch()
    assert remote_head(bare) == shas[1]  # the first part landed, the second did not
    done = committer(*args, env={"COMMITTER_PUSH_PART_FILES": "2"})
    assert done.returncode == 0, done.stderr
    assert "pushed 4 commit(s)" in done.stdout
    assert remote_head(bare) == shas[-1] and _log(bare, "main") == shas[::-1]
