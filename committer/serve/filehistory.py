"""One file's history, newest first, following renames, read with path-limited `git log` (read-only, as
everything the pages read)."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from committer.core.errors import GitError
from committer.git import lfs
from committer.git.repo import GitRepo
from committer.git.runner import drain, git_argv, git_env, kill_group
from committer.serve import tags as tagcache
from committer.serve.history import (
    FILE_PAGE,
    LOG_FORMAT,
    Change,
    Commit,
    NotFound,
    Revision,
    parse_log,
    parse_raw,
    snapshot_tags,
)

# git keeps the bases of the deltas it resolves in a cache of up to 96 MB (core.deltaBaseCacheLimit); a walk
# through a file's history fills it with versions of the file's folder, and every new page of that cache is a
# page fault: for a folder of 2,000 files, 8 MB makes the same walk take a third of the CPU. A large folder
# needs room for a few dozen of its versions, or each is rebuilt from the start of its delta chain
# (docs/speed.md, "The history pages").
CACHE_FLOOR, CACHE_CEILING, CACHE_VERSIONS = 8 << 20, 96 << 20, 32


def small_cache(tree_size: int | None) -> list[str]:
    """The delta cache for a walk through a folder whose tree is `tree_size` bytes (None: git's own)."""
    if tree_size is None:
        return []
    return ["-c", f"core.deltaBaseCacheLimit={min(CACHE_CEILING, max(CACHE_FLOOR, CACHE_VERSIONS * tree_size))}"]


KEPT = 64  # file pages kept, newest used last; each a few tens of KB
_lock = threading.Lock()
_kept: OrderedDict[tuple[Path, str, tuple[int, ...] | None, str, int, int], tuple[list[Revision], bool]] = \
    OrderedDict()


def file_history(repo: GitRepo, path: str, skip: int = 0, limit: int = FILE_PAGE) -> tuple[list[Revision], bool]:
    """Every revision of one file, newest first, following renames: read from git, or kept from the last
    time while the branch has not moved (a reload, going back a page); the snapshot tags are current."""
    stamp = tagcache.branch_stamp(repo.git_dir, repo.ref)
    key = (repo.git_dir, repo.ref, stamp, path, skip, limit)
    with _lock:
        found = _kept.get(key) if stamp is not None else None
        if found is not None:
            _kept.move_to_end(key)
    if found is None:
        found = read_history(repo, path, skip, limit)
        if stamp is not None:
            with _lock:
                _kept[key] = found
                while len(_kept) > KEPT:
                    _kept.popitem(last=False)
    revisions, more = found
    tags = snapshot_tags(repo)
    return [replace(r, commit=replace(r.commit, tags=tags.get(r.commit.sha, []))) for r in revisions], more


def forget() -> None:
    """Drop the kept pages (the bench times a first visit with it)."""
    with _lock:
        _kept.clear()


def read_history(repo: GitRepo, path: str, skip: int, limit: int) -> tuple[list[Revision], bool]:
    """Each name's history is one path-limited `git log` (which git answers from the commit-graph's
    changed-path filters when the repository has them); where the file first appears under a name, the
    commit is checked for a rename (git's rename detection, as `--follow` uses) and the walk goes on
    under the old name from that commit's parent."""
    batch = Batch(repo)
    try:
        return _read(repo, batch, path, skip, limit)
    finally:
        batch.close()


def _read(repo: GitRepo, batch: Batch, path: str, skip: int, limit: int) -> tuple[list[Revision], bool]:
    wanted = skip + limit + 1
    found: list[tuple[Commit, Change]] = []
    name, start = path, repo.ref
    for _ in range(1000):  # names a file had: a bound, not a limit anyone meets
        asked = wanted - len(found)
        cache = small_cache(batch.folder_size(start, name))
        proc = repo.git(*log_args(start, name, asked, cache), check=False)
        if proc.returncode != 0:
            break
        records = parse_log(proc.stdout)
        for commit, changes in records:
            change = next((c for c in changes if c.path == name), None)
            if change is not None:
                found.append((commit, change))
        if len(records) >= asked or not found or found[-1][1].status != "added" or not found[-1][0].parents:
            break
        commit, change = found[-1]
        source = renamed_from(repo, commit, name, cache)
        if source is None:
            break
        found[-1] = (commit, Change("renamed", name, source[0], source[1], change.new_sha, source[2],
                                    change.new_mode))
        name, start = source[0], commit.parents[0]
    if not found:
        raise NotFound(f"{path} has no history: no commit ever held a file of that name")
    more = len(found) > skip + limit
    page = found[skip : skip + limit]
    sizes, small = batch.sizes_and_small([c.new_sha for _, c in page if c.new_sha], lfs.POINTER_MAX)
    pointers = {s: p for s, b in small.items() if (p := lfs.parse(b))}
    revisions = []
    for commit, change in page:
        pointer = pointers.get(change.new_sha or "")
        size = pointer[1] if pointer else sizes.get(change.new_sha or "")
        revisions.append(Revision(commit, change.path, change.status, change.old_path, change.new_sha, size,
                                  pointer is not None))
    return revisions, more


def log_args(start: str, name: str, count: int, cache: list[str] | None = None) -> list[str]:
    """The `git log` of one name's revisions from `start`: a plain path after `--`, without `--follow`, so
    that git answers it from the commit-graph's changed-path (Bloom) filters where the repository has them
    (the daemon's maintenance writes them)."""
    return [*(cache or []), "log", LOG_FORMAT, "-z", "--raw", "--no-abbrev", "--no-renames", f"--max-count={count}",
            start, "--", name]


def renamed_from(repo: GitRepo, commit: Commit, path: str, cache: list[str] | None = None) -> (
        tuple[str, str, str] | None):
    """(old path, its blob, its mode) when `commit` made `path` by moving another file, else None."""
    out = repo.git(*(cache or []), "diff-tree", "-r", "-z", "-M", "--raw", "--no-abbrev", commit.parents[0],
                   commit.sha, check=False).stdout
    for change in parse_raw(out.split(b"\x00")):
        if change.status == "renamed" and change.path == path and change.old_path:
            return change.old_path, change.old_sha or "", change.old_mode or ""
    return None


class Batch:
    """One `git cat-file --batch-command` for a page: the size of a name's folder before its walk (which sizes
    git's delta cache for it), then the sizes of the revisions' blobs and the content of those under 1 KB
    (an LFS pointer is one)."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self.proc = repo.runner.start(git_argv(repo.git_dir, ["cat-file", "--batch-command", "--buffer"]),
                                      git_env(), subprocess.PIPE)
        self.timer = repo.runner.deadline(self.proc)

    def folder_size(self, rev: str, path: str) -> int | None:
        """The size of the tree of `path`'s folder at `rev`, None when it is not there."""
        folder = path.rpartition("/")[0]
        if "\n" in folder:  # not a line of the batch: git's own cache
            return None
        fields = self._info([f"{rev}:{folder}" if folder else f"{rev}^{{tree}}"])[0]
        return int(fields[2]) if len(fields) == 3 and fields[1] == b"tree" and fields[2].isdigit() else None

    def sizes_and_small(self, shas: list[str], below: int) -> tuple[dict[str, int], dict[str, bytes]]:
        """The size of each blob, and the content of those under `below` bytes."""
        wanted = sorted(set(shas))
        sizes = {f[0].decode(): int(f[2]) for f in self._info(wanted) if len(f) == 3 and f[2].isdigit()}
        small = [sha for sha in wanted if sizes.get(sha, below) < below]
        contents: dict[str, bytes] = {}
        if not small:
            return sizes, contents
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write("".join(f"contents {sha}\n" for sha in small).encode() + b"flush\n")
            stdin.flush()
            for _ in small:
                fields = stdout.readline().split()
                if len(fields) != 3 or not fields[2].isdigit():
                    continue
                contents[fields[0].decode()] = stdout.read(int(fields[2]) + 1)[:-1]
        except (BrokenPipeError, ValueError) as exc:
            self._fail(exc)
        return sizes, contents

    def _info(self, specs: list[str]) -> list[list[bytes]]:
        if not specs:
            return []
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write("".join(f"info {spec}\n" for spec in specs).encode() + b"flush\n")
            stdin.flush()
            lines = [stdout.readline().split() for _ in specs]
        except (BrokenPipeError, ValueError) as exc:
            self._fail(exc)
        if not all(lines):
            self._fail(ValueError("ended early"))
        return lines

    def _fail(self, exc: Exception) -> NoReturn:
        kill_group(self.proc)
        raise GitError(["cat-file"], -1, str(exc)) from None

    def close(self) -> None:
        self.timer.cancel()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.proc.stdin = None  # closed: what is left is read to the end
        drain(self.proc)
        self.repo.runner.forget(self.proc)
