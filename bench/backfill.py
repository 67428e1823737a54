"""Section 5: the backfill (`committer init` of an existing tree) and its first push, against git.

Ours: `committer init` as a whole process on the freshly built tree, once with stderr on a pipe
(no progress bar) and once on a pseudo-terminal (the progress bar of files and bytes is drawn),
each into a new repository; then `committer push` of the result to an empty bare file:// mirror.
Baseline, on the same tree in the same run: `git add -A && git commit` into a new bare repository
with the same config (one fsynced loose object per file) and `gc.auto=0` (with it, the commit runs a
whole `gc` in the foreground: 90 s on 100k files), then `git push` of those loose objects to another
empty mirror. The trees of all commits are checked equal, and how the objects are stored is noted.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gitruns
from report import Row, Section, ms, ratio, spread
from workload import Tree

TARGET = 10.0  # seconds, for init and for the first push, on the 100k tree
TARGET_FROM = 100_000
PLAIN_TARGET = 1.3  # init at least this much faster than plain git add -A && git commit, in every paired run


@dataclass
class Backfill:
    init: float
    init_tty: float
    bar_drawn: bool
    push: float
    naive: float
    naive_push: float
    packed: str
    naive_packed: str
    plain: list[tuple[float, float]]  # (committer init, plain `git add -A && git commit`) of each paired run


def _init(data: Path, git_dir: Path, env: dict[str, str], terminal: bool) -> tuple[float, bool]:
    argv = [sys.executable, "-m", "committer", "init", "--data-dir", str(data), "--git-dir", str(git_dir),
            "--log-format", "json"]
    if not terminal:
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        return time.perf_counter() - started, False
    leader, follower = pty.openpty()
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=follower)
        os.close(follower)
        tail, drawn = b"", False
        while True:  # drain the terminal, or the bar blocks on a full pty buffer
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            tail = (tail + chunk)[-8192:]
            drawn = drawn or (b"files" in tail and b"MB" in tail)
        code = proc.wait()
        seconds = time.perf_counter() - started
    finally:
        os.close(leader)
    if code != 0:
        raise RuntimeError(f"committer init on a terminal exited with {code}")
    return seconds, drawn


def _packed(git_dir: Path) -> str:
    counts = dict(line.split(": ", 1) for line in gitruns.git(git_dir, "count-objects", "-v").splitlines())
    return f"{int(counts['count']):,} loose, {int(counts['in-pack']):,} in {counts['packs']} pack(s)"


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(tree: Tree, git_dir: Path, root: Path, env: dict[str, str], tell: Callable[[str], None]) -> Backfill:
    """Leaves `git_dir` as `committer init` made it (the later sections use it)."""
    tell("committer init on a terminal (progress bar)")
    tty_git = root / "init-tty.git"
    init_tty, drawn = _init(tree.data, tty_git, env, terminal=True)
    shutil.rmtree(tty_git)
    tell("committer init")
    init, _ = _init(tree.data, git_dir, env, terminal=False)
    tell("committer push of the backfill to an empty file:// mirror")
    mirror = root / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", str(mirror)], check=True)
    push = _timed([sys.executable, "-m", "committer", "push", "--data-dir", str(tree.data), "--git-dir",
                   str(git_dir), "--remote", f"file://{mirror}", "--log-format", "json"], env)
    if gitruns.tree_of(mirror, "main") != gitruns.tree_of(git_dir, "main"):
        raise RuntimeError("the mirror does not hold what committer init committed")
    packed = _packed(git_dir)
    shutil.rmtree(mirror)

    tell("git add -A && git commit into a fresh repository, then git push")
    naive_git, naive_mirror = root / "naive.git", root / "naive-mirror.git"
    gitruns.fresh_like(git_dir, naive_git, "main")
    gitruns.git(naive_git, "config", "gc.auto", "0")  # as the issue measured it: no gc inside the commit
    naive = gitruns.add_all_commit(naive_git, tree.data)
    if gitruns.tree_of(git_dir, "HEAD") != gitruns.tree_of(naive_git, "HEAD"):
        raise RuntimeError("committer init and git add -A committed different trees")
    subprocess.run(["git", "init", "-q", "--bare", str(naive_mirror)], check=True)
    naive_push = _timed(["git", f"--git-dir={naive_git}", "push", "-q", f"file://{naive_mirror}", "main:main"])
    naive_packed = _packed(naive_git)
    shutil.rmtree(naive_git)
    shutil.rmtree(naive_mirror)
    _warm(tree.data)
    plain = [paired(tree, root, env, tell, run) for run in range(1, PAIRED_RUNS + 1)]
    return Backfill(init, init_tty, drawn, push, naive, naive_push, packed, naive_packed, plain)


PAIRED_RUNS = 3


def _warm(data: Path) -> None:
    """Read every file once, so the first paired run does not pay for a cold page cache alone."""
    for folder, _dirs, files in os.walk(data):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                handle.read()


def paired(tree: Tree, root: Path, env: dict[str, str], tell: Callable[[str], None], run: int) -> tuple[float, float]:
    """One paired run: `committer init` (every object fsynced) into a new repository, then plain
    `git add -A && git commit` into another with git's defaults (loose objects not fsynced, no gc), each
    after `sync` so neither waits on the other's writeback; the same tree checked."""
    ours, plain = root / f"paired-{run}.git", root / f"plain-{run}.git"
    tell(f"paired run {run}/{PAIRED_RUNS}: committer init, then plain git add -A && git commit")
    os.sync()
    init, _ = _init(tree.data, ours, env, terminal=False)
    os.sync()
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(plain)], check=True)
    gitruns.git(plain, "config", "gc.auto", "0")
    gitruns.git(plain, "config", "user.name", "bench")
    gitruns.git(plain, "config", "user.email", "bench@localhost")
    naive = gitruns.add_all_commit(plain, tree.data)
    if gitruns.tree_of(ours, "HEAD") != gitruns.tree_of(plain, "HEAD"):
        raise RuntimeError("committer init and plain git add -A committed different trees")
    shutil.rmtree(ours)
    shutil.rmtree(plain)
    return init, naive


