"""A push is recorded as pushed only when the remote's branch really holds what was sent: a remote that
answers ok and puts its branch back (a hook, a proxy) leaves the commits pending."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from committer.git.repo import GitRepo
from committer.sync.errors import PushError
from committer.sync.pusher import Pusher
from tests.gitserver import git
from tests.sync.test_push_remote import bare, commit, remote_head, repo, settings_for

__all__ = ["bare", "repo"]  # fixtures

# Runs after the refs moved and after git told the client ok: it puts every pushed ref back.
LIAR = """#!/bin/sh
while read old new ref; do
    if [ "$old" = 0000000000000000000000000000000000000000 ]; then
        git update-ref -d "$ref"
    else
        git update-ref "$ref" "$old"
    fi
done
"""


# Someone else's commit lands on top of ours before we read the branch back.
SOMEONE_ELSE = """#!/bin/sh
export GIT_AUTHOR_NAME=o GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=o GIT_COMMITTER_EMAIL=o@x
while read old new ref; do
    c=$(git commit-tree "$new^{tree}" -p "$new" -m later </dev/null) && git update-ref "$ref" "$c"
done
"""


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMITTER_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def lie(remote: Path) -> None:
    hook = remote / "hooks" / "post-receive"
    hook.write_text(LIAR)
    hook.chmod(0o755)


def test_a_push_answered_ok_whose_branch_did_not_move_is_not_recorded(repo: GitRepo, bare: Path) -> None:
    first = commit(repo)
    sent: list[dict[str, object]] = []
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo, emit=sent.append)
    assert pusher.push_now()["pushed"] and remote_head(bare) == first
    lie(bare)
    second = commit(repo)
    del sent[:]
    with capture_logs() as logs, pytest.raises(PushError) as failed:
        pusher.push_now()
    assert remote_head(bare) == first
    assert "not at " + second[:12] in failed.value.detail
    assert pusher.push is not None
    assert git("--git-dir", str(repo.git_dir), "rev-parse", pusher.push.pushed_ref) == first
    assert pusher.snapshot()["pending_commits"] == 1
    assert [e for e in logs if e["event"] == "push_not_confirmed"]  # (no event of its own: told as a failure)
    [told] = sent
    assert told["event"] == "push_failed" and told["new"] == second and told["message"] == failed.value.detail


def test_a_first_push_the_remote_throws_away_is_not_recorded(repo: GitRepo, bare: Path) -> None:
    lie(bare)
    commit(repo)
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo)
    with pytest.raises(PushError) as failed:
        pusher.push_now()
    assert remote_head(bare) is None
    assert "still does not exist" in failed.value.detail
    assert pusher.snapshot()["pending_commits"] == 1


def test_a_remote_that_moved_on_past_what_was_pushed_confirms_it(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    """Someone pushing on top right after us is not a lie: our commit is in the remote's history."""
    hook = bare / "hooks" / "post-receive"
    hook.write_text(SOMEONE_ELSE)
    hook.chmod(0o755)
    sent = commit(repo)
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo)
    assert pusher.push_now()["pushed"]
    assert remote_head(bare) != sent
    assert pusher.snapshot()["pending_commits"] == 0
