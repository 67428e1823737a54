"""Trees for the pull side: what differs between two trees, git's in-memory merge, conflict-copy names."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from committer.core.errors import CommitterError
from committer.git.objects import TreeEntry
from committer.git.repo import GitRepo

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def conflict_name(path: str, branch: str, when: float, taken: Callable[[str], bool]) -> str:
    """`dir/name (conflict from main, 2026-11-23T03-15-00Z).ext`: the first such name not `taken`."""
    pure = PurePosixPath(path)
    stem, dot, ext = pure.name.rpartition(".")
    if not stem:  # no extension, or a dot file such as .profile
        stem, dot, ext = pure.name, "", ""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime(when))
    label = branch.replace("/", "-")  # a branch such as team/notes cannot go into a file name as it is
    for number in range(1, 1000):
        extra = f" {number}" if number > 1 else ""
        name = f"{stem} (conflict from {label}, {stamp}{extra}){dot}{ext}"
        full = name if str(pure.parent) == "." else f"{pure.parent}/{name}"
        if not taken(full):
            return full
    raise CommitterError(f"no free name for a conflict copy of {path}")


def is_ancestor(repo: GitRepo, older: str, newer: str) -> bool:
    return repo.git("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0


def merge_base(repo: GitRepo, one: str, two: str) -> str | None:
    proc = repo.git("merge-base", one, two, check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def diff_trees(repo: GitRepo, old: str | None, new: str) -> dict[str, tuple[TreeEntry | None, TreeEntry | None]]:
    """Path -> (entry in old, entry in new) for every file that differs; no rename pairing."""
    out = repo.git("diff-tree", "-r", "-z", "--no-renames", "--raw", old or EMPTY_TREE, new).stdout
    fields = out.split(b"\0")
    changes: dict[str, tuple[TreeEntry | None, TreeEntry | None]] = {}
    for index in range(0, len(fields) - 1, 2):
        meta, raw_path = fields[index], fields[index + 1]
        if not meta.startswith(b":"):
            continue
        old_mode, new_mode, old_sha, new_sha, _status = meta[1:].decode().split(" ")
        before = None if set(old_sha) == {"0"} else TreeEntry(old_mode, old_sha)
        after = None if set(new_sha) == {"0"} else TreeEntry(new_mode, new_sha)
        changes[os.fsdecode(raw_path)] = (before, after)
    return changes


def merge_trees(repo: GitRepo, ours: str, theirs: str) -> tuple[str, dict[str, dict[int, TreeEntry]]]:
    """git's own three-way merge of two commits, in memory: (the merged tree, the conflicted paths with
    their entries by stage: 1 the base, 2 ours, 3 theirs). A file moved out of a folder's way is listed
    under git's new name, `<path>~<commit id of its side>`."""
    proc = repo.git("merge-tree", "--write-tree", "-z", "--no-messages", ours, theirs, check=False)
    if proc.returncode not in (0, 1):
        raise CommitterError(f"git merge-tree failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    fields = proc.stdout.split(b"\0")
    tree = fields[0].decode().strip()
    conflicted: dict[str, dict[int, TreeEntry]] = {}
    for raw in fields[1:]:
        if not raw:
            break
        meta, _, path = raw.partition(b"\t")
        mode, sha, stage = meta.decode().split(" ")
        conflicted.setdefault(os.fsdecode(path), {})[int(stage)] = TreeEntry(mode, sha)
    return tree, conflicted


def missing(repo: GitRepo, tree: str, shas: set[str]) -> set[str]:
    """Which of the blob ids `tree` holds nowhere."""
    return shas - {e.sha for e in repo.ls_tree(tree, None).values()}


def write_tree(repo: GitRepo, base_tree: str, overrides: Mapping[str, TreeEntry | None]) -> str:
    """A tree: base_tree with each override set (None removes the path), through a private index."""
    with tempfile.TemporaryDirectory(prefix="committer-merge-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        repo.git("read-tree", base_tree, env=env)
        # NUL-terminated and as bytes: a name may hold a newline, or bytes that are not UTF-8
        lines = []
        for path, entry in sorted(overrides.items()):
            head = f"0 {'0' * 40}" if entry is None else f"{entry.mode} {entry.sha}"
            lines.append(head.encode() + b"\t" + os.fsencode(path) + b"\0")
        if lines:
            repo.git("update-index", "-z", "--index-info", input=b"".join(lines), env=env)
        return repo.git("write-tree", env=env).stdout.decode().strip()


def small_blobs(repo: GitRepo, rev: str, below: int) -> dict[str, TreeEntry]:
    """Regular files of `rev` smaller than `below` bytes (where LFS pointers can be), by path."""
    out = repo.git("ls-tree", "-r", "-l", "-z", "--full-tree", rev).stdout
    found: dict[str, TreeEntry] = {}
    for record in out.split(b"\0"):
        meta, _, raw_path = record.partition(b"\t")
        fields = meta.split()
        if len(fields) == 4 and fields[1] == b"blob" and fields[3].isdigit() and int(fields[3]) < below:
            found[os.fsdecode(raw_path)] = TreeEntry(fields[0].decode(), fields[2].decode())
    return found


def blob_sizes(repo: GitRepo, shas: Iterable[str]) -> dict[str, int]:
    """The size of each blob (one `git cat-file --batch-check`), without reading any content."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    out = repo.git("cat-file", "--batch-check", input="".join(f"{s}\n" for s in wanted).encode()).stdout
    sizes = {}
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            sizes[parts[0]] = int(parts[2])
    return sizes