def rows(name: str, count: int, got: Backfill, section: Section) -> None:
    targeted = count >= TARGET_FROM
    target = f"< {TARGET:g} s" if targeted else "reference"
    section.rows.append(Row(
        f"{name} tree: `committer init` (whole process, no terminal) vs `git add -A && git commit`, fresh repo",
        spread([got.init]), ms(got.naive), f"{ratio(got.init / got.naive)} (init/baseline)",
        target, got.init < TARGET if targeted else None,
    ))
    section.rows.append(Row(
        f"{name} tree: `committer init` on a terminal, progress bar of files and bytes"
        f"{'' if got.bar_drawn else ' (**bar not seen**)'}",
        spread([got.init_tty]), ms(got.naive), f"{ratio(got.init_tty / got.naive)} (init/baseline)",
        target, got.init_tty < TARGET and got.bar_drawn if targeted else None,
    ))
    section.rows.append(Row(
        f"{name} tree: first push of the backfill to an empty file:// mirror (`committer push`, whole process)",
        spread([got.push]), f"`git push` after `git add -A`: {ms(got.naive_push)}",
        f"{ratio(got.push / got.naive_push)} (ours/baseline)", target, got.push < TARGET if targeted else None,
    ))
    section.notes.append(
        f"{name}: objects in our repository: {got.packed}; after `git add -A`: {got.naive_packed}"
    )
    speedups = [naive / init for init, naive in got.plain]
    section.rows.append(Row(
        f"{name} tree: `committer init` (fsynced) vs plain `git add -A && git commit` (git's defaults: no fsync "
        f"of loose objects), {len(got.plain)} paired runs",
        ", ".join(ms(init) for init, _ in got.plain), ", ".join(ms(naive) for _, naive in got.plain),
        ", ".join(f"{ratio(x)} faster" for x in speedups), ">= 1.3x faster in every run",
        min(speedups) >= PLAIN_TARGET if targeted else None,
    ))
