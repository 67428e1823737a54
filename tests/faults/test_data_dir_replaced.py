"""The data directory is replaced under the daemon (a bucket remounted: same path, another inode).

The observer watching the old directory is as good as dead: nothing in the new one reaches it. The
daemon notices (it checks every 5 s), logs `data_dir_replaced`, watches the new directory and
reconciles, so both what the new directory brought and later changes in it are committed.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.conftest import Layout
from tests.faults.harness import Daemons, disk_tree, fsck, head_tree, settle

pytestmark = [pytest.mark.faults, pytest.mark.integration]
CHECK_EVERY = 5.0  # the daemon's health check interval (README: checked every 5 seconds)


def test_replaced_data_directory_is_watched_anew(layout: Layout, daemons: Daemons) -> None:
    data = layout.data
    (data / "README.md").write_text("kept\n")
    (data / "notes").mkdir()
    for i in range(5):
        (data / "notes" / f"n{i}.md").write_text(f"note {i}\n")
    daemon = daemons.start(layout)
    settle(layout)
    old_inode = os.stat(data).st_ino

    # the remount: the old directory goes away, another one with changed content takes its path
    old = layout.root / "data.unmounted"
    staged = layout.root / "data.new"
    shutil.copytree(data, staged, symlinks=True)
    (staged / "notes" / "n0.md").write_text("changed on the other side\n")
    (staged / "notes" / "n1.md").unlink()
    (staged / "from-the-bucket.md").write_text("new on the other side\n")
    replaced_at = time.monotonic()
    os.rename(data, old)
    os.rename(staged, data)
    assert os.stat(data).st_ino != old_inode
    (old / "ghost.md").write_text("written into the old directory after the swap\n")

    event = daemon.wait_event("data_dir_replaced", timeout=CHECK_EVERY + 10)[0]
    noticed = time.monotonic() - replaced_at
    print(f"\ndata_dir_replaced logged {noticed:.1f}s after the swap ({event.get('action')})")
    assert event["level"] == "warning"
    settle(layout, timeout=20)  # the reconcile: n0 changed, n1 deleted, from-the-bucket.md added
    tree = head_tree(layout.git_dir)
    assert "notes/n1.md" not in tree and "from-the-bucket.md" in tree and "ghost.md" not in tree

    # the new directory is watched: a change is committed well before any periodic reconcile
    start = time.monotonic()
    (data / "notes" / "later.md").write_text("after the remount\n")
    (data / "deep" / "er").mkdir(parents=True)
    (data / "deep" / "er" / "x.md").write_text("in a new subdirectory\n")
    settle(layout, timeout=10)
    print(f"a change in the new directory was committed {time.monotonic() - start:.2f}s after it")
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0, daemon.output()
    assert head_tree(layout.git_dir).keys() == disk_tree(data).keys()
    assert fsck(layout.git_dir).ok
