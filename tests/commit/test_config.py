"""The commit step is given its own small config, not the whole settings."""

from __future__ import annotations

from committer.commit.config import CommitConfig, commit_config
from committer.commit.held import HeldFiles
from committer.commit.holds import Holds
from committer.commit.lfspaths import LfsPaths
from committer.commit.step import CommitStep
from committer.core.settings import load_settings
from committer.git.setup import open_repository
from committer.policy.filters import PathFilter
from tests.conftest import Layout, commit_count, git


def test_the_commit_config_is_the_settings_the_commit_step_uses() -> None:
    settings = load_settings(env={"COMMITTER_AUTHOR_NAME": "Ada", "COMMITTER_MAX_BATCH_FILES": "7",
                                  "COMMITTER_MAX_DELETE": "3", "COMMITTER_LFS_THRESHOLD": "0"})
    assert commit_config(settings) == CommitConfig(author=("Ada", "committer@localhost"), max_delete=3,
                                                   max_batch_files=7, lfs_threshold=0)
    assert commit_config(load_settings()) == CommitConfig()


def test_a_commit_step_made_from_a_config_alone_commits_with_it(layout: Layout) -> None:
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir)})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    repo = open_repository(settings, pfilter)
    config = CommitConfig(author=("Bo", "bo@example.org"), max_batch_files=2)
    step = CommitStep(config, repo, pfilter, Holds(config.max_delete, repo, pfilter), HeldFiles(), LfsPaths(repo))
    for i in range(5):
        (layout.data / f"{i}.md").write_text(str(i))
    assert step.commit([""]).sha is not None
    assert commit_count(layout.git_dir) == 3  # 2 + 2 + 1: max_batch_files came from the config
    assert git(layout.git_dir, "log", "-1", "--format=%an <%ae>").strip() == "Bo <bo@example.org>"
