"""The poll observer's scanner on real directories: what one scan reports after each kind of change."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from committer.policy.filters import PathFilter
from committer.watch.mounts import filesystem_type
from committer.watch.pollthread import PollThread
from committer.watch.scanner import PollScanner
from tests.conftest import ROOT, wait_for

# Every behaviour holds whether directory mtimes are trusted (listings skipped) or not (as on FUSE).
TRUST = pytest.mark.parametrize("trust", [False, True], ids=["list-all", "trust-dir-mtime"])


def write(path: Path, data: str | bytes = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def scanner(root: Path, trust: bool = False, **kwargs: object) -> PollScanner:
    s = PollScanner(root, PathFilter(root), trust_dir_mtime=trust, **kwargs)  # type: ignore[arg-type]
    s.prime()
    return s


def found(s: PollScanner) -> set[str]:
    paths = s.scan()
    assert len(paths) == len(set(paths)), f"reported twice: {paths}"
    return set(paths)


def age(path: Path, seconds: float = 100.0) -> None:
    """Move mtime (not ctime) back, as if the file had been written long ago."""
    st = path.lstat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)), follow_symlinks=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write(root / "a.md", "alpha")
    write(root / "notes" / "b.md", "bravo")
    write(root / "notes" / "deep" / "c.md", "charlie")
    return root


# ---- basics -----------------------------------------------------------------------------------


@TRUST
def test_prime_reports_nothing_and_an_unchanged_tree_nothing_either(tree: Path, trust: bool) -> None:
    s = PollScanner(tree, PathFilter(tree), trust_dir_mtime=trust)
    assert not s.primed
    s.prime()
    assert s.primed and s.stats.files == 3 and s.stats.dirs == 3
    assert found(s) == set()
    assert found(s) == set()


def test_scan_before_prime_primes(tree: Path) -> None:
    s = PollScanner(tree, PathFilter(tree))
    assert s.scan() == []
    write(tree / "new.md")
    assert found(s) == {"new.md"}


@TRUST
def test_added_files_and_the_files_of_a_new_directory(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    write(tree / "new.md")
    write(tree / "notes" / "deep" / "new.md")
    write(tree / "fresh" / "x" / "y.md")
    write(tree / "fresh" / "z.md")
    (tree / "empty").mkdir()
    assert found(s) == {"new.md", "notes/deep/new.md", "fresh/x/y.md", "fresh/z.md"}
    assert found(s) == set()


@TRUST
def test_modified_by_size(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    write(tree / "notes" / "deep" / "c.md", "charlie, longer")
    assert found(s) == {"notes/deep/c.md"}
    assert found(s) == set()


@TRUST
def test_modified_same_size_different_mtime(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust, check_stat="minimal")
    path = tree / "notes" / "b.md"
    before = path.stat()
    write(path, "BRAVO")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    assert found(s) == {"notes/b.md"}


@TRUST
def test_deleted_file_and_deleted_directory_as_itself(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    (tree / "a.md").unlink()
    shutil.rmtree(tree / "notes")
    assert found(s) == {"a.md", "notes"}
    assert found(s) == set()


@TRUST
def test_renamed_file_reports_both_names(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    (tree / "a.md").rename(tree / "notes" / "a-moved.md")
    (tree / "notes" / "b.md").rename(tree / "notes" / "b2.md")
    assert found(s) == {"a.md", "notes/a-moved.md", "notes/b.md", "notes/b2.md"}


@TRUST
def test_renamed_directory_reports_the_old_directory_and_the_new_files(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    (tree / "notes").rename(tree / "papers")
    assert found(s) == {"notes", "papers/b.md", "papers/deep/c.md"}
    assert found(s) == set()


@TRUST
def test_a_file_renamed_over_another_of_the_same_size_and_mtime(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    target = tree / "a.md"
    old = target.stat()
    other = write(tree / "tmp-save", "ALPHA")  # an editor's atomic save
    os.utime(other, ns=(old.st_atime_ns, old.st_mtime_ns))
    other.replace(target)
    assert found(s) == {"a.md"}  # a new inode (and ctime): the stat shows it even with the same size and mtime


@TRUST
def test_directory_replaced_by_a_file_and_a_file_by_a_directory(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    shutil.rmtree(tree / "notes" / "deep")
    write(tree / "notes" / "deep", "now a file")
    (tree / "a.md").unlink()
    write(tree / "a.md" / "inside.md")
    assert found(s) == {"notes/deep", "a.md", "a.md/inside.md"}
    assert found(s) == set()
    (tree / "notes" / "deep").unlink()
    write(tree / "notes" / "deep" / "c.md", "charlie")
    assert found(s) == {"notes/deep", "notes/deep/c.md"}


@TRUST
def test_a_file_vanishing_and_coming_back_between_scans(tree: Path, trust: bool) -> None:
    s = scanner(tree, trust)
    (tree / "a.md").unlink()
    assert found(s) == {"a.md"}
    write(tree / "a.md", "alpha again")
    assert found(s) == {"a.md"}


# ---- racy entries: a same-size rewrite inside one timestamp tick -------------------------------


@TRUST
@pytest.mark.parametrize("check_stat", ["default", "minimal"])
def test_same_size_same_mtime_rewrite_is_found(tmp_path: Path, trust: bool, check_stat: str) -> None:
    """The stat cannot show it (with "minimal", ctime does not help either): the content does."""
    path = write(tmp_path / "f.md", "version 1")
    s = scanner(tmp_path, trust, check_stat=check_stat)
    assert s.racy_count == 1  # written just now: its content was hashed at prime
    before = path.stat()
    write(path, "version 2")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert found(s) == {"f.md"}  # the first scan after the rewrite
    assert found(s) == set()  # still racy, hashed again, unchanged: not reported again


@TRUST
def test_racy_file_on_a_one_second_filesystem(tmp_path: Path, trust: bool) -> None:
    """Timestamps truncated to the second (FUSE, SMB): three same-size versions in the same second."""
    path = tmp_path / "f.md"

    def write_in_second(text: str, second: int) -> None:
        write(path, text)
        os.utime(path, ns=(second * 10**9, second * 10**9))

    second = int(time.time())
    write_in_second("v1", second)
    s = scanner(tmp_path, trust, check_stat="minimal")
    write_in_second("v2", second)
    assert found(s) == {"f.md"}
    assert found(s) == set()
    write_in_second("v3", second)
    assert found(s) == {"f.md"}


def test_an_unchanged_racy_file_is_not_reported_and_ages_out(tmp_path: Path) -> None:
    """With a 0.2 s margin: once a scan starts 0.2 s after the file's mtime and ctime, it is no longer
    hashed; the wait crosses that boundary (a condition with a deadline, not a fixed sleep)."""
    path = write(tmp_path / "f.md", "stable")
    s = scanner(tmp_path, racy_margin=0.2)
    assert s.racy_count == 1 and s.stats.hashed == 1
    st = path.stat()
    settled = max(st.st_mtime_ns, st.st_ctime_ns) + int(0.2e9)
    assert found(s) == set()
    wait_for(lambda: time.time_ns() > settled + int(0.05e9), timeout=5, what="the racy window to pass")
    assert found(s) == set()
    assert s.racy_count == 0
    assert found(s) == set() and s.stats.hashed == 0  # steady state: no file is read
    write(path, "change")  # a write now gets a later mtime: the stat alone shows it
    assert found(s) == {"f.md"}


def test_an_old_file_rewritten_in_the_same_second_is_found_in_default_mode(tmp_path: Path) -> None:
    """mtime put back by hand (touch -r, rsync -t --inplace): ctime moves on, and is in the fingerprint."""
    path = write(tmp_path / "f.md", "version 1")
    age(path)
    old = path.stat()
    s = scanner(tmp_path, racy_margin=0.0)
    wait_for(lambda: time.time_ns() > old.st_ctime_ns + 20_000_000, timeout=5, what="the ctime tick to pass")
    write(path, "version 2")
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert path.stat().st_ctime_ns != old.st_ctime_ns
    assert found(s) == {"f.md"}


def test_a_large_racy_file_is_reported_again_instead_of_hashed(tmp_path: Path) -> None:
    path = write(tmp_path / "big.bin", b"0" * 4096)
    s = scanner(tmp_path, racy_hash_limit=1024)
    assert s.racy_count == 1
    before = path.stat()
    write(path, b"1" * 4096)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert "big.bin" in found(s)  # reported while racy; the daemon compares it with HEAD


def test_a_racy_symlink_retargeted_with_the_same_length(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to("target-a")
    s = scanner(tmp_path, check_stat="minimal")
    before = link.lstat()
    link.unlink()
    link.symlink_to("target-b")
    os.utime(link, ns=(before.st_atime_ns, before.st_mtime_ns), follow_symlinks=False)
    assert found(s) == {"link"}


@pytest.mark.parametrize("trust", [True])
def test_a_racy_directory_is_listed_again(tmp_path: Path, trust: bool) -> None:
    """Directory listings skipped on unchanged mtime: a name added in the same tick is still found."""
    d = tmp_path / "d"
    write(d / "a.md")
    s = scanner(tmp_path, trust)
    before = d.stat()
    write(d / "b.md")
    os.utime(d, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if in the same tick
    assert found(s) == {"d/b.md"}


def test_trusted_directory_mtimes_spare_the_listings_once_settled(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.md")
    write(tmp_path / "e" / "b.md")
    for p in (tmp_path / "d" / "a.md", tmp_path / "e" / "b.md", tmp_path / "d", tmp_path / "e", tmp_path):
        age(p)
    newest_ctime = max(p.stat().st_ctime_ns for p in tmp_path.rglob("*"))
    wait_for(lambda: time.time_ns() > newest_ctime + int(0.1e9), timeout=5, what="ctimes to settle")
    s = scanner(tmp_path, True, racy_margin=0.05)
    assert found(s) == set()
    assert s.stats.listed == 0 and s.stats.files == 2 and s.stats.dirs == 3
    write(tmp_path / "d" / "new.md")
    assert found(s) == {"d/new.md"}
    assert s.stats.listed == 1  # d alone: neither the root nor e


# ---- what is never reported or descended ------------------------------------------------------


class SpyFilter(PathFilter):
    """Records every path the scanner asks about."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.asked: list[str] = []

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        self.asked.append(rel)
        return super().ignored(rel, is_dir)


