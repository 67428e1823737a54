"""kill -9 in the middle of a pull: after the files are written and before the branch moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Layout, committer, git
from tests.faults.harness import Daemons, GitWrapper, fsck, ref_sha, settle, sigkill, stale_locks, wait_until
from tests.sync.test_pull import Clone

pytestmark = [pytest.mark.faults, pytest.mark.integration]
FILES = 300


def test_a_pull_killed_before_the_branch_moves_loses_and_reverts_nothing(
    layout: Layout, daemons: Daemons, git_wrapper: GitWrapper, remote_url: str, tmp_path: Path
) -> None:
    for i in range(FILES):
        (layout.data / f"n{i:03}.md").write_text(f"note {i}\n")
    env = {**layout.env, "COMMITTER_REMOTE": remote_url, "COMMITTER_PUSH_INTERVAL": "200ms"}
    assert committer("init", env=env).returncode == 0
    clone = Clone(remote_url, tmp_path / "clone")
    changed = {f"n{i:03}.md": f"note {i}, edited elsewhere\n" for i in range(0, FILES, 2)}
    remote_head = clone.commit({**changed, "n001.md": None, "added.md": "added elsewhere\n"})

    # The pull writes every file, then moves the branch with update-ref: held back here, then killed.
    git_wrapper.delay("update-ref", 60)
    daemon = daemons.start(layout, "--pull-interval", "1h", env={**env, **git_wrapper.env()})
    wait_until(lambda: (layout.data / "added.md").exists() and not (layout.data / "n001.md").exists()
               and git_wrapper.calls("update-ref"), 30, "the pull's files written, update-ref started")
    local_before = ref_sha(layout.git_dir)
    assert local_before != remote_head
    sigkill(daemon)
    git_wrapper.clear()

    # Restarted: the written files are committed as local content, then merged with the remote head.
    again = daemons.start(layout, "--pull-interval", "1h", env=env)
    wait_until(lambda: remote_head in git(layout.git_dir, "rev-list", "main").split()
               and ref_sha(Path(remote_url.removeprefix("file://"))) == ref_sha(layout.git_dir), 60,
               "the remote head merged and the result pushed")
    expected = settle(layout)
    for name, text in changed.items():
        assert (layout.data / name).read_text() == text
    assert not (layout.data / "n001.md").exists()
    assert (layout.data / "added.md").read_text() == "added elsewhere\n"
    assert len(expected) == FILES  # 300 - 1 deleted + 1 added
    assert not again.events("git_conflict") and not list(layout.data.glob("*conflict from*"))
    assert again.stop() == 0
    assert not stale_locks(layout.git_dir)
    result = fsck(layout.git_dir)
    assert result.ok, str(result)
