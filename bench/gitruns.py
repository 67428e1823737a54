"""The baselines: `git add -A && git commit` with a warm index, and the hand-written fast-import floor.

Every git process here runs through committer's own `GitRunner` / `git_argv` / `git_env`, so the
baselines get exactly the environment and the options the daemon's git processes get.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from committer.git.runner import GitRunner, git_argv, git_env

run_git = GitRunner().run


def git(git_dir: Path, *args: str, work_tree: Path | None = None) -> str:
    """Run one git command; its stdout, stripped."""
    out: bytes = run_git(git_dir, args, work_tree=work_tree).stdout
    return out.decode().strip()


def tree_of(git_dir: Path, rev: str) -> str:
    """The tree id of a commit."""
    return git(git_dir, "rev-parse", f"{rev}^{{tree}}")


def copy_config(src: Path, dst: Path) -> None:
    """Give `dst` the same local config and info/exclude as `src` (fsync, identity, ignores)."""
    shutil.copyfile(src / "config", dst / "config")
    exclude = src / "info" / "exclude"
    if exclude.is_file():
        (dst / "info").mkdir(exist_ok=True)
        shutil.copyfile(exclude, dst / "info" / "exclude")


def clone_same_state(src: Path, dst: Path) -> None:
    """A bare clone holding the same objects and refs (hard-linked packs) and the same config."""
    run_git(src, ["clone", "--quiet", "--bare", str(src), str(dst)])
    copy_config(src, dst)


def fresh_like(src: Path, dst: Path, branch: str) -> None:
    """An empty bare repository with the same config as `src`."""
    run_git(dst, ["init", "--quiet", "--bare", f"--initial-branch={branch}"])
    copy_config(src, dst)


def warm_index(git_dir: Path, work_tree: Path) -> float:
    """Build the index from HEAD and refresh it, as a gitwatch repo has; returns a no-op add's time."""
    git(git_dir, "read-tree", "HEAD", work_tree=work_tree)
    git(git_dir, "add", "-A", work_tree=work_tree)
    started = time.perf_counter()
    git(git_dir, "add", "-A", work_tree=work_tree)
    return time.perf_counter() - started


def add_all_commit(git_dir: Path, work_tree: Path) -> float:
    """`git add -A && git commit -q -m x`, timed from the first process start to the last exit."""
    started = time.perf_counter()
    run_git(git_dir, ["add", "-A"], work_tree=work_tree)
    run_git(git_dir, ["commit", "-q", "-m", "x"], work_tree=work_tree)
    return time.perf_counter() - started


class Floor:
    """One `git fast-import` stream per commit: inline blobs and a commit on the parent, no index."""

    def __init__(self, git_dir: Path, ref: str) -> None:
        self.git_dir = git_dir
        self.ref = ref
        self.head = git(git_dir, "rev-parse", ref)

    def commit(self, data_dir: Path, rels: Sequence[str]) -> float:
        """Commit the current content of `rels`; timed from reading the files to the ref updated."""
        started = time.perf_counter()
        stream = bytearray()
        stream += b"commit %s\n" % self.ref.encode()
        stream += b"committer bench <bench@localhost> %d +0000\n" % int(time.time())
        stream += b"data 1\nx\nfrom %s\n" % self.head.encode()
        for rel in rels:
            data = (data_dir / rel).read_bytes()
            stream += b"M 100644 inline %s\ndata %d\n" % (rel.encode(), len(data))
            stream += data
            stream += b"\n"
        stream += b"\ndone\n"
        proc = subprocess.run(
            git_argv(self.git_dir, ["fast-import", "--quiet", "--done"]),
            input=bytes(stream),
            capture_output=True,
            env=git_env(),
            check=False,
        )
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"fast-import floor failed: {proc.stderr.decode(errors='replace')}")
        self.head = git(self.git_dir, "rev-parse", self.ref)
        return elapsed