@TRUST
def test_litter_is_never_reported_and_ignored_directories_never_descended(tmp_path: Path, trust: bool) -> None:
    """A new file kept out by a listed rule (.bmignore's *.log) is reported, for held_files; litter is not."""
    write(tmp_path / ".bmignore", "build/\n*.log\n")
    write(tmp_path / "build" / "out" / "x.bin")
    write(tmp_path / ".git" / "HEAD", "ref: refs/heads/main")
    write(tmp_path / "keep.md")
    spy = SpyFilter(tmp_path)
    s = PollScanner(tmp_path, spy, trust_dir_mtime=trust)
    s.prime()
    write(tmp_path / "swap.md.swp")
    write(tmp_path / "run.log")
    write(tmp_path / "build" / "out" / "y.bin")
    write(tmp_path / ".git" / "index")
    write(tmp_path / "keep.md", "changed")
    (tmp_path / "build" / "later").mkdir()
    assert found(s) == {"keep.md", "run.log"}
    assert found(s) == set()  # reported once, not at every scan
    assert not [p for p in spy.asked if p.startswith(("build/", ".git/"))]
    assert s.stats.dirs == 1


def test_ignore_rules_changing_reveal_and_hide_paths(tmp_path: Path) -> None:
    write(tmp_path / ".bmignore", "build/\n")
    write(tmp_path / "build" / "x.bin")
    write(tmp_path / "notes" / "a.log")
    pfilter = PathFilter(tmp_path)
    s = PollScanner(tmp_path, pfilter)
    s.prime()
    write(tmp_path / ".bmignore", "*.log\n")
    assert found(s) == {".bmignore"}
    assert pfilter.refresh()  # what the daemon does when .bmignore is among the paths
    # build/x.bin is no longer ignored: new to the scanner; notes/a.log is kept out now: the daemon lists it
    assert found(s) == {"build/x.bin", "notes/a.log"}
    write(tmp_path / "notes" / "a.log", "changed")
    assert found(s) == set()


