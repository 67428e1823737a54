"""The first commit records that the ignore rules were applied: the next start skips a pass over HEAD."""

from __future__ import annotations

from committer.git.layout import state_dir
from tests.conftest import Layout, committer


def test_init_records_the_rules_it_applied(layout: Layout) -> None:
    (layout.data / "a.md").write_text("kept")
    (layout.data / "b.tmp").write_text("ignored")
    (layout.data / ".bmignore").write_text("*.tmp\n")
    assert committer("init", env=layout.env).returncode == 0
    checked = state_dir(layout.git_dir) / "rules-checked"
    assert checked.is_file() and checked.read_text()
