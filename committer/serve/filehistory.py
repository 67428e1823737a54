"""One file's history, newest first, following renames, read with path-limited `git log` (read-only, as
everything the pages read)."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

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
# page fault: with 8 MB the same walk takes a third of the CPU (docs/speed.md, "The history pages").
SMALL_CACHE = ("-c", "core.deltaBaseCacheLimit=8m")
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
    wanted = skip + limit + 1
    found: list[tuple[Commit, Change]] = []
    name, start = path, repo.ref
    for _ in range(1000):  # names a file had: a bound, not a limit anyone meets
        asked = wanted - len(found)
        proc = repo.git(*log_args(start, name, asked), check=False)
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
        source = renamed_from(repo, commit, name)
        if source is None:
            break
        found[-1] = (commit, Change("renamed", name, source[0], source[1], change.new_sha, source[2],
                                    change.new_mode))
        name, start = source[0], commit.parents[0]
    if not found:
        raise NotFound(f"{path} has no history: no commit ever held a file of that name")
    more = len(found) > skip + limit
    page = found[skip : skip + limit]
    sizes, small = sizes_and_small(repo, [c.new_sha for _, c in page if c.new_sha], lfs.POINTER_MAX)
    pointers = {s: p for s, b in small.items() if (p := lfs.parse(b))}
    revisions = []
    for commit, change in page:
        pointer = pointers.get(change.new_sha or "")
        size = pointer[1] if pointer else sizes.get(change.new_sha or "")
        revisions.append(Revision(commit, change.path, change.status, change.old_path, change.new_sha, size,
                                  pointer is not None))
    return revisions, more


def log_args(start: str, name: str, count: int) -> list[str]:
    """The `git log` of one name's revisions from `start`: a plain path after `--`, without `--follow`, so
    that git answers it from the commit-graph's changed-path (Bloom) filters where the repository has them
    (the daemon's maintenance writes them)."""
    return [*SMALL_CACHE, "log", LOG_FORMAT, "-z", "--raw", "--no-abbrev", "--no-renames", f"--max-count={count}",
            start, "--", name]


def renamed_from(repo: GitRepo, commit: Commit, path: str) -> tuple[str, str, str] | None:
    """(old path, its blob, its mode) when `commit` made `path` by moving another file, else None."""
    out = repo.git(*SMALL_CACHE, "diff-tree", "-r", "-z", "-M", "--raw", "--no-abbrev", commit.parents[0],
                   commit.sha, check=False).stdout
    for change in parse_raw(out.split(b"\x00")):
        if change.status == "renamed" and change.path == path and change.old_path:
            return change.old_path, change.old_sha or "", change.old_mode or ""
    return None


def sizes_and_small(repo: GitRepo, shas: list[str], below: int) -> tuple[dict[str, int], dict[str, bytes]]:
    """The size of each blob, and the content of those under `below` bytes (an LFS pointer is one), through
    one `git cat-file --batch-command`: sizes first, then only the small contents."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}, {}
    argv = git_argv(repo.git_dir, ["cat-file", "--batch-command", "--buffer"])
    proc = repo.runner.start(argv, git_env(), subprocess.PIPE)
    timer = repo.runner.deadline(proc)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("".join(f"info {sha}\n" for sha in wanted).encode() + b"flush\n")
        proc.stdin.flush()
        sizes: dict[str, int] = {}
        for _ in wanted:
            fields = proc.stdout.readline().split()
            if not fields:
                raise GitError(["cat-file"], -1, "ended early")
            if len(fields) == 3 and fields[2].isdigit():
                sizes[fields[0].decode()] = int(fields[2])
        small = [sha for sha in wanted if sizes.get(sha, below) < below]
        proc.stdin.write("".join(f"contents {sha}\n" for sha in small).encode())
        proc.stdin.close()
        contents: dict[str, bytes] = {}
        for _ in small:
            fields = proc.stdout.readline().split()
            if len(fields) != 3 or not fields[2].isdigit():
                continue
            contents[fields[0].decode()] = proc.stdout.read(int(fields[2]) + 1)[:-1]
        return sizes, contents
    except (BrokenPipeError, ValueError) as exc:
        kill_group(proc)
        raise GitError(["cat-file"], -1, str(exc)) from None
    finally:
        timer.cancel()
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.stdin = None  # closed: what is left is read to the end
        drain(proc)
        repo.runner.forget(proc)