@TRUST
def test_nested_repositories_are_not_descended(tmp_path: Path, trust: bool) -> None:
    write(tmp_path / "sub" / "a.md")
    write(tmp_path / "plain" / "b.md")
    spy = SpyFilter(tmp_path)
    s = PollScanner(tmp_path, spy, trust_dir_mtime=trust)
    s.prime()
    (tmp_path / "sub" / ".git").mkdir()  # git init in a directory that was tracked
    write(tmp_path / "clone" / ".git", "gitdir: elsewhere")  # a new nested work tree (.git file)
    write(tmp_path / "clone" / "c.md")
    assert found(s) == {"sub", "clone"}  # once each: the daemon skips them
    spy.asked.clear()
    write(tmp_path / "sub" / "a.md", "changed inside the nested repository")
    write(tmp_path / "clone" / "deep" / "d.md")
    assert found(s) == set()
    assert not [p for p in spy.asked if p.startswith(("sub/", "clone/"))]
    shutil.rmtree(tmp_path / "sub" / ".git")
    assert found(s) == {"sub/a.md"}


@TRUST
def test_symlinks_are_entries_never_followed(tmp_path: Path, trust: bool) -> None:
    outside = tmp_path / "outside"
    write(outside / "o.md")
    root = tmp_path / "data"
    write(root / "real" / "r.md")
    (root / "to-dir").symlink_to(root / "real", target_is_directory=True)
    (root / "to-outside").symlink_to(outside, target_is_directory=True)
    (root / "dangling").symlink_to(root / "nowhere")
    s = scanner(root, trust)
    assert s.stats.files == 4 and s.stats.dirs == 2
    write(outside / "o.md", "changed outside")
    write(outside / "new.md")
    write(root / "real" / "r.md", "changed")
    assert found(s) == {"real/r.md"}
    (root / "to-dir").unlink()
    (root / "to-dir").symlink_to(root / "real" / "r.md")
    assert found(s) == {"to-dir"}


