"""Section 12: the first push of a 300,000-file backfill from the project's image in the Kubernetes example's
256Mi limit, against the same push with no limit.

The tree is sections 1-7's kind (files of 1-4 KB of word-like text; 300,000 of them make about 500 MB of
packs, more than the limit), built once under --cache; its backfill is made by `committer init` on the host,
kept beside the tree, and copied afresh for each run, the copy's pages dropped from the page cache so each
run reads its packs from disk, as a new pod does. The image is the one tests/podman.py builds (a Debian
root from mmdebstrap, committer from wheels built here, podman with runc and a store of its own).
`committer push` runs in a container (`--memory 256m --memory-swap 256m`, and with no limit, paired runs in
alternating order) to the loopback smart-HTTP server of tests/gitserver.py on the host (`--network host`),
an empty bare repository each time: git's receiving side runs outside the container, as GitHub's does.
Measured: the wall time of `podman run`, the push time the committer logs, the container's cgroup peak
(memory.max_usage_in_bytes, or memory.peak on cgroups v2, of a parent cgroup of its own, page cache
included; its rss sampled every 50 ms), its major page faults, and the OOM killer (State.OOMKilled). The
remote's tree must equal the backfill's.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from report import Row, Section
from workload import Tree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import contextlib

from tests.gitserver import GitHTTPServer
from tests.podman import Podman, committer_image, json_lines, why_not

UID = 10001  # the image's USER
TOKEN = "ghp_BenchToken0123456789abcdefABCDEF000000"
FILES = 300_000  # the tree
LIMITS = ("256m", None)  # the Kubernetes example's limit, then none
CGROUP = Path("/sys/fs/cgroup")
GOAL = 2.0  # the 256Mi run within 2x of the unlimited one


@dataclass
class Run:
    """One `committer push` in a container."""

    limit: str | None
    wall: float = 0.0
    push_seconds: float = 0.0
    parts: int = 0
    peak_mb: float = 0.0  # the cgroup's max usage, page cache included
    rss_mb: float = 0.0  # the cgroup's rss (anonymous memory), sampled
    major_faults: int = 0
    oom_killed: bool = False
    exit_code: int = 0
    log: list[str] = field(default_factory=list)


def size(counts: list[int]) -> int:
    """The tree size bench.py runs this section on: the largest of section 9's up to 300,000."""
    return max([n for n in counts if n <= FILES] or [FILES])


def build(cache: Path, count: int) -> Path:
    """The bench's tree of `count` notes of 1-4 KB (sections 1-7's files, about 480 MB of packs for 300,000
    of them: more than the limit), built once."""
    root = cache / f"pod-{count}"
    data, marker = root / "data", root / "built"
    if not marker.is_file():
        shutil.rmtree(root, ignore_errors=True)
        Tree(data, count).build()
        marker.touch()
    return data


def backfill(data: Path, rev: int, cache: Path, env: dict[str, str], say: object) -> Path:
    """The git dir `committer init` makes of the tree at this revision; made once, kept beside the tree."""
    log = say if callable(say) else print
    made = cache / f"backfill-r{rev}.git"
    if (made / "committer-bench-done").is_file():
        return made
    for old in cache.glob("backfill-r*.git"):
        shutil.rmtree(old)
    log(f"pod: committer init of {data} (on the host, kept for later runs)")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "committer", "init", "--data-dir", str(data), "--git-dir", str(made)],
                   env=env, check=True, capture_output=True)
    log(f"pod: the backfill took {time.monotonic() - started:.0f} s")
    (made / "committer-bench-done").touch()
    return made


