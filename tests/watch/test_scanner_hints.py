"""The poll observer on a local filesystem: folders with no inotify event and an unchanged mtime go
unstatted, and what raises no event (a write through mmap, or through a hard link in another folder)
is still found within `verify_every` scans."""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

import pytest

from committer.policy.filters import PathFilter
from committer.watch.hints import Hints
from committer.watch.scanner import PollScanner
from tests.conftest import wait_for
from tests.watch.test_scanner import age, found, write

FOLDERS = ("a", "b", "c", "d")


@pytest.fixture
def settled(tmp_path: Path) -> Path:
    """Four folders of two old files each, nothing racy."""
    root = tmp_path / "data"
    for folder in FOLDERS:
        write(root / folder / "one.md", f"{folder} one")
        write(root / folder / "two.md", f"{folder} two")
    for p in [*root.rglob("*.md"), *(root / f for f in FOLDERS), root]:
        age(p)
    newest = max(p.lstat().st_ctime_ns for p in root.rglob("*"))
    wait_for(lambda: time.time_ns() > newest + int(0.1e9), timeout=5, what="ctimes to settle")
    return root


def hinted(root: Path, verify_every: int = 1000) -> PollScanner:
    s = PollScanner(root, PathFilter(root), trust_dir_mtime=True, racy_margin=0.05, verify_every=verify_every)
    s.prime()
    return s


def test_an_unchanged_tree_stats_no_file_and_a_written_folder_alone(settled: Path) -> None:
    s = hinted(settled)
    assert found(s) == set()
    assert s.stats.skipped == 5 and s.stats.files == 8 and s.stats.listed == 0
    path = settled / "b" / "one.md"
    before, folder = path.lstat(), (settled / "b").lstat().st_mtime_ns
    with path.open("r+b") as f:  # in place: same size, mtime put back; b's own mtime does not move
        f.write(b"B")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (settled / "b").lstat().st_mtime_ns == folder
    assert found(s) == {"b/one.md"}  # the write's event made b's files statted: its ctime moved
    assert s.stats.skipped == 4
    ctime = path.lstat().st_ctime_ns
    wait_for(lambda: time.time_ns() > ctime + int(0.1e9), timeout=5, what="the racy window to pass")
    assert found(s) == set()  # b statted once more (its file was racy), then left alone
    assert found(s) == set()
    assert s.stats.skipped == 5


def test_without_hints_every_file_is_statted(settled: Path) -> None:
    s = PollScanner(settled, PathFilter(settled), trust_dir_mtime=True, hints=False)
    s.prime()
    assert found(s) == set()
    assert s.stats.skipped == 0 and s.stats.files == 8


def test_hints_only_where_directory_mtimes_are_trusted(settled: Path) -> None:
    s = PollScanner(settled, PathFilter(settled), trust_dir_mtime=False)
    s.prime()
    assert found(s) == set()
    assert s.stats.skipped == 0 and s.stats.listed == 5