def test_special_files_are_reported_but_never_opened(tmp_path: Path) -> None:
    s = scanner(tmp_path)
    os.mkfifo(tmp_path / "pipe")  # racy now; opening it to hash would block
    assert found(s) == {"pipe"}
    assert found(s) == set()


def _unreadable_scenario(root: Path) -> dict[str, object]:
    write(root / "open" / "a.md")
    write(root / "closed" / "b.md")
    write(root / "closed" / "inner" / "c.md")
    s = scanner(root)
    (root / "closed").chmod(0o000)
    write(root / "open" / "a.md", "changed")
    first = sorted(s.scan())
    second = sorted(s.scan())
    (root / "closed").chmod(0o755)
    write(root / "closed" / "b.md", "changed while closed")
    third = sorted(s.scan())
    return {"first": first, "second": second, "third": third, "unreadable": s.stats.unreadable}


def test_an_unreadable_directory_is_skipped_and_its_files_not_reported_deleted(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        result = _unreadable_scenario(tmp_path / "data")
    else:  # root reads everything: drop the capabilities that let it, in a child process
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv cannot make a directory unreadable")
        code = (f"import json, pathlib, sys; sys.path.insert(0, {str(ROOT)!r}); "
                "from tests.watch.test_scanner import _unreadable_scenario as run; "
                f"print(json.dumps(run(pathlib.Path({str(tmp_path / 'data')!r}))))")
        proc = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable,
                               "-c", code], capture_output=True, text=True, check=False, timeout=60)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["first"] == ["open/a.md"]
    assert result["second"] == []
    assert result["third"] == ["closed/b.md"]


@TRUST
def test_a_vanished_root_reports_nothing_and_a_replaced_one_too(tmp_path: Path, trust: bool) -> None:
    root = tmp_path / "data"
    write(root / "a.md")
    s = scanner(root, trust)
    root.rename(tmp_path / "away")
    assert s.scan() == []
    assert s.scan() == []
    (tmp_path / "away").rename(root)
    assert s.scan() == []
    write(root / "b.md")
    assert found(s) == {"b.md"}
    root.rename(tmp_path / "old")
    write(root / "c.md")  # another directory at the same path (a remount): the owner watches it anew
    assert s.scan() == []
    fresh = scanner(root, trust)
    write(root / "d.md")
    assert found(fresh) == {"d.md"}