def fresh_copy(source: Path, into: Path) -> Path:
    """A copy of the git dir owned by the image's user, its pages out of the page cache."""
    target = into / "knowledge.git"
    into.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(into)], check=True)
    os.sync()
    for path in target.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return target


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _stat(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def push_in_container(podman: Podman, image: str, run: Run, git_dir: Path, data: Path, url: str,
                      token: Path, settings: list[str]) -> None:
    """`committer push` in a container under a parent cgroup of its own, which outlives it."""
    parent = f"committer-bench-{uuid.uuid4().hex[:8]}"
    name = f"{parent}-push"
    v1 = (CGROUP / "memory").is_dir()  # cgroups v1 (or hybrid), else the unified hierarchy
    memory = CGROUP / "memory" / parent if v1 else CGROUP / parent
    peak, anon, faults = (("memory.max_usage_in_bytes", "total_rss", "total_pgmajfault") if v1
                          else ("memory.peak", "anon", "pgmajfault"))
    limit = ["--memory", run.limit, "--memory-swap", run.limit] if run.limit else []
    argv = [*podman.base, "run", "--name", name, "--cgroup-parent", f"/{parent}", "--network", "host",
            "--no-healthcheck", *limit,
            "--volume", f"{git_dir.parent}:/app/git", "--volume", f"{data}:/app/data:ro",
            "--volume", f"{token}:/run/committer/token:ro",
            "--env", f"COMMITTER_REMOTE={url}", "--env", "COMMITTER_TOKEN_FILE=/run/committer/token",
            *(arg for setting in settings for arg in ("--env", setting)), image, "push"]
    done = threading.Event()
    rss = 0

    def sample() -> None:
        nonlocal rss
        while not done.wait(0.05):
            rss = max(rss, _stat(_read(memory / "memory.stat"), anon))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, env=podman.env, capture_output=True, text=True, check=False, timeout=3600)
        run.wall = time.monotonic() - started
        done.set()
        sampler.join()
        run.exit_code = proc.returncode
        run.oom_killed = podman.inspect("container", name, "{{.State.OOMKilled}}") == "true"
        run.rss_mb = rss / 2**20
        run.peak_mb = int(_read(memory / peak) or 0) / 2**20
        run.major_faults = _stat(_read(memory / "memory.stat"), faults)
        run.log = [*proc.stdout.splitlines(), *proc.stderr.splitlines()]
        events = json_lines(proc.stderr)
        pushes = [e for e in events if e.get("event") == "git_push" and e.get("result") == "ok"]
        run.parts = len(pushes)
        run.push_seconds = sum(float(e.get("duration_ms", 0)) for e in pushes) / 1000
    finally:
        done.set()
        podman.run("rm", "--force", name, check=False)
        for top in [CGROUP / parent, *(controller / parent for controller in CGROUP.iterdir())]:
            for leftover in sorted(top.glob("**/"), key=lambda p: len(p.parts), reverse=True) if top.is_dir() else []:
                with contextlib.suppress(OSError):
                    leftover.rmdir()


def tree_of(git_dir: Path) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "-c", "safe.directory=*", "rev-parse", "main^{tree}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def measure(count: int, cache: Path, tmp: Path, env: dict[str, str], say: object,
            repeat: int = 1, part_files: int | None = None) -> dict[str, list[Run]] | str:
    """`repeat` pairs of pushes (the pair's order alternating), by limit ("256m", "none"); or the one-line
    reason podman cannot run them here. `part_files`: the push_part_files of the pushes (0: one push)."""
    log = say if callable(say) else print
    reason = why_not()
    if reason:
        return reason
    podman = Podman()
    try:
        image = committer_image(podman, tmp / "wheels", "the pod bench")
    except BaseException as exc:  # tests.podman skips (pytest's Skipped) when no container can start
        if type(exc).__name__ == "Skipped":
            return str(exc)
        raise
    log(f"pod: a tree of {count:,} files of 1-4 KB (built once under {cache})")
    data = build(cache, count)
    source = backfill(data, 0, data.parent, env, say)
    want = tree_of(source)
    token = tmp / "token"
    token.write_text(TOKEN)
    os.chown(token, UID, UID)
    got: dict[str, list[Run]] = {"256m": [], "none": []}
    order = [limit for pair in range(repeat) for limit in (LIMITS if pair % 2 == 0 else LIMITS[::-1])]
    for number, limit in enumerate(order):
        label = limit or "none"
        work = tmp / f"push-{number}-{label}"
        work.mkdir()
        git_dir = fresh_copy(source, work / "git")
        server = GitHTTPServer(work / "served", token=TOKEN)
        server.start()
        try:
            log(f"pod: committer push of {count:,} files in a container, memory limit {label}")
            run = Run(limit)
            settings = [] if part_files is None else [f"COMMITTER_PUSH_PART_FILES={part_files}"]
            push_in_container(podman, image.id, run, git_dir, data, server.url, token, settings)
            if run.exit_code != 0:
                raise RuntimeError(f"committer push ({label}) exited {run.exit_code}: {run.log[-5:]}")
            if tree_of(server.repo) != want:
                raise RuntimeError(f"the remote does not hold the backfill's tree ({label})")
            got[label].append(run)
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
    return got