def test_a_write_through_mmap_raises_no_event_and_is_found_by_the_periodic_check(settled: Path) -> None:
    s = hinted(settled, verify_every=3)
    for _ in range(3):
        assert found(s) == set()
    path = settled / "c" / "two.md"
    before = path.lstat()
    with path.open("r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[0:1] = b"C"
        m.flush()
    assert path.lstat().st_mtime_ns != before.st_mtime_ns
    seen: set[str] = set()
    for _ in range(3):  # within verify_every scans, whichever scan checks c
        seen |= found(s)
    assert seen == {"c/two.md"}


def test_a_write_through_a_hard_link_in_another_folder_is_found_by_the_periodic_check(settled: Path) -> None:
    os.link(settled / "a" / "one.md", settled / "b" / "link.md")
    s = hinted(settled, verify_every=3)
    for _ in range(3):
        found(s)
    with (settled / "b" / "link.md").open("ab") as f:  # b gets the event; a holds the same file
        f.write(b" more")
    seen: set[str] = set()
    for _ in range(4):
        seen |= found(s)
    assert seen == {"a/one.md", "b/link.md"}


def test_every_folder_is_checked_once_in_verify_every_scans_spread_over_them(settled: Path) -> None:
    s = hinted(settled, verify_every=4)
    skipped = []
    for _ in range(8):
        found(s)
        skipped.append(s.stats.skipped)
    assert all(n < 5 for n in skipped)  # never all five folders statted in one scan...
    assert sum(5 - n for n in skipped) == 2 * 5  # ...and each of them twice in 8 scans


def test_a_folder_moved_in_renamed_and_replaced_keeps_being_watched(settled: Path, tmp_path: Path) -> None:
    s = hinted(settled)
    outside = tmp_path / "outside"
    write(outside / "x.md", "x")
    outside.rename(settled / "moved-in")
    (settled / "a").rename(settled / "a2")
    assert found(s) == {"moved-in/x.md", "a", "a2/one.md", "a2/two.md"}
    found(s)
    for path in (settled / "moved-in" / "x.md", settled / "a2" / "two.md"):
        size = path.lstat().st_size
        with path.open("r+b") as f:
            f.write(b"Z" * size)
    assert found(s) == {"moved-in/x.md", "a2/two.md"}
    (settled / "a2").rename(settled / "gone")
    (settled / "gone").mkdir(exist_ok=True)
    write(settled / "a2" / "new.md")
    assert found(s) == {"a2/one.md", "a2/two.md", "a2/new.md", "gone/one.md", "gone/two.md"}


def test_a_symlink_swapped_and_a_file_replaced_by_a_folder_in_a_quiet_folder(settled: Path) -> None:
    (settled / "d" / "link").symlink_to("one.md")
    s = hinted(settled)
    found(s)
    (settled / "d" / "link").unlink()
    (settled / "d" / "link").symlink_to("two.md")
    (settled / "d" / "one.md").unlink()
    write(settled / "d" / "one.md" / "inner.md")
    assert found(s) == {"d/link", "d/one.md/inner.md", "d/one.md"}


def test_an_overflowed_queue_makes_every_folder_statted_once(settled: Path) -> None:
    s = hinted(settled)
    found(s)
    hints = s._hints
    assert isinstance(hints, Hints) and hints.watched == 5
    for d in hints._dirs.values():  # what drain() does on IN_Q_OVERFLOW
        d.dirty = True
    found(s)
    assert s.stats.skipped == 0
    found(s)
    assert s.stats.skipped == 5


def test_close_lets_go_of_the_watches_and_a_new_prime_makes_new_ones(settled: Path) -> None:
    s = hinted(settled)
    found(s)
    first = s._hints
    assert first is not None
    s.close()
    assert found(s) == set()  # a new instance, every folder statted once
    assert s.stats.skipped == 0 and s._hints is not None and s._hints is not first
    assert first.closed and not s._hints.closed


def test_a_folder_moved_out_deleted_or_ignored_loses_its_watch(settled: Path, tmp_path: Path) -> None:
    s = hinted(settled)
    found(s)
    hints = s._hints
    assert hints is not None and hints.watched == 5
    (settled / "a").rename(tmp_path / "a-outside")
    for name in ("one.md", "two.md"):
        (settled / "b" / name).unlink()
    (settled / "b").rmdir()
    (settled / ".bmignore").write_text("c/\n")
    assert s.pfilter.refresh()  # what the daemon does when .bmignore changes
    found(s)
    assert hints.watched == 2  # the root and d
    (tmp_path / "a-outside" / "one.md").write_text("written outside the tree")
    assert found(s) == set() and hints.watched == 2


def test_at_most_the_room_given_is_watched_and_the_other_folders_are_statted_every_time(settled: Path) -> None:
    s = hinted(settled)
    assert s._hints is not None
    s._hints.close()
    s._hints = Hints(room=2)  # as when half of fs.inotify.max_user_watches is 2
    found(s)
    assert s._hints.watched == 2
    assert found(s) == set()
    assert s.stats.skipped == 2 and s.stats.files == 8
    for folder in FOLDERS:
        path = settled / folder / "one.md"
        size = path.lstat().st_size
        with path.open("r+b") as f:
            f.write(b"Y" * size)
    assert found(s) == {f"{folder}/one.md" for folder in FOLDERS}


def test_the_room_left_to_other_programs_is_half_the_users_watches() -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    hints = Hints()
    assert hints.room == limit // 2
    hints.close()