def test_a_root_missing_at_prime_sets_its_baseline_when_it_appears(tmp_path: Path) -> None:
    root = tmp_path / "data"
    s = scanner(root)
    assert s.scan() == []
    write(root / "a.md")
    assert s.scan() == []  # the first look at it: nothing to compare with
    write(root / "b.md")
    assert found(s) == {"b.md"}


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    s = scanner(tmp_path)
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.md")
    with open(raw, "wb") as f:
        f.write(b"x")
    (name,) = s.scan()
    assert os.fsencode(name) == b"caf\xe9.md"


def test_filesystem_type_from_the_mount_table(tmp_path: Path) -> None:
    assert filesystem_type("/proc") == "proc"
    assert filesystem_type(str(tmp_path))
    assert filesystem_type("/nonexistent/path") == ""


# ---- the thread ---------------------------------------------------------------------------------


def test_poll_thread_hands_over_changes_and_stops(tree: Path) -> None:
    got: list[list[str]] = []
    event = threading.Event()

    def on_paths(paths: list[str]) -> None:
        got.append(paths)
        event.set()

    s = PollScanner(tree, PathFilter(tree))
    thread = PollThread(s, 0.05, on_paths)
    thread.start()
    assert s.primed and thread.alive()
    write(tree / "new.md")
    assert event.wait(5)
    assert got[0] == ["new.md"]
    thread.stop()
    assert not thread.alive()


def test_poll_thread_ends_visibly_when_its_callback_fails(tree: Path) -> None:
    def on_paths(paths: list[str]) -> None:
        raise RuntimeError("boom")

    thread = PollThread(PollScanner(tree, PathFilter(tree)), 0.02, on_paths)
    thread.start()
    write(tree / "new.md")
    wait_for(lambda: not thread.alive(), timeout=5, what="the thread to end")
    assert thread.last_error == "RuntimeError: boom"
    thread.stop()


# ---- memory -----------------------------------------------------------------------------------


def test_memory_of_100k_entries(tmp_path: Path) -> None:
    """100k entries in 1,000 directories (hard links: cheap to make) stay well under 16 MB of state;
    measured about 3 MB (names joined per directory and one 8-byte fingerprint per entry)."""
    root = tmp_path / "data"
    bases = []
    for b in range(2):
        bases.append(write(tmp_path / f"base{b}", "x" * 2000))
    for d in range(1000):
        directory = root / f"g{d % 30:02d}" / f"d{d:04d}"
        directory.mkdir(parents=True)
        base = bases[d % 2]
        for i in range(100):
            os.link(base, directory / f"f{d * 100 + i:06d}.md")
    for base in bases:
        age(base)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        s = PollScanner(root, PathFilter(root), racy_margin=0.0)  # link() made every ctime recent
        s.prime()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert s.stats.files == 100_000
    assert kept < 16 * 2**20, f"{kept / 2**20:.1f} MB kept for 100k entries"
    assert found(s) == set()


# ---- a random sequence of changes against the truth ---------------------------------------------


def _truth(root: Path, pfilter: PathFilter) -> dict[str, tuple[str, bytes]]:
    """Every file and symlink that is not ignored, with its content (what the daemon would commit),
    and every directory that is not ignored, as ("dir", b"")."""
    found: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if prefix:
            found[rel_dir] = ("dir", b"")
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))
                       and not pfilter.ignored(prefix + d, is_dir=True)]
        links = [d for d in os.listdir(dirpath) if os.path.islink(os.path.join(dirpath, d))]
        for name in {*filenames, *links}:
            rel, full = prefix + name, os.path.join(dirpath, name)
            if pfilter.ignored(rel):
                continue
            if os.path.islink(full):
                found[rel] = ("link", os.fsencode(os.readlink(full)))
            else:
                found[rel] = ("file", Path(full).read_bytes())
    return found