def _median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(run) for run in runs)


def rows(count: int, got: dict[str, list[Run]] | str, section: Section) -> None:
    if isinstance(got, str):
        section.rows.append(Row(f"{count:,} files: the first push in the 256Mi pod", "not run", got, "—",
                                "within 2x of unlimited", None))
        return
    small, free = got["256m"], got["none"]
    walls = [f"{run.wall:.1f}" for run in small]
    ratio = _median(small, lambda run: run.wall) / _median(free, lambda run: run.wall)
    section.rows.append(Row(
        f"{count:,} files: `committer push` of the backfill in the image, `--memory 256m --memory-swap 256m`, "
        f"to a smart-HTTP remote on the host (wall of `podman run`, median of {len(small)})",
        f"{_median(small, lambda run: run.wall):.1f} s [{', '.join(walls)}]",
        f"no limit: {_median(free, lambda run: run.wall):.1f} s [{', '.join(f'{r.wall:.1f}' for r in free)}]",
        f"{ratio:.2f}x", f"within {GOAL:g}x", ratio <= GOAL,
    ))
    for runs in (small, free):
        limit = runs[0].limit
        section.rows.append(Row(
            f"{count:,} files, {f'--memory {limit}' if limit else 'no limit'}: the container's cgroup peak "
            "(page cache included) and its rss (sampled), the most of any run",
            f"{max(run.peak_mb for run in runs):.0f} MB",
            f"rss {max(run.rss_mb for run in runs):.0f} MB; "
            f"{_median(runs, lambda run: run.major_faults):,.0f} major faults (median)",
            f"{runs[0].parts} parts, pushing {_median(runs, lambda run: run.push_seconds):.1f} s (median)",
            "no OOM kill" if limit else "reference",
            not any(run.oom_killed for run in runs) if limit else None,
        ))


def main() -> None:
    """`python bench/pod.py [300000]`: this section alone, its table on stdout."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", nargs="?", type=int, default=300_000, help="files in the tree [300000]")
    parser.add_argument("--cache", type=Path, default=Path("/var/tmp/committer-bench"))
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs [1]")
    parser.add_argument("--part-files", type=int, help="push_part_files in the container (0: one push) [its default]")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMITTER_")}
    section = Section("12. The first push in the pod's memory limit (podman, 256Mi against none)")
    with tempfile.TemporaryDirectory(prefix="committer-bench-pod-") as tmp:
        got = measure(args.count, args.cache, Path(tmp), env, lambda line: print(line, file=sys.stderr),
                      args.repeat, args.part_files)
    rows(args.count, got, section)
    print(f"uptime: {os.getloadavg()}")
    if not isinstance(got, str):
        print(json.dumps({k: [{**vars(v), "log": v.log[-2:]} for v in runs] for k, runs in got.items()}, indent=1),
              file=sys.stderr)
    for row in section.rows:
        print(f"| {row.what} | {row.median} | {row.baseline} | {row.ratio} | {row.target} | {row.result} |")


if __name__ == "__main__":
    main()
