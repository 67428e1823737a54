"""The poll observer holds a changed file only while it was written less than `quiet` seconds ago (the poll
interval: it may still be written), looks at such files again between scans, and lets go of them as soon as
they are left alone that long."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from committer.policy.filters import PathFilter
from committer.watch.pollthread import PollThread
from committer.watch.scanner import PollScanner
from tests.conftest import wait_for
from tests.watch.test_scanner import age, write


def scanner(root: Path, margin: float) -> PollScanner:
    s = PollScanner(root, PathFilter(root), quiet=margin)
    s.prime()
    return s


def left_alone(path: Path, margin: float) -> None:
    st = path.lstat()
    newest = max(st.st_mtime_ns, st.st_ctime_ns)
    wait_for(lambda: time.time_ns() > newest + int(margin * 1e9) + int(0.05e9), timeout=10,
             what="the file to be older than the margin")


def test_a_file_just_written_is_fresh_until_left_alone_for_the_margin(tmp_path: Path) -> None:
    s = scanner(tmp_path, 0.3)
    path = write(tmp_path / "new.md")
    assert s.scan() == ["new.md"]
    assert s.changing == ["new.md"] and s.fresh == ["new.md"]
    assert s.settle() is False and s.fresh == ["new.md"]  # written just now: still held
    assert 0 < s.settle_in <= 0.3  # the next look is worth taking when it is 0.3 s old, not before
    left_alone(path, 0.3)
    assert s.settle() is True and s.fresh == []
    assert s.changing == ["new.md"]  # what the scan saw changed is kept for the temp-name bookkeeping


def test_a_file_written_before_the_margin_is_not_held_at_all(tmp_path: Path) -> None:
    s = scanner(tmp_path, 0.3)
    path = write(tmp_path / "done.md")
    left_alone(path, 0.3)
    assert s.scan() == ["done.md"]
    assert s.changing == ["done.md"] and s.fresh == []


def test_a_fresh_file_stays_fresh_over_a_scan_that_sees_it_unchanged(tmp_path: Path) -> None:
    s = scanner(tmp_path, 5.0)
    write(tmp_path / "slow.md", "part one")
    assert s.scan() == ["slow.md"]
    assert s.scan() == [] and s.fresh == ["slow.md"]  # unchanged since, but written less than 5 s ago
    assert s.racy_count == 1  # the racy window (3 s) is its own: content hashing, not holding
    write(tmp_path / "slow.md", "part one, part two")
    assert s.scan() == ["slow.md"] and s.fresh == ["slow.md"]


def test_a_fresh_file_deleted_or_its_folder_renamed_is_let_go(tmp_path: Path) -> None:
    s = scanner(tmp_path, 5.0)
    write(tmp_path / "a.md")
    write(tmp_path / "sub" / "b.md")
    assert sorted(s.scan()) == ["a.md", "sub/b.md"]
    assert sorted(s.fresh) == ["a.md", "sub/b.md"]
    (tmp_path / "a.md").unlink()
    (tmp_path / "sub").rename(tmp_path / "sub2")
    assert s.settle() is True and s.fresh == []


def test_a_folder_on_the_way_turned_into_a_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "b.md")
    root = tmp_path / "data"
    root.mkdir()
    s = scanner(root, 5.0)
    write(root / "sub" / "b.md")
    assert s.scan() == ["sub/b.md"]
    (root / "sub").rename(root / "away")
    (root / "sub").symlink_to(outside)
    assert s.settle() is True and s.fresh == []


def test_quiet_and_the_racy_margin_are_separate(tmp_path: Path) -> None:
    s = PollScanner(tmp_path, PathFilter(tmp_path), quiet=0.0, racy_margin=5.0)
    s.prime()
    write(tmp_path / "new.md")
    assert s.scan() == ["new.md"]
    assert s.fresh == [] and s.racy_count == 1  # not held, but its content is hashed while racy


def test_the_thread_lets_go_between_two_scans(tmp_path: Path) -> None:
    class Counting(PollScanner):
        scans = 0

        def scan(self) -> list[str]:
            self.scans += 1
            return super().scan()

    for p in (write(tmp_path / "old.md"), tmp_path):
        age(p)
    s = Counting(tmp_path, PathFilter(tmp_path), quiet=7.5)
    got: list[tuple[list[str], int, list[str]]] = []
    done = threading.Event()

    def on_paths(paths: list[str]) -> None:
        got.append((paths, s.scans, list(s.fresh)))
        if not paths:
            done.set()

    thread = PollThread(s, 5.0, on_paths)
    thread.start()
    write(tmp_path / "new.md")  # the first scan, 5 s later, finds it written less than 7.5 s ago
    assert done.wait(20)
    thread.stop()
    assert got[0] == (["new.md"], 1, ["new.md"])
    assert got[1] == ([], 1, [])  # let go about 7.5 s after the write, before the second scan (at 10 s)
