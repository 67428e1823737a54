"""Beside rclone bisync, as SPEC-9 runs it: a local folder <-> `rclone bisync` <-> the data directory, the daemon
committing, pushing to and pulling from the loopback git server, a second clone writing to the remote. Edits on
all three sides, an rclone conflict rename among them: no loop, no version lost, no commit undoing another."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from bench.bisync import Rig, soak
from tests.gitserver import GitHTTPServer, git_server  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")]

NOTES = [f"notes/{name}.md" for name in "abcdefg"]


def rig_for(server: GitHTTPServer, root: Path) -> Rig:
    header = "Authorization: Basic " + base64.b64encode(f"x-access-token:{server.token}".encode()).decode()
    clone_env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": header}
    return Rig(root, server.url, env={"COMMITTER_TOKEN": server.token}, clone_env=clone_env)


def test_edits_on_all_three_sides_settle_without_loop_or_loss(
    git_server: GitHTTPServer, tmp_path: Path  # noqa: F811
) -> None:
    rig = rig_for(git_server, tmp_path)
    try:
        rig.start(NOTES)
        first = rig.commit_count()
        rig.edit("local", "notes/a.md")  # one side each: carried everywhere
        rig.edit("data", "notes/b.md")
        rig.edit("remote", "notes/c.md")
        rig.edit("local", "notes/d.md")  # both folders: rclone renames to ..path1/..path2, the daemon folds
        rig.edit("data", "notes/d.md", newer=2.0)
        rig.round()
        rig.edit("remote", "notes/e.md")  # the local folder and the remote, other lines: merged
        rig.edit("local", "notes/e.md")
        rig.edit("remote", "notes/f.md")  # the data directory and the remote
        rig.edit("data", "notes/f.md")
        rig.edit("remote", "notes/d.md")  # the folded note again, from the remote
        rig.round()
        settled = rig.settle()
        assert settled <= 2, settled
        assert rig.lost() == [], "versions in no commit"
        assert rig.undone() == [], "a commit brought a note back to an earlier content"
        assert rig.empty() == [], "a commit that changes nothing"
        assert rig.left() == [], "a note left its path"
        assert rig.bisync_failures == []
        kinds = rig.conflicts()
        assert kinds["rclone renamed"] == 1 and kinds["bisync"] == 1, kinds
        tree = rig.tree()
        assert not any("..path" in p for p in tree)
        assert sum("(conflict from bisync, " in p for p in tree) == 1
        local_only = rig.versions[3][2]  # d.md as the local folder had it: the older side, now the copy
        assert local_only in tree.values()
        assert rig.commit_count() - first <= 2 * rig.edits, "commits per edit"
    finally:
        rig.stop()


@pytest.mark.slow
def test_a_soak_of_random_edits_loses_nothing_and_settles(
    git_server: GitHTTPServer, tmp_path: Path  # noqa: F811
) -> None:
    rig = rig_for(git_server, tmp_path)
    notes = NOTES[:5]
    try:
        rig.start(notes)
        result = soak(rig, notes, rounds=25, mode="after-bisync", seed=7, period=0.0)
        found = {"undone": rig.undone(), "empty": rig.empty(), "left": rig.left()}
    finally:
        rig.stop()
    said = f"{result}\n{found}"
    assert result["lost"] == result["undone"] == result["empty commits"] == result["left their path"] == 0, said
    assert result["bisync failures"] == 0 and result["rounds to settle"] <= 2, result