def _mutate(root: Path, rng: random.Random, serial: list[int], restore_mtime: bool) -> None:
    files = [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]
    dirs = [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()]
    op = rng.choice(["create", "create", "same-size", "same-size", "resize", "delete", "rename", "mkdir",
                     "rename-dir", "rmtree", "file-to-dir", "dir-to-file", "symlink", "ignored"])
    serial[0] += 1
    n = serial[0]
    parent = rng.choice([root, *dirs])
    if op == "create" or (not files and op in ("same-size", "resize", "delete", "rename", "file-to-dir")):
        write(parent / f"f{n}.md", f"file {n:06d}")
    elif op == "same-size":
        target = rng.choice(files)
        if target.is_symlink():
            return
        before = target.stat()
        data = bytearray(target.read_bytes() or b"?")
        at = rng.randrange(len(data))
        data[at] = ord(rng.choice([c for c in "abcdefgh" if ord(c) != data[at]]))  # really a change
        target.write_bytes(bytes(data))
        if restore_mtime and rng.random() < 0.7:  # the same mtime too, as within one tick of a coarse clock
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif op == "resize":
        target = rng.choice(files)
        if not target.is_symlink():
            target.write_bytes(target.read_bytes() + b"+")
    elif op == "delete":
        rng.choice(files).unlink()
    elif op == "rename":
        rng.choice(files).rename(parent / f"moved{n}.md")
    elif op == "mkdir":
        write(parent / f"d{n}" / f"inner{n}.md", f"inner {n}")
    elif op == "rename-dir" and dirs:
        src = rng.choice(dirs)
        dst = src.parent / f"renamed{n}"
        src.rename(dst)
    elif op == "rmtree" and dirs:
        shutil.rmtree(rng.choice(dirs))
    elif op == "file-to-dir":
        target = rng.choice(files)
        target.unlink()
        write(target / "now-inside.md", f"inside {n}")
    elif op == "dir-to-file" and dirs:
        target = rng.choice(dirs)
        shutil.rmtree(target)
        write(target, f"was a dir {n}")
    elif op == "symlink":
        (parent / f"l{n}").symlink_to(rng.choice(["a", "b", "../c"]) + str(n % 3))
    elif op == "ignored":
        write(parent / f"scratch{n}.tmp", "never reported")


@pytest.mark.parametrize("seed", range(3))
@TRUST
@pytest.mark.parametrize("check_stat", ["default", "minimal"])
@pytest.mark.parametrize("margin", [3.0, 0.02], ids=["all-racy", "settled"])
def test_random_changes_are_all_reported_and_nothing_else(tmp_path: Path, seed: int, trust: bool,
                                                          check_stat: str, margin: float) -> None:
    """Each round makes 1-5 random changes; the scan must name every path whose content or kind
    changed (or a deleted directory above it) and nothing that is unchanged.

    "all-racy": every change is within the racy margin of the next scan (content hashes at work).
    "settled": a 20 ms margin and 30 ms between a scan and the next changes, so that entries not
    touched in a round are settled (stat comparison alone; listings skipped with trust-dir-mtime).
    A same-size rewrite that also restores an old mtime is only made where ctime shows it (default).
    """
    rng = random.Random(seed)
    restore = margin > 1 or check_stat == "default"
    root = tmp_path / "data"
    for i in range(6):
        write(root / f"s{i % 2}" / f"seed{i}.md", f"seed {i}")
    pfilter = PathFilter(root)
    s = PollScanner(root, pfilter, trust_dir_mtime=trust, check_stat=check_stat,  # type: ignore[arg-type]
                    racy_margin=margin)
    s.prime()
    serial = [0]
    before = _truth(root, pfilter)
    for _ in range(25):
        for _ in range(rng.randint(1, 5)):
            _mutate(root, rng, serial, restore)
        after = _truth(root, pfilter)
        reported = set(s.scan())
        scanned = time.monotonic()
        dir_ = ("dir", b"")
        changed = {p for p in before.keys() | after.keys()
                   if before.get(p) != after.get(p) and not (before.get(p) in (dir_, None)
                                                             and after.get(p) in (dir_, None))}

        def covered(path: str, reported: set[str] = reported) -> bool:
            parts = path.split("/")
            return any("/".join(parts[:i]) in reported for i in range(1, len(parts) + 1))

        missed = {p for p in changed if not covered(p)}
        assert not missed, f"missed {missed}; reported {reported}"
        # a directory may be named when it is deleted (or replaced), even an empty one
        extra = {r for r in reported if r not in changed
                 and not (before.get(r) == dir_ and after.get(r) != dir_)}
        assert not extra, f"reported unchanged {extra}"
        before = after
        if margin < 1:
            wait_for(lambda at=scanned: time.monotonic() > at + 0.03, timeout=5,  # type: ignore[misc]
                     what="the next timestamp ticks")
