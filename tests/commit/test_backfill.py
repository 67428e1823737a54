"""The first commit of a large directory: the index written from the stat data the commit read."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from committer.commit.step import Sizes
from committer.git import index as gitindex
from committer.git.objects import blob_id
from tests.commit.test_pipeline import make_pipeline
from tests.conftest import Layout, committer, git, wait_for


def _notes(layout: Layout, count: int) -> list[Path]:
    paths = [layout.data / f"n{i}.md" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_text(f"note {i}\n")
    return paths


def _old_enough(paths: list[Path]) -> bool:
    newest = max(max(p.lstat().st_mtime_ns, p.lstat().st_ctime_ns) for p in paths)
    return time.time_ns() - newest > gitindex.RACY_NS


def _debug_listing(git_dir: Path, data: Path, index: Path) -> str:
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", f"--work-tree={data}", "ls-files", "--debug"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout


@pytest.mark.integration
def test_init_writes_the_index_git_itself_would_write(layout: Layout) -> None:
    written = []
    for i in range(120):
        path = layout.data / f"dir{i % 4}" / f"note {i}.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"note {i}\n" * (i + 1))
        written.append(path)
    (layout.data / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (layout.data / "run.sh").chmod(0o755)
    os.symlink("dir0/note 0.md", layout.data / "link.md")
    (layout.data / "dir1" / "ü é.md").write_text("non-ASCII name")
    written += [layout.data / "run.sh", layout.data / "dir1" / "ü é.md"]
    wait_for(lambda: _old_enough(written), timeout=5, what="files older than the racy window")

    assert committer("init", *layout.args()).returncode == 0
    counts = dict(line.split(": ") for line in git(layout.git_dir, "count-objects", "-v").splitlines())
    assert (counts["count"], counts["packs"]) == ("0", "1")  # one pack: a first push sends it as it is
    ours = _debug_listing(layout.git_dir, layout.data, layout.git_dir / "index")
    assert " mtime: 0:0" not in ours  # real stat data, not entries left for git to re-check
    reference = layout.root / "reference-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(reference)}
    for args in (["read-tree", "--reset", "HEAD"], ["update-index", "-q", "--refresh"]):
        subprocess.run(["git", f"--git-dir={layout.git_dir}", f"--work-tree={layout.data}", *args],
                       check=True, env=env)
    assert ours == _debug_listing(layout.git_dir, layout.data, reference)
    status = ["--work-tree", str(layout.data), "status", "--porcelain", "--untracked-files=all"]
    assert git(layout.git_dir, *status) == ""

    (layout.data / "dir2" / "note 2.md").write_text("NOTE 2\n" * 3)  # same size, new content
    changed = git(layout.git_dir, *status)
    assert changed.startswith(" M ") and "dir2/note 2.md" in changed and len(changed.splitlines()) == 1


def test_an_index_hint_that_does_not_match_head_is_left_for_git_to_check(tmp_path: Path) -> None:
    st = os.stat(__file__)
    data = Path(__file__).read_bytes()
    good = gitindex.hint(st, "100644", blob_id(data))
    stale = gitindex.hint(st, "100644", blob_id(data + b"changed"))
    entries = [("a.py", ("100644", blob_id(data))), ("b.py", ("100644", blob_id(data)))]
    used = gitindex.write(tmp_path, iter(entries), iter([("a.py", good), ("b.py", stale)]))
    assert used == 1
    index = (tmp_path / "index").read_bytes()
    assert index[:12] == b"DIRC" + (2).to_bytes(4, "big") + (2).to_bytes(4, "big")
    assert index[12:12 + 40] == good[:40]  # a.py: the stat data of the read
    second = 12 + ((62 + len(b"a.py") + 8) & ~7)  # header, then 8-byte aligned entries
    assert index[second:second + 24] == bytes(24)  # b.py: no stat data, git re-reads the file
    assert hashlib.sha1(index[:-20]).digest() == index[-20:]
    (tmp_path / "index.lock").write_bytes(b"")
    assert gitindex.write(tmp_path, iter(entries), iter(())) is None  # git holds the lock: nothing written


def test_the_first_commit_hands_its_stat_data_to_the_index_and_git_reads_no_file_again(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _notes(layout, 50)
    (layout.data / "fresh.md").write_text("written just before the read")
    wait_for(lambda: _old_enough(paths), timeout=5, what="files older than the racy window")
    os.utime(layout.data / "fresh.md")  # changed a moment ago: its stat data is not trusted
    used: list[int | None] = []
    write = gitindex.write

    def counting(*args: object) -> int | None:
        count = write(*args)  # type: ignore[arg-type]
        used.append(count)
        return count

    monkeypatch.setattr(gitindex, "write", counting)
    pipeline = make_pipeline(layout)
    result = pipeline.commit([""], op="init")
    assert result.sha is not None
    pipeline.repo.sync_index(result.changes.hints())
    assert used == [50]
    assert git(layout.git_dir, "--work-tree", str(layout.data), "status", "--porcelain") == ""


def test_a_first_commit_larger_than_the_record_lists_in_memory_streams_its_hints(layout: Layout) -> None:
    paths = _notes(layout, 300)
    wait_for(lambda: _old_enough(paths), timeout=5, what="files older than the racy window")
    pipeline = make_pipeline(layout, Sizes(records_in_memory=25))
    result = pipeline.commit([""], op="init")
    assert result.sha is not None
    assert result.changes.stat_hints is not None and result.changes.stat_hints._file is not None  # on disk
    pipeline.repo.sync_index(result.changes.hints())
    result.changes.close()
    listing = _debug_listing(layout.git_dir, layout.data, layout.git_dir / "index")
    assert " mtime: 0:0" not in listing
    assert git(layout.git_dir, "--work-tree", str(layout.data), "status", "--porcelain") == ""
