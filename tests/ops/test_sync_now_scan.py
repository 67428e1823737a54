"""The daemon's side of a sync: one scan of the data directory serves every sync asked before it began."""

from __future__ import annotations

import time

from committer.commit.committer import Committer
from committer.core.settings import Settings
from committer.git.setup import open_repository
from committer.ops.barrier import take_pending
from committer.policy.filters import PathFilter
from tests.conftest import Layout, tree_files


def test_a_sync_asked_before_the_last_scan_began_shares_it(layout: Layout) -> None:
    settings = Settings(data_dir=layout.data, git_dir=layout.git_dir, remote="https://example.com/me/notes.git")
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    committer = Committer(settings, open_repository(settings, pfilter), pfilter)
    (layout.data / "a.md").write_text("a\n")
    asked = time.time()
    first = take_pending(committer, asked)
    assert first["commit"] is not None and tree_files(layout.git_dir, first["commit"]) == {"a.md"}
    assert first["remote"] == "https://example.com/me/notes.git"
    assert str(first["pushed_ref"]).startswith("refs/committer/pushed/")
    assert first["in_the_way"] == {"hold": None, "files": [], "file_count": 0}

    (layout.data / "b.md").write_text("b\n")  # after the scan: a caller that asked before it shares it
    assert take_pending(committer, asked)["commit"] == first["commit"]
    later = take_pending(committer, time.time())  # asked after it: a scan of its own
    assert tree_files(layout.git_dir, later["commit"]) == {"a.md", "b.md"}
